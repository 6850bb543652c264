"""Make Lava 0.10.0 importable on Python 3.11 without editing installed files.

Lava 0.10.0 declares ``python_requires < 3.11``.  It installs on 3.11 with
``pip install --no-deps --ignore-requires-python lava-nc==0.10.0`` (plus its
own pins, see ``docs/install.md``), but importing it fails:
``lava/magma/compiler/var_model.py`` declares a dataclass ``ByteEncoder`` and
then uses ``ByteEncoder()`` as a default value of other dataclasses'
fields.  Python 3.11 rejects an unhashable (non-frozen dataclass) default
with ``ValueError: mutable default ... is not allowed: use default_factory``.

The fix here: a :class:`importlib.abc.MetaPathFinder` placed in front of
``sys.meta_path`` that, for exactly the module
``lava.magma.compiler.var_model``, compiles the module's source with the
decorator of ``ByteEncoder`` changed to ``@dataclass(frozen=True)``.  A
frozen dataclass is hashable, so the defaults are accepted.  Nothing else
changes: Lava never assigns to a ``ByteEncoder`` field.  The patched code
is compiled in memory and never written to Lava's ``__pycache__``.

If the source no longer contains the pattern (a fixed Lava release), the
module is loaded unchanged.

A second fragility: ``lava/magma/runtime/message_infrastructure/multiprocessing.py``
calls ``multiprocessing.set_start_method('fork')`` at import, which raises
``RuntimeError: context has already been set`` when anything in the process
has already fixed the start method -- numba's parallel backend does so when
it starts its threads (``numba/np/ufunc/parallel.py`` calls
``multiprocessing.get_start_method()``).  :func:`prepare_multiprocessing`
resets an already-fixed start method (``set_start_method(None, force=True)``,
public API) just before Lava's import, so Lava sets ``'fork'``, which its
runtime needs, itself.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading

# ---- standalone: begin (copied verbatim into exported run_lava.py) ----
TARGET = "lava.magma.compiler.var_model"
_PATTERN = "@dataclass\nclass ByteEncoder:"
_REPLACEMENT = "@dataclass(frozen=True)\nclass ByteEncoder:"


class _PatchedVarModelLoader(importlib.machinery.SourceFileLoader):
    """Loads ``var_model.py`` from source with ``ByteEncoder`` frozen."""

    patched = False

    def get_code(self, fullname):  # noqa: D401 - importlib API
        source = self.get_data(self.path).decode("utf-8")
        if _PATTERN in source:
            source = source.replace(_PATTERN, _REPLACEMENT, 1)
            type(self).patched = True
        # compile from (patched) source every time: never trust or write a .pyc
        return compile(source, self.path, "exec", dont_inherit=True)


class _LavaVarModelFinder(importlib.abc.MetaPathFinder):
    """Routes only ``lava.magma.compiler.var_model`` to the patching loader."""

    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return spec
        spec.loader = _PatchedVarModelLoader(fullname, spec.origin)
        return spec


def install_var_model_patch():
    """Insert the finder at the front of ``sys.meta_path`` (idempotent)."""
    if not any(type(f).__name__ == "_LavaVarModelFinder" for f in sys.meta_path):
        sys.meta_path.insert(0, _LavaVarModelFinder())
# ---- standalone: end ----


_lock = threading.Lock()


def install() -> None:
    """Insert the finder at the front of ``sys.meta_path`` (idempotent, thread-safe)."""
    with _lock:
        install_var_model_patch()


_MP_MODULE = "lava.magma.runtime.message_infrastructure.multiprocessing"


def prepare_multiprocessing() -> None:
    """Let Lava's import set the 'fork' start method even if something fixed one before."""
    import multiprocessing as mp

    if _MP_MODULE in sys.modules:
        return
    if mp.get_start_method(allow_none=True) is not None:
        mp.set_start_method(None, force=True)


def was_patched() -> bool:
    """True once ``var_model`` has been loaded through the patch."""
    return _PatchedVarModelLoader.patched
