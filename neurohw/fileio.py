"""Writing output files safely: atomically, with the user's permissions.

Every file neurohw writes (quantized NIR, reports, figures, run files,
exports) goes through :func:`atomic_write`: the content is written to a
temporary file in the target directory and renamed onto the target, so a
failure never leaves a half-written output.  The result gets the mode a
plain ``open(path, "w")`` would give (``0666 & ~umask``, e.g. ``0644`` under
umask 022), not the ``0600`` of a temporary file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Union

from .errors import FileFormatError

__all__ = ["atomic_write", "one_line"]

PathLike = Union[str, "os.PathLike[str]"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: PathLike, write_fn) -> Path:
    """Call ``write_fn(tmp_path)`` then rename the temp file onto ``path``.

    The temp file lives in the target directory, so the rename is atomic and a
    failure never leaves a half-written ``path``.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise FileFormatError(f"{path}: directory {directory} does not exist")
    if path.is_dir():
        raise FileFormatError(f"{path}: is a directory")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        write_fn(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path




def one_line(exc: BaseException) -> str:
    """``"TypeName: first line of the message"`` of an exception, for one-line errors."""
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
