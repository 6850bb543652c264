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


def flatten_input(arr: np.ndarray, in_shape, source: str, name: str = "input") -> np.ndarray:
    """Bring spike input for an Input of unbatched shape ``in_shape`` to ``(B, T, n)``.

    ``n = prod(in_shape)``.  The accepted layouts, tried in this order (the
    rules ``run_lava.py`` repeats in its own ``load_input``; tested to agree):

    1. ``(T, n)`` -- one sample;
    2. ``(T, *in_shape)`` where ``in_shape`` has two or more dimensions -- one
       sample of image-shaped steps;
    3. ``(B, T, n)``;
    4. ``(B, T, d1, d2, ...)`` with ``d1 * d2 * ... == n`` -- each step is
       flattened row-major (C order, the last axis fastest), the order NIR
       and the emulator use for ``(C, H, W)`` shapes.  When the trailing axes
       have as many dimensions as ``in_shape`` they must equal it (so an
       ``(H, W, C)`` image for a ``(C, H, W)`` input is refused rather than
       scrambled; transpose it first).

    Anything else is a one-line :class:`~neurohw.errors.ValidationError`
    naming ``source`` and the expected shapes.  Values are not checked here.
    """
    in_shape = tuple(int(d) for d in in_shape)
    n = int(np.prod(in_shape)) if in_shape else 1
    shp = tuple(arr.shape)
    want = (f"expected (T, {n}) or (B, T, {n})"
            + (f", or (T, {', '.join(map(str, in_shape))}) / (B, T, {', '.join(map(str, in_shape))})"
               if len(in_shape) > 1 else "")
            + f" for input '{name}'")
    if arr.ndim == 2 and shp[1] == n:
        out = arr[None]
    elif len(in_shape) > 1 and arr.ndim == len(in_shape) + 1 and shp[1:] == in_shape:
        out = arr.reshape(1, shp[0], n)
    elif arr.ndim >= 3 and int(np.prod(shp[2:])) == n:
        if arr.ndim - 2 == len(in_shape) and len(in_shape) > 1 and shp[2:] != in_shape:
            raise ValidationError(f"{source}: shape {shp}: steps of shape {shp[2:]} are not the "
                                  f"input's {in_shape} (channels first); {want}")
        out = arr.reshape(shp[0], shp[1], n)
    else:
        raise ValidationError(f"{source}: shape {shp}, {want}")
    if out.shape[0] < 1 or out.shape[1] < 1:
        raise ValidationError(f"{source}: shape {shp} has no samples or no steps")
    return out


def input_shape(net) -> tuple:
    """``(name, unbatched shape)`` of the one Input node of a quantized network."""
    from .. import ir

    names = list(net.of_type(ir.InputNode))
    if len(names) != 1:
        raise ValidationError(f"network has {len(names)} Input nodes; the command line takes "
                              f"one --input array")
    return names[0], tuple(net.nodes[names[0]].shape)


def load_input(path: str, net=None, shape=None, name: str = "input") -> np.ndarray:
    """The one input loader of every command: :func:`load_array` (``FILE.npz:KEY``,
    no pickles, size limits) then :func:`flatten_input` to ``(B, T, n)`` for the
    network's Input (``net``, a quantized :class:`~neurohw.ir.Network`) or for an
    Input of unbatched ``shape``."""
    arr = load_array(path)
    if net is not None:
        name, shape = input_shape(net)
    if shape is None:
        return arr
    return flatten_input(arr, shape, str(path), name)


def ensure_parent(path, make: bool = True) -> None:
    """Create the missing parent directories of output ``path`` (``make``), or
    refuse in one line naming the directory.  Commands create them: a fresh
    clone can run ``neurohw quantize ... -o out/m.q.nir`` without ``mkdir out``."""
    parent = Path(path).parent
    if parent.is_dir():
        return
    if parent.exists():
        raise FileFormatError(f"{path}: {parent} is not a directory")
    if not make:
        raise FileFormatError(f"{path}: directory {parent} does not exist")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileFormatError(f"{path}: cannot create directory {parent} "
                              f"({exc.strerror or exc})") from None


def parse_populations(text: str, net) -> tuple:
    """``"a,b"`` -> ``("a", "b")``, each a population of ``net`` (one-line error otherwise)."""
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in names if s not in net.populations]
    if bad or not names:
        raise ValidationError(f"--populations: unknown population(s) {', '.join(bad) or '(none)'}"
                              f"; the network has {', '.join(net.populations)}")
    return names


def load_model(path: str):
    return read_network(path)


def parse_record(text: str):
    """``"v,u"`` -> ``("spikes", "v", "u")`` (spikes always recorded)."""
    items = [s.strip() for s in text.split(",") if s.strip()] if text else []
    bad = [s for s in items if s not in ("spikes", "v", "u")]
    if bad:
        raise ValidationError(f"--record: unknown variable(s) {', '.join(bad)}; use v, u")
    return ("spikes",) + tuple(s for s in ("v", "u") if s in items)
