"""Exports of quantized networks to the tools that run them.

* :func:`lava_processes` -- the connected Lava processes of a network;
* :func:`export_lava_script` -- a standalone ``run_lava.py`` + ``weights.npz``
  directory (needs only lava-nc and numpy);
* :func:`export_netx` -- a lava-dl netx HDF5 file (``neurohw.export.netx``);
* :func:`export_nir` -- NIR for neurohw (lossless) or a float flavor that
  snnTorch's or Norse's importer loads (``neurohw.export.nir``).

Submodules are imported on first use, so ``import neurohw.export`` stays
light and a missing optional module fails only the export that needs it.
"""

from __future__ import annotations

import importlib

__all__ = ["lava_processes", "export_lava_script", "export_netx", "run_netx", "export_nir"]

_WHERE = {
    "lava_processes": "lava_script",
    "export_lava_script": "lava_script",
    "export_netx": "netx",
    "run_netx": "netx",
    "export_nir": "nir",
}


def __getattr__(name):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'neurohw.export' has no attribute {name!r}")
    try:
        mod = importlib.import_module(f"{__name__}.{module}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__name__}.{module}":
            from ..errors import MissingDependencyError

            raise MissingDependencyError(
                f"neurohw.export.{name} is not available in this neurohw version "
                f"(module neurohw.export.{module} is missing)") from None
        raise
    return getattr(mod, name)


def __dir__():
    return sorted(set(globals()) | set(__all__))
