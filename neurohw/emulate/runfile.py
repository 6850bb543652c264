"""Writing emulator run files: compressed ``.npz`` archives streamed in bounded memory.

A run file is an ordinary ``.npz`` (``np.load`` reads it) with one member per
recorded array, ``NAME.spikes`` / ``NAME.v`` / ``NAME.u`` / ``NAME.trace``, each
``(B, T, n)`` (the emulator-output contract).  :func:`write_run` writes every
member as a zip entry compressed with DEFLATE (level 1 by default: spike rasters
are mostly zeros and shrink 10-50x, at about the speed of the disk), streaming
it one block of samples at a time, so writing never copies a whole array: with
recording buffers spilled to disk (:func:`neurohw.emulate.run` with
``spill_dir``) a run of any length is recorded and written in bounded memory.
"""

from __future__ import annotations

import mmap
import zipfile
from typing import IO, Mapping, Union

import numpy as np

__all__ = ["write_run", "SPILL_BYTES", "STORED_SUFFIXES"]

SPILL_BYTES = 256 << 20
"""Recordings larger than this (bytes, all arrays together) are spilled to disk by
``neurohw emulate`` instead of being kept in memory."""

_BLOCK_BYTES = 16 << 20  # bytes per write: bounds the copy of a strided block


#: members whose names end so are stored uncompressed by default: membrane voltages
#: and currents are dense 24-bit integers that DEFLATE shrinks by only ~35 % at ~30
#: MB/s (9 s for 307 MB), where spike rasters shrink 6-10x at ~80 MB/s
STORED_SUFFIXES = (".v", ".u")


def write_run(dest: Union[str, IO[bytes]], arrays: Mapping[str, np.ndarray],
              compresslevel: int = 1, stored=STORED_SUFFIXES) -> None:
    """Write ``arrays`` (name -> array) as an ``.npz`` to ``dest`` (a path or a binary file).

    Each array is written as ``NAME.npy`` (format 1.0/2.0 header, C order, the
    array's dtype) in blocks along its first axis of at most ~16 MiB, so a
    strided or memory-mapped array (e.g. a ``(B, T, n)`` view of a ``(T, B, n)``
    buffer on disk) is never copied whole.  ``compresslevel`` 0 stores the data
    uncompressed, 1-9 are zlib's levels (1: fastest); members whose names end with one
    of ``stored`` (default ``.v``, ``.u``) are stored uncompressed (pass ``()`` to
    compress everything).  The result equals
    ``np.savez`` / ``np.savez_compressed`` of the same arrays, element for element.
    """
    method = zipfile.ZIP_STORED if compresslevel == 0 else zipfile.ZIP_DEFLATED
    kw = {} if compresslevel == 0 else {"compresslevel": int(compresslevel)}
    with zipfile.ZipFile(dest, mode="w", compression=method, allowZip64=True, **kw) as zf:
        for name, arr in arrays.items():
            arr = np.asanyarray(arr)
            if arr.dtype.hasobject:
                raise ValueError(f"write_run: {name} holds Python objects")
            member = name + ".npy"
            if method != zipfile.ZIP_STORED and name.endswith(tuple(stored)):
                member = zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0))
                member.compress_type = zipfile.ZIP_STORED
            with zf.open(member, mode="w", force_zip64=True) as f:
                header = {"descr": np.lib.format.dtype_to_descr(arr.dtype),
                          "fortran_order": False, "shape": arr.shape}
                try:
                    np.lib.format.write_array_header_1_0(f, header)
                except ValueError:  # header longer than 65535 bytes
                    np.lib.format.write_array_header_2_0(f, header)
                if arr.ndim == 0:
                    f.write(np.ascontiguousarray(arr).tobytes())
                    continue
                row = max(1, arr[0:1].nbytes)
                step = max(1, _BLOCK_BYTES // row)
                mm = _mapping(arr)
                if mm is not None and hasattr(mmap, "MADV_RANDOM"):
                    # no read-around: each block touches a few KiB per row of the file
                    mm.madvise(mmap.MADV_RANDOM)
                for i in range(0, arr.shape[0], step):
                    f.write(np.ascontiguousarray(arr[i:i + step]).tobytes())
                    if mm is not None:  # drop the pages just read from this process
                        mm.madvise(mmap.MADV_DONTNEED)


def _mapping(arr: np.ndarray):
    """The ``mmap`` behind a view of a read-only ``np.memmap``, else None.  Reading a
    ``(B, T, n)`` view of a ``(T, B, n)`` file touches pages all over it; releasing
    them after each block keeps the writer's resident memory to about one block."""
    base = arr
    while base is not None:
        mm = getattr(base, "_mmap", None)
        if mm is not None:
            ok = isinstance(base, np.memmap) and base.mode == "r" and hasattr(mm, "madvise")
            return mm if ok and hasattr(mmap, "MADV_DONTNEED") else None
        base = base.base
    return None
