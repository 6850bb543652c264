"""Calibration: run the mapped float model on sample inputs to find state peaks.

The model here is the chip's recursion in float64 *before* rounding -- the
forward-Euler neurons of :mod:`.core` with the effective integer decays, fed
by the float affine paths of :mod:`.graph` -- with NIR's timing (no synaptic
latency: a layer sees its sources' spikes of the same step; a back edge of
a cycle sees the previous step's).  Per neuron it records the largest
``|u|`` and ``|v|`` in float volts, which :func:`.core.choose_scale` turns
into a voltage scale with headroom.
"""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from ..errors import ValidationError
from .core import NeuronMap
from .graph import FloatGraph

__all__ = ["peaks_from_data", "peaks_from_bounds", "run_mapped_float"]


def _order(fg: FloatGraph):
    """Neurons in flow order, and for each path whether it reads last step's spikes."""
    from ..nirgraph import flow_order

    order = [n for n in flow_order(list(fg.nodes), fg.edges) if n in fg.neurons]
    rank = {n: i for i, n in enumerate(order)}
    late = {}
    for p in fg.paths:
        late[id(p)] = p.src in rank and rank[p.src] >= rank[p.dst]
    return order, late


def _project(path, s_t: np.ndarray) -> np.ndarray:
    """Float input of ``path`` from source spikes ``s_t`` (B, n_src), bias excluded."""
    if path.kind == "dense":
        return s_t @ path.A.T
    from .graph import conv_float

    c = path.conv
    y = conv_float(s_t.reshape((s_t.shape[0],) + tuple(c["input_shape"])), c["weight"],
                   c["input_shape"], c["stride"], c["padding"], c["dilation"], c["groups"])
    return y.reshape(s_t.shape[0], -1)


def _drive(path, s, t, dt):
    """Input of ``path`` at step ``t`` from source spike history ``s`` (B, T, n_src)."""
    if path.delay_s is None:
        return _project(path, s[:, t])
    # only dense paths carry delays (graph.analyze keeps convolutions delay-free)
    steps = np.rint(path.delay_s / dt).astype(np.int64)
    out = np.zeros((s.shape[0], path.A.shape[0]))
    for k in np.unique(steps):
        if t - k < 0:
            continue
        rows = steps == k
        out[:, rows] += s[:, t - k] @ path.A[rows].T
    return out


def _row_l1(path) -> np.ndarray:
    """``sum_j |A_ij|`` per output neuron, without materializing a convolution's matrix."""
    if path.kind == "dense":
        return np.abs(path.A).sum(axis=1)
    from .graph import conv_float

    c = path.conv
    ones = np.ones((1,) + tuple(c["input_shape"]))
    y = conv_float(ones, np.abs(c["weight"]), c["input_shape"], c["stride"], c["padding"],
                   c["dilation"], c["groups"])
    return y.reshape(-1)


def spike_batch(x, n: int, source: str, name: str = "input") -> np.ndarray:
    """Check spike input for Input ``name`` of ``n`` values; returns float64 ``(B, T, n)``.

    Accepts ``(T, n)``, ``(B, T, n)`` or ``(B, T, *shape)``; refuses empty batches or
    runs, non-finite, complex or non-0/1 values with one line naming ``source``.
    """
    raw = np.asarray(x)
    if raw.dtype.kind == "c":
        raise ValidationError(f"{source}: complex values are not spikes")
    try:
        arr = raw.astype(np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"{source}: not a real-valued array") from None
    if arr.ndim >= 2 and arr.shape[-1] != n and int(np.prod(arr.shape[2:])) == n:
        arr = arr.reshape(arr.shape[0], arr.shape[1], n)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[2] != n:
        raise ValidationError(
            f"{source}: shape {raw.shape}, expected (B, T, {n}) or (T, {n}) for input '{name}'")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValidationError(f"{source}: shape {arr.shape} has no samples or no steps")
    if not np.all(np.isfinite(arr)):
        raise ValidationError(f"{source}: contains NaN or infinity")
    if np.any((arr != 0) & (arr != 1)):
        bad = arr[(arr != 0) & (arr != 1)].reshape(-1)[0]
        raise ValidationError(f"{source}: value {bad} is not a spike (0 or 1)")
    return arr


