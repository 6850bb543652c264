"""Exception types raised by neurohw.

Every error neurohw raises on purpose subclasses :class:`NeurohwError`, so a
caller (and the command line) can tell "your input is wrong" apart from a bug.
Messages are one line and name the file, node, parameter, value and the
allowed range wherever those apply.
"""

from __future__ import annotations

import enum


class NeurohwError(Exception):
    """Base class of all errors neurohw raises deliberately."""


class ValidationError(NeurohwError, ValueError):
    """A network, parameter or array does not satisfy the profile or the IR rules."""


class FileFormatError(NeurohwError):
    """A file is missing, unreadable, not NIR, or not the kind of NIR expected."""


class UnquantizedError(FileFormatError):
    """A float NIR graph was given where a quantized one (with neurohw metadata) is needed."""


class MissingDependencyError(NeurohwError, ImportError):
    """An optional dependency needed by one feature is not installed."""


class OverflowPolicy(enum.Enum):
    """What to do when an integer leaves the range its hardware register holds.

    * ``RAISE`` -- raise :class:`ValidationError` naming the value and range.
    * ``WARN`` -- emit a :class:`RuntimeWarning`, then wrap or clip as the chip does.
    * ``WRAP`` -- wrap or clip as the chip does, silently (the chip's behaviour).
    """

    RAISE = "raise"
    WARN = "warn"
    WRAP = "wrap"
