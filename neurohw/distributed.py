"""Spread an emulation's batch over a Dask cluster (``--scheduler ADDRESS``).

Samples of a batch are independent, so the batch is cut into contiguous pieces
along its first axis, each piece is emulated on a worker with the ordinary
engine (:func:`neurohw.emulate.run`), and the pieces are copied back in their
order: the result is the same integers, array for array, as a local run.

What travels to the workers (docs/cluster.md):

* the network as **quantized-NIR bytes** (the file format of
  docs/file-formats.md, written by :func:`neurohw.nirio.write_network`), sent
  once per run and read back on each worker with
  :func:`neurohw.nirio.read_network` -- never a pickle of a user file or of an
  in-memory object loaded from one;
* the integer input samples of each piece (numpy arrays) and the run options
  (recorded variables, engine name);
* the neurohw version of the client: a worker with another version refuses to run.

Results (``(b, T, n)`` integer arrays per population) come back piece by piece in
batch order and are copied into the ``(B, T, n)`` arrays of one
:class:`~neurohw.emulate.EmulatorRun`.

``dask.distributed`` is imported only here, and only when a scheduler is given.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from typing import Dict, Iterable, Mapping, Optional

import numpy as np

from . import ir
from .errors import MissingDependencyError, ValidationError

INSTALL_HINT = "pip install 'dask[distributed]'"


def _distributed():
    try:
        import distributed  # noqa: F401  (dask.distributed)
    except ImportError:
        raise MissingDependencyError(
            f"--scheduler needs dask.distributed, which is not installed: {INSTALL_HINT}") from None
    return distributed


def connect(scheduler, timeout: str = "10s"):
    """A ``distributed.Client`` for ``scheduler``: an address such as
    ``"tcp://10.0.0.5:8786"``, or an existing ``Client``/``LocalCluster`` (tests).

    Fails with a one-line :class:`~neurohw.errors.MissingDependencyError` when
    dask.distributed is not installed and a :class:`ValidationError` when no
    scheduler answers at the address within ``timeout``.
    """
    distributed = _distributed()
    if isinstance(scheduler, distributed.Client):
        return scheduler
    if isinstance(scheduler, str):
        _probe(scheduler, timeout)
    try:
        return distributed.Client(scheduler, timeout=timeout)
    except ValueError as exc:  # a malformed address
        raise ValidationError(f"--scheduler {scheduler}: not a Dask scheduler address ({exc}); "
                              f"use e.g. tcp://HOST:8786") from None
    except (OSError, TimeoutError) as exc:
        raise ValidationError(f"--scheduler {scheduler}: no Dask scheduler answers there "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
                              ) from None


def _probe(address: str, timeout: str) -> None:
    """Fail in one line, before any ``Client`` exists, on a malformed address or a TCP/TLS
    address where nothing listens: a ``Client`` whose connection fails inside its
    constructor leaves its event-loop thread ("IO loop") running in the process."""
    import socket

    from dask.utils import parse_timedelta
    from distributed.comm import resolve_address
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, loc = parse_address(resolve_address(address))
        if scheme not in ("tcp", "tls"):
            return  # inproc://, ucx://, ...: left to the Client
        host, port = parse_host_port(loc)
    except ValueError as exc:
        raise ValidationError(f"--scheduler {address}: not a Dask scheduler address ({exc}); "
                              f"use e.g. tcp://HOST:8786") from None
    except OSError as exc:  # the host name does not resolve
        raise ValidationError(f"--scheduler {address}: no Dask scheduler answers there "
                              f"({type(exc).__name__}: {exc})") from None
    try:
        socket.create_connection((host, port), timeout=parse_timedelta(timeout)).close()
    except OSError as exc:
        raise ValidationError(f"--scheduler {address}: no Dask scheduler answers there "
                              f"({type(exc).__name__}: {exc})") from None


def network_bytes(net: ir.Network) -> bytes:
    """``net`` as quantized-NIR (HDF5) bytes, exactly what :func:`~neurohw.nirio.write_network` writes."""
    from .nirio import write_network

    with tempfile.TemporaryDirectory(prefix="neurohw-dist-") as d:
        path = os.path.join(d, "net.q.nir")
        write_network(net, path)
        with open(path, "rb") as f:
            return f.read()


_NET_CACHE: Dict[str, ir.Network] = {}


def _network_from_bytes(data: bytes, digest: str) -> ir.Network:
    """Read quantized-NIR bytes on a worker (cached by content hash for later pieces)."""
    net = _NET_CACHE.get(digest)
    if net is None:
        from .nirio import read_network

        with tempfile.TemporaryDirectory(prefix="neurohw-dist-") as d:
            path = os.path.join(d, "net.q.nir")
            with open(path, "wb") as f:
                f.write(data)
            net = read_network(path)
        _NET_CACHE.clear()  # one network at a time per worker
        _NET_CACHE[digest] = net
    return net


def _worker_version() -> str:
    from . import __version__

    return __version__


def _run_piece(data: bytes, digest: str, version: str, x, record, engine: str,
               count_events: bool):
    """Runs on a worker: emulate one piece of the batch; plain dicts of numpy arrays back."""
    from . import __version__
    from .emulate import run

    if version != __version__:
        raise ValidationError(f"worker runs neurohw {__version__}, the client {version}: "
                              f"install the same version on every worker")
    net = _network_from_bytes(data, digest)
    res = run(net, x, record=record, engine=engine, count_events=count_events)
    return {"T": res.num_steps, "spikes": dict(res.spikes), "v": dict(res.v), "u": dict(res.u),
            "trace": dict(res.trace), "events": res.events}


def _split(x, pieces: int):
    """Contiguous batch pieces of ``x`` (an array with the batch first, or a dict of them)."""
    if isinstance(x, Mapping):
        B = next(iter(x.values())).shape[0]
    else:
        B = x.shape[0]
    pieces = max(1, min(pieces, B))
    bounds = np.linspace(0, B, pieces + 1).round().astype(np.int64)
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b > a:
            out.append(((int(a), int(b)),
                        {k: v[a:b] for k, v in x.items()} if isinstance(x, Mapping) else x[a:b]))
    return B, out


def run(net: ir.Network, x, scheduler, record: Iterable[str] = ("spikes",),
        engine: str = "auto", count_events: bool = False, pieces: Optional[int] = None,
        source: str = "input", spill_dir=None):
    """:func:`neurohw.emulate.run` with the batch spread over a Dask cluster.

    ``scheduler``: the scheduler's address (``tcp://HOST:8786``) or a ``Client``.
    ``pieces``: how many contiguous batch pieces to cut (default: one per worker;
    never more than the batch size).  ``x`` is checked locally first
    (:func:`~neurohw.emulate.prepare_input`), so a bad input fails before anything
    is sent.  ``spill_dir``: collect the results into ``.npy`` memory maps there
    instead of memory.  Returns an :class:`~neurohw.emulate.EmulatorRun` whose
    arrays equal those of a local run on the whole batch.
    """
    from . import __version__
    from .emulate import EmulatorRun, prepare_input
    from .emulate.engine import check_run_options

    record = check_run_options(record, engine)
    inputs = prepare_input(net, x, source)  # (B, T, n) per Input, checked here
    client = connect(scheduler)
    owned = client is not scheduler
    futures: list = []
    try:
        versions = client.run(_worker_version)
        if not versions:
            raise ValidationError(f"--scheduler {client.scheduler.address}: no workers")
        other = sorted({f"{w} ({v})" for w, v in versions.items() if v != __version__})
        if other:
            raise ValidationError(f"--scheduler: workers run another neurohw than the client's "
                                  f"{__version__}: {', '.join(other)}; install the same version")
        data = network_bytes(net)
        digest = hashlib.sha256(data).hexdigest()
        B, split = _split(inputs, pieces or len(versions))
        # sent once, not per piece; under a key of its own (hash=False): with the
        # content-hashed default, a second run of the same network scattered under the
        # same key while the release of the first run's future was still on its way to
        # the scheduler, which then dropped the data the new pieces needed ("lost
        # dependencies", 33 of 40 back-to-back runs failed)
        [shared] = client.scatter([data], broadcast=True, hash=False)
        # piece keys of this run alone, for the same reason (and so that a piece can never
        # be answered by a piece of an earlier run that had the same network and bounds)
        run_id = uuid.uuid4().hex[:12]
        futures = [shared] + [
            client.submit(_run_piece, shared, digest, __version__, xs, record, engine,
                          count_events, pure=False,
                          key=f"neurohw-piece-{digest[:8]}-{run_id}-{a}-{b}")
            for (a, b), xs in split]
        result: Optional[EmulatorRun] = None
        for ((a, b), _), fut in zip(split, futures[1:]):  # in batch order
            part = fut.result()
            fut.release()
            if result is None:
                result = EmulatorRun(num_steps=part["T"], batch_size=B)
                for var in ("spikes", "v", "u", "trace"):
                    table = getattr(result, var)
                    for j, (name, arr) in enumerate(part[var].items()):
                        table[name] = _buffer((B,) + arr.shape[1:], arr.dtype, spill_dir,
                                              f"{var}.{j}")
                if count_events:
                    result.events = {k: {e: np.zeros(B, c.dtype) for e, c in ev.items()}
                                     for k, ev in part["events"].items()}
            for var in ("spikes", "v", "u", "trace"):
                table = getattr(result, var)
                for name, arr in part[var].items():
                    table[name][a:b] = arr
            for k, ev in (part["events"] or {}).items() if count_events else ():
                for e, c in ev.items():
                    result.events[k][e][a:b] = c
        for var in ("spikes", "v", "u", "trace"):
            for arr in getattr(result, var).values():
                if isinstance(arr, np.memmap):
                    arr.flush()
        return result
    finally:
        # the network's bytes and any piece not collected (after an error above):
        # cancelled, so that a shared cluster does not keep computing or holding them
        if futures:
            try:
                client.cancel(futures)
            except Exception:  # the client is already broken: the error above matters
                pass
        if owned:
            client.close()


def _buffer(shape, dtype, spill_dir, name: str):
    if spill_dir is None:
        return np.empty(shape, dtype)
    return np.lib.format.open_memmap(os.path.join(os.fspath(spill_dir), f"dist-{name}.npy"),
                                     mode="w+", dtype=dtype, shape=shape)
