"""The ``neurohw`` command line: a thin layer over the library.

``main(argv=None) -> int`` parses arguments, runs one subcommand and returns
the exit status: 0 on success, 1 when a check fails (e.g. ``verify`` finds a
divergence), 2 on bad input.  Errors print one line on stderr naming the
file (and node/parameter where it applies); no traceback reaches the user
unless ``NEUROHW_DEBUG=1`` is set.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

import importlib

from .. import __version__
from ..errors import NeurohwError

__all__ = ["main", "build_parser"]

# one module per subcommand, each with add_args(parser) and run(args) -> int; imported
# only when needed (a command's start-up pays for its own imports, not the others')
SUBCOMMANDS = {
    "inspect": "inspect_cmd",
    "quantize": "quantize_cmd",
    "emulate": "emulate_cmd",
    "verify": "verify_cmd",
    "export": "export_cmd",
    "bench": "bench_cmd",
    "map": "map_cmd",
}


def _module(name: str):
    """The module of subcommand ``name`` (imported on first use)."""
    return importlib.import_module(f"{__name__}.{SUBCOMMANDS[name]}")


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line and exit status 2."""

    def error(self, message):  # pragma: no cover - exercised via main()
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The argument parser; with ``only`` (a subcommand name) just that subcommand's
    parser is built, so its module alone is imported."""
    parser = _Parser(
        prog="neurohw",
        description="Quantize, emulate, verify and export spiking networks for neuromorphic chips.",
    )
    parser.add_argument("--version", action="version", version=f"neurohw {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in SUBCOMMANDS:
        if only is not None and name != only:
            continue
        module = _module(name)
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__)
        module.add_args(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``neurohw`` console script; returns the exit status."""
    args_list = sys.argv[1:] if argv is None else list(argv)
    cmd = args_list[0] if args_list and args_list[0] in SUBCOMMANDS else None
    parser = build_parser(only=cmd)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code or 0)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except NeurohwError as exc:
        print(f"neurohw {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"neurohw {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line unless debugging
        if os.environ.get("NEUROHW_DEBUG"):
            raise
        print(
            f"neurohw {args.command}: internal error: {type(exc).__name__}: {exc} "
            f"(set NEUROHW_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
