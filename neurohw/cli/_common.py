"""Helpers shared by subcommands: loading inputs and networks, parsing lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import FileFormatError, ValidationError
from ..nirio import read_network
from ..validate import check_array_file


def load_array(path: str) -> np.ndarray:
    """Load a ``.npy`` file (never a pickle) or one array of an ``.npz``.

    The header (of the chosen member, for an ``.npz``) is read first by
    :func:`neurohw.validate.check_array_file`: object arrays and arrays that
    declare more elements or bytes than :func:`neurohw.limits.get_limits`
    allows are refused, naming the file, the member and the size.

    ``FILE.npz:KEY`` picks array ``KEY`` of an archive; a bare ``.npz`` must
    hold exactly one array.
    """
    key = None
    if ":" in str(path) and not Path(path).exists():
        path, key = str(path).rsplit(":", 1)
    p = Path(path)
    if not p.exists():
        raise FileFormatError(f"{p}: no such file")
    if p.is_dir():
        raise FileFormatError(f"{p}: is a directory, not an array file")
    with open(p, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY" and magic[:4] != b"PK\x03\x04":
        raise FileFormatError(f"{p}: not a .npy/.npz array (no NumPy or zip header)")
    # headers first: object arrays (pickles) and declared sizes above the limits are
    # refused before any data is read (neurohw.limits; NEUROHW_MAX_* raise them)
    check_array_file(p, key)
    try:
        data = np.load(p, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise FileFormatError(f"{p}: holds Python objects (pickle); neurohw never loads "
                                  f"pickles, save a numeric array") from None
        raise FileFormatError(f"{p}: not a .npy/.npz array ({exc})") from None
    except Exception as exc:
        raise FileFormatError(f"{p}: not a .npy/.npz array ({type(exc).__name__}: {exc})") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            keys = list(data.keys())
            if key is not None:
                if key not in keys:
                    raise FileFormatError(f"{p}: no array '{key}' (has: {', '.join(keys)})")
            elif len(keys) != 1:
                raise FileFormatError(f"{p}: .npz holds {len(keys)} arrays "
                                      f"({', '.join(keys)}); pick one as {p}:KEY")
            else:
                key = keys[0]
            try:
                data = data[key]
            except ValueError as exc:
                if "pickle" in str(exc).lower() or "object" in str(exc).lower():
                    raise FileFormatError(f"{p}: array '{key}' holds Python objects (pickle); "
                                          f"neurohw never loads pickles") from None
                raise FileFormatError(f"{p}: array '{key}' cannot be read ({exc})") from None
            except Exception as exc:
                raise FileFormatError(f"{p}: array '{key}' cannot be read "
                                      f"({type(exc).__name__}: {exc})") from None
        if not isinstance(data, np.ndarray):
            raise FileFormatError(f"{p}: member '{key}' is not a NumPy array")
        return data
    elif key is not None:
        raise FileFormatError(f"{p}: ':{key}' selects an array of an .npz, but this is a .npy")
    return data


def load_model(path: str):
    return read_network(path)


def parse_record(text: str):
    """``"v,u"`` -> ``("spikes", "v", "u")`` (spikes always recorded)."""
    items = [s.strip() for s in text.split(",") if s.strip()] if text else []
    bad = [s for s in items if s not in ("spikes", "v", "u")]
    if bad:
        raise ValidationError(f"--record: unknown variable(s) {', '.join(bad)}; use v, u")
    return ("spikes",) + tuple(s for s in ("v", "u") if s in items)
