"""Lava backend: build Lava process graphs from neurohw networks and run them.

:mod:`.graph` describes a network as a Lava graph spec and refuses profiles
Lava's fixed_pt models do not compute; :mod:`._builder` builds Lava
processes from a spec (the same code is copied into exported scripts);
:mod:`.runner` runs them.

Importing this package does not import Lava; :func:`import_lava` does, after
installing the Python 3.11 compatibility fix described in
:mod:`neurohw.backends.lava._compat`.
"""

from __future__ import annotations

import importlib

from ...errors import MissingDependencyError
from . import _compat

__all__ = ["import_lava", "LavaRun", "build_processes", "run_lava", "lava_graph_spec",
           "check_lava_profile", "LAVA_DATAPATH"]


def import_lava():
    """Import and return the ``lava`` package, made importable on Python 3.11.

    Raises :class:`~neurohw.errors.MissingDependencyError` with the install
    command when lava-nc is not installed.
    """
    _compat.install()
    _compat.prepare_multiprocessing()
    try:
        lava = importlib.import_module("lava")
        # the modules neurohw uses; importing them triggers the var_model patch
        importlib.import_module("lava.magma.core.run_configs")
        importlib.import_module("lava.magma.core.run_conditions")
        importlib.import_module("lava.proc.lif.process")
        importlib.import_module("lava.proc.dense.process")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "lava":
            raise MissingDependencyError(
                "the Lava backend needs lava-nc 0.10.0: run `make venv` or "
                "`pip install --no-deps --ignore-requires-python lava-nc==0.10.0` "
                "plus its pins (docs/install.md)"
            ) from None
        raise MissingDependencyError(
            f"the Lava backend needs {exc.name!r}, a dependency of lava-nc (docs/install.md)"
        ) from None
    return lava


from .graph import LAVA_DATAPATH, check_lava_profile, lava_graph_spec  # noqa: E402
from .runner import LavaRun, build_processes, run_lava  # noqa: E402