def run_mapped_float(fg: FloatGraph, maps: Dict[str, NeuronMap], x: np.ndarray, dt: float,
                     source: str = "calibration data"):
    """Simulate the mapped float model; returns (spikes, peak_u, peak_v) dicts per neuron.

    ``x`` is ``(B, T, *input_shape)`` (or a dict by Input name).  Spikes are
    ``(B, T, n)`` float64 0/1; peaks are per neuron, in float volts.
    """
    if not isinstance(x, dict):
        if len(fg.inputs) != 1:
            raise ValidationError(f"{source}: the graph has several Inputs; give a dict")
        x = {fg.inputs[0]: x}
    hist: Dict[str, np.ndarray] = {}
    B = T = None
    for name in fg.inputs:
        arr = spike_batch(x[name], int(np.prod(fg.shapes[name])), source, name)
        hist[name] = arr
        B, T = arr.shape[:2]
    order, late = _order(fg)
    state = {}
    peak_u = {n: np.zeros(maps[n].size) for n in order}
    peak_v = {n: np.zeros(maps[n].size) for n in order}
    for n in order:
        hist[n] = np.zeros((B, T, maps[n].size))
        state[n] = (np.zeros((B, maps[n].size)), np.zeros((B, maps[n].size)))
    into = {n: [p for p in fg.paths if p.dst == n] for n in order}
    bias = {n: float_bias(fg, maps[n]) for n in order}
    for t in range(T):
        for n in order:
            m = maps[n]
            d = np.zeros((B, m.size))
            for p in into[n]:
                if late[id(p)]:
                    if t > 0:
                        d += _drive(p, hist[p.src], t - 1, dt)
                else:
                    d += _drive(p, hist[p.src], t, dt)
            u, v = state[n]
            # per neuron; a_u = 1 (no synaptic filter) leaves exactly one step's input in u
            a_u = m.alpha_u
            a_v = m.alpha_v
            u = np.where(m.filtered, (1 - a_u) * u, 0.0) + m.gain * d
            # constant parts go straight into v, as the chip's bias does
            v = (1 - a_v) * v + u + bias[n]
            peak_u[n] = np.maximum(peak_u[n], np.abs(u).max(axis=0))
            peak_v[n] = np.maximum(peak_v[n], np.abs(v).max(axis=0))
            if m.spiking:
                s = v > m.v_threshold
                v = np.where(s, 0.0, v)
                hist[n][:, t] = s
            state[n] = (u, v)
    return {n: hist[n] for n in order}, peak_u, peak_v


def float_bias(fg: FloatGraph, m: NeuronMap) -> np.ndarray:
    """Constant per-step increment of ``v`` (float volts): affine biases and leak.

    A constant input ``b`` reaches ``v`` at ``g b / alpha_u'`` per step once
    the synaptic filter has settled; the chip adds it to ``v`` directly.
    """
    b = np.zeros(m.size)
    for p in fg.paths:
        if p.dst == m.name:
            b += p.bias
    return m.gain * b / m.alpha_u + m.alpha_v * m.v_leak


def peaks_from_data(fg, maps, x, dt, source: str = "calibration data"
                    ) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    """Per-neuron peak ``|u|`` and ``|v|`` (float volts) observed on calibration data ``x``."""
    _, pu, pv = run_mapped_float(fg, maps, x, dt, source)
    return pu, pv


def peaks_from_bounds(fg: FloatGraph, maps: Dict[str, NeuronMap]):
    """Worst-case peaks without data: every input spiking at once, every step.

    ``|u| <= g (sum_j |A_ij| + |b_i|) / alpha_u'`` and, for non-spiking
    readouts, ``|v| <= (|u| + alpha_v' |v_leak|) / max(alpha_v', 2**-decay_bits)`` (an
    integrator is assumed to see full drive for at most ``2**decay_bits`` steps); a
    spiking neuron's ``v`` is bounded by its threshold plus one step's input.
    """
    pu, pv = {}, {}
    for n, m in maps.items():
        l1 = np.zeros(m.size)
        for p in fg.paths:
            if p.dst != n:
                continue
            l1 += _row_l1(p)
        a_u = m.alpha_u
        a_v = m.alpha_v
        pu[n] = m.gain * l1 / a_u
        step = pu[n] + np.abs(float_bias(fg, m))
        if m.spiking:
            pv[n] = m.v_threshold + step
        else:
            # a leaky readout settles at step / alpha_v; an integrator (no leak) is assumed
            # to integrate full drive for at most 2**decay_bits steps
            pv[n] = step / np.maximum(a_v, 1 / m.unity)
    return pu, pv
