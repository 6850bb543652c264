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

__all__ = ["atomic_write", "current_umask", "output_mode", "one_line"]

PathLike = Union[str, "os.PathLike[str]"]


def current_umask() -> int:
    """The process's file-creation mask (e.g. ``0o022``).

    Read from ``/proc/self/status`` where the kernel reports it (Linux 4.7+),
    so no other thread ever runs under a changed mask; elsewhere it is read
    with the usual ``os.umask`` set-and-restore.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def output_mode(executable: bool = False) -> int:
    """The permission bits a new output gets: ``0o666 & ~umask`` for a file
    (``0o644`` under umask 022, ``0o600`` under 077), ``0o777 & ~umask`` for a
    directory or an executable script -- what ``open(path, "w")`` and
    ``mkdir`` give."""
    return (0o777 if executable else 0o666) & ~current_umask()


def atomic_write(path: PathLike, write_fn) -> Path:
    """Call ``write_fn(tmp_path)`` then rename the temp file onto ``path``.

    The temp file lives in the target directory, so the rename is atomic and a
    failure (an exception from ``write_fn``, or an interrupt) never leaves a
    half-written ``path`` nor the temp file; an existing ``path`` is kept
    untouched until the rename.  The result gets :func:`output_mode`
    (``0o644`` under umask 022), also when it replaces an existing file.
    Raises :class:`~neurohw.errors.FileFormatError` when the directory is
    missing or ``path`` is a directory.
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
        os.chmod(tmp, output_mode())
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
