"""Float NIR -> integer chip network: the mapping, with every approximation recorded.

Notation (per neuron ``i``; ``dt`` seconds per step; all formulas also in
``docs/quantization.md``):

* decays: ``alpha_v = dt / tau_mem``, ``dv = round(4096 alpha_v)``;
  ``alpha_u = dt / tau_syn``, ``du = round(4096 alpha_u) - 1`` (Lava's
  offset); a neuron without a synaptic filter (LIF, IF, LI, I, Threshold)
  gets ``du = 4095`` so ``u = 64 a`` holds exactly one step's input.
  The chip then runs the forward-Euler model with the *effective*
  ``alpha_v' = dv / 4096`` and ``alpha_u' = (du + 1) / 4096``.
* gain ``g``: the float voltage increment per unit of synaptic input per
  step -- ``r alpha_v'`` (LIF, LI), ``r w_in alpha_v' alpha_u'`` (CubaLIF,
  CubaLI), ``r dt`` (IF, I), ``1`` (Threshold).
* voltage scale ``S_i`` (chip units per float volt): chosen per population
  so the threshold mantissa ``vth = round(S v_th / 64)`` is as large as the
  headroom of the 24-bit state allows (see :func:`choose_scale`).
* a projection with float map ``A`` (from :mod:`.graph`) gets mantissas
  ``w = round(S_i g_i A_ij / (64 * 2**e))`` with the smallest exponent
  ``e`` that keeps ``|w|`` within the sign mode's range, and the sign mode
  from the signs of ``A`` (excitatory/inhibitory use all 8 bits; mixed
  mode keeps even mantissas, since Lava drops the LSB).
* bias: ``B_i = S_i (g_i b_i + alpha_v' v_leak_i)`` (``b`` the constant
  part of the incoming affine maps), as ``bias_mant * 2**bias_exp`` with
  the smallest exponent that fits the 13-bit mantissa.

Rounding is to nearest (numpy ``rint``, ties to even) everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from .. import ir
from ..errors import ValidationError
from ..floatview import float_view_weight
from ..profiles import HardwareProfile
from .graph import FloatGraph, Path

__all__ = ["NeuronMap", "ProjectionMap", "neuron_params", "choose_scale", "quantize_weights",
           "quantize_bias", "build_network"]

SPIKING = ("LIF", "CubaLIF", "IF", "Threshold")


def _field(node, name: str, shape, where: str, default=None) -> np.ndarray:
    value = getattr(node, name, None)
    if value is None:
        if default is None:
            raise ValidationError(f"{where}: parameter {name} is missing")
        value = default
    arr = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValidationError(f"{where}: {name} contains a non-finite value")
    try:
        return np.broadcast_to(arr, shape).reshape(-1).astype(np.float64)
    except ValueError:
        raise ValidationError(f"{where}: {name} has shape {arr.shape}, neurons have shape {shape}") from None


@dataclass
class NeuronMap:
    """How one NIR neuron node maps to a chip LIF population (floats per neuron, flat)."""

    name: str
    kind: str  # the NIR type
    shape: Tuple[int, ...]
    du: int
    dv: int
    gain: np.ndarray  # g_i
    v_threshold: Optional[np.ndarray]  # None for non-spiking readouts
    v_leak: np.ndarray  # after any v_reset shift
    v_shift: np.ndarray  # v_reset moved to 0: v_chip/S = v_float - v_shift
    tau_mem_s: float = math.inf
    tau_syn_s: Optional[float] = None
    tau_mem_eff_s: float = math.inf
    tau_syn_eff_s: Optional[float] = None
    notes: List[str] = field(default_factory=list)
    scale: Optional[np.ndarray] = None  # S_i, set by choose_scale
    vth: int = 0

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def spiking(self) -> bool:
        return self.v_threshold is not None


def _uniform(values: np.ndarray, where: str, param: str, notes: List[str]) -> float:
    v = float(np.median(values))
    dev = float(np.max(np.abs(values - v))) if values.size else 0.0
    if dev > 1e-9 * max(abs(v), 1e-30):
        notes.append(f"{param} differs across neurons (max deviation {dev:.3g} from median {v:.6g}); "
                     f"the chip uses one value per population: the median")
    return v


def _decay(tau: float, dt: float, where: str, param: str, notes: List[str], offset: int) -> Tuple[int, float]:
    """12-bit decay for time constant ``tau`` (s); returns (d, effective tau in s)."""
    if tau <= 0:
        raise ValidationError(f"{where}: {param}={tau} s must be positive")
    if tau < dt:
        raise ValidationError(
            f"{where}: {param}={tau:.6g} s is shorter than dt={dt:.6g} s; the chip cannot decay "
            f"faster than one step (use a smaller --dt)")
    raw = 4096.0 * dt / tau
    d = int(np.clip(np.rint(raw), offset, 4096)) - offset
    if d > 4095:
        d = 4095
    if offset == 0 and d == 0:
        # a leak of 0 would also zero the input gain r * dv / 4096: keep the slowest leak
        d = 1
        notes.append(f"{param}={tau:.6g} s is longer than 8192 steps of dt={dt:.6g} s; the "
                     f"slowest 12-bit leak (d=1, {4096 * dt:.6g} s) is used -- use IF/I for no leak")
    alpha = (d + offset) / 4096.0
    eff = math.inf if alpha == 0 else dt / alpha
    if abs(eff - tau) > 1e-3 * tau:
        notes.append(f"{param}={tau:.6g} s becomes {eff:.6g} s after 12-bit rounding "
                     f"(d={d}, {100 * (eff - tau) / tau:+.2f}%)")
    return d, eff


def neuron_params(name: str, node, shape, dt: float, source: str = "graph") -> NeuronMap:
    """Decays, gain, threshold and leak of one NIR neuron node (see module docstring)."""
    t = type(node).__name__
    where = f"{source}: node '{name}'"
    n = tuple(shape)
    notes: List[str] = []
    f = lambda p, default=None: _field(node, p, n, where, default)  # noqa: E731
    zeros = np.zeros(int(np.prod(n)))
    tau_syn = tau_syn_eff = None
    tau_mem = tau_mem_eff = math.inf
    du = 4095
    if t in ("LIF", "LI"):
        tau_mem = _uniform(f("tau"), where, "tau", notes)
        dv, tau_mem_eff = _decay(tau_mem, dt, where, "tau", notes, 0)
        gain = f("r") * (dv / 4096.0)
        v_leak = f("v_leak", 0.0)
    elif t in ("CubaLIF", "CubaLI"):
        tau_mem = _uniform(f("tau_mem"), where, "tau_mem", notes)
        tau_syn = _uniform(f("tau_syn"), where, "tau_syn", notes)
        dv, tau_mem_eff = _decay(tau_mem, dt, where, "tau_mem", notes, 0)
        du, tau_syn_eff = _decay(tau_syn, dt, where, "tau_syn", notes, 1)
        gain = f("r") * f("w_in", 1.0) * (dv / 4096.0) * ((du + 1) / 4096.0)
        v_leak = f("v_leak", 0.0)
    elif t in ("IF", "I"):
        dv = 0
        gain = f("r") * dt
        v_leak = zeros.copy()
    elif t == "Threshold":
        dv = 4095
        gain = np.ones_like(zeros)
        v_leak = zeros.copy()
        notes.append("Threshold (stateless) runs as a LIF with dv=4095: 1/4096 of v survives each step")
    else:
        raise ValidationError(f"{where}: {t} is not a neuron type")
    if t in ("LIF", "CubaLIF", "IF"):
        v_th = f("v_threshold")
        v_reset = f("v_reset", 0.0) if getattr(node, "v_reset", None) is not None else zeros.copy()
    elif t == "Threshold":
        v_th = f("threshold")
        v_reset = zeros.copy()
    else:
        v_th, v_reset = None, zeros.copy()
    if np.any(v_reset != 0):
        # tau dv/dt = (v_leak - v) + r I is shift-invariant: v' = v - v_reset resets to 0
        notes.append(f"v_reset={_fmt(v_reset)} is moved to 0 by shifting v (threshold and leak "
                     f"shift with it); exact except that the chip starts at v = v_reset, not 0")
        v_th = v_th - v_reset
        v_leak = v_leak - v_reset
    if v_th is not None and np.any(v_th <= 0):
        bad = float(v_th[v_th <= 0][0])
        raise ValidationError(f"{where}: v_threshold - v_reset = {bad} must be positive on a chip "
                              f"(spikes when v > vth with vth >= 0, reset to 0)")
    if t in ("IF", "I") and np.any(f("r") <= 0):
        raise ValidationError(f"{where}: r must be positive")
    return NeuronMap(name, t, n, int(du), int(dv), gain.astype(np.float64), v_th,
                     v_leak.astype(np.float64), v_reset, tau_mem, tau_syn, tau_mem_eff,
                     tau_syn_eff, notes)


def _fmt(a: np.ndarray) -> str:
    u = np.unique(a)
    return f"{u[0]:.4g}" if u.size == 1 else f"{u.min():.4g}..{u.max():.4g}"


def choose_scale(nm: NeuronMap, peak_input: np.ndarray, peak_v: np.ndarray,
                 profile: HardwareProfile, margin: float = 1.25, min_vth_bits: int = 9,
                 s_cap: Optional[np.ndarray] = None) -> None:
    """Choose the voltage scale ``S_i`` and the threshold mantissa of a population.

    ``peak_input`` (per neuron, float volts per step) bounds ``|u| / S`` and
    ``peak_v`` bounds ``|v| / S``.  ``S`` is the largest value with
    ``margin * S * max(peak) < 2**23`` (no wrap of the 24-bit state) and
    ``vth <= vth_max``, but never below the one giving a ``min_vth_bits``-bit
    threshold (precision wins over headroom there; the report counts wraps).
    ``s_cap`` (per neuron) is the largest scale the incoming weights and the
    bias can express (mantissa range times the largest exponent); it always wins.
    """
    limit = (1 << (profile.state_bits - 1)) - 1
    vth_max = profile.range_of("vth")[1]
    shift = profile.vth_shift
    peak = float(np.max(np.maximum(peak_input, peak_v), initial=0.0))
    if nm.spiking:
        v_th = nm.v_threshold
        # vth = S_i v_th_i / 64 is one integer for the whole population, so S_i = 64 vth / v_th_i
        th = float(np.max(v_th))
        # no observed activity still leaves the threshold itself to represent
        s_room = limit / (margin * max(peak, th))
        vth_room = s_room * float(np.min(v_th)) / (1 << shift)
        vth = int(min(vth_max, math.floor(vth_room)))
        floor_vth = min(vth_max, 1 << min_vth_bits)
        if vth < floor_vth:
            nm.notes.append(f"peak input {peak:.4g} is {peak / th:.3g}x the threshold; keeping a "
                            f"{min_vth_bits}-bit threshold (vth={floor_vth}) may wrap the 24-bit state")
            vth = floor_vth
        caps = s_cap * v_th if s_cap is not None else np.array([])
        caps = caps[np.isfinite(caps)]  # inf: no weight or bias limits this neuron
        if caps.size:
            cap = int(math.floor(float(np.min(caps)) / (1 << shift)))
            if cap < vth:
                nm.notes.append(f"threshold mantissa limited to {max(cap, 1)} (from {vth}) so the "
                                f"largest weight or bias fits its mantissa at the largest exponent")
                vth = cap
        vth = max(vth, 1)
        nm.vth = vth
        nm.scale = (vth << shift) / v_th
    else:
        # a readout must never fire: keep |v| below the largest threshold, (vth_max << 6) - 1,
        # which is itself below the 24-bit saturation 2**23 - 1
        nm.vth = vth_max
        room = (vth_max << shift) - 1
        s = room / (margin * peak) if peak > 0 else float(1 << (profile.state_bits - 8))
        if s_cap is not None and np.any(np.isfinite(s_cap)):
            s = min(s, float(np.min(s_cap[np.isfinite(s_cap)])))
        nm.scale = np.full(nm.size, s)


def limits(profile: HardwareProfile, constraints: Optional[Dict[str, Tuple[int, int]]], param: str):
    """The profile's range of ``param``, narrowed by ``constraints`` (e.g. for netx export)."""
    lo, hi = profile.range_of(param)
    if constraints and param in constraints:
        c_lo, c_hi = constraints[param]
        lo, hi = max(lo, c_lo), min(hi, c_hi)
    return lo, hi


def scale_caps(fg: FloatGraph, maps: Dict[str, NeuronMap], profile: HardwareProfile,
               constraints: Optional[Dict[str, Tuple[int, int]]] = None):
    """Per population, the largest ``S_i`` the weight and bias mantissas can express.

    ``S_i g_i |A_ij| / 64 <= w_max 2**e_max`` for every incoming weight and
    ``S_i |b_i| <= bias_max 2**bias_exp_max`` for the constant input.
    """
    from .calibrate import float_bias

    top = profile.weight_range("excitatory")[1]
    w_hi = top * 2.0 ** limits(profile, constraints, "weight_exp")[1]
    b_hi = profile.range_of("bias_mant")[1] * 2.0 ** limits(profile, constraints, "bias_exp")[1]
    caps = {}
    for name, m in maps.items():
        wmax = np.zeros(m.size)
        for p in fg.paths:
            if p.dst != name:
                continue
            if p.kind == "dense":
                wmax = np.maximum(wmax, np.abs(p.A).max(axis=1, initial=0.0))
            else:
                w = p.conv["weight"]
                per_ch = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
                hw = int(np.prod(p.conv["out_shape"][1:]))
                wmax = np.maximum(wmax, np.repeat(per_ch, hw))
        with np.errstate(divide="ignore"):
            cw = np.where(wmax * m.gain > 0, 64.0 * w_hi / (wmax * m.gain), np.inf)
            b = np.abs(float_bias(fg, m))
            cb = np.where(b > 0, b_hi / b, np.inf)
        caps[name] = np.minimum(cw, cb)
    return caps


def quantize_weights(x: np.ndarray, profile: HardwareProfile, where: str,
                     notes: List[str], e_min: Optional[int] = None,
                     constraints: Optional[Dict[str, Tuple[int, int]]] = None) -> Tuple[np.ndarray, int, str]:
    """Mantissas, exponent and sign mode for target chip increments ``x`` (``64 * w * 2**e``).

    ``x`` is ``S_i g_i A_ij / 64`` (float).  Returns int64 mantissas already
    on Lava's grid (even in mixed mode) so Lava's truncation changes nothing.
    """
    if np.all(x >= 0):
        mode = "excitatory"
    elif np.all(x <= 0):
        mode = "inhibitory"
    else:
        mode = "mixed"
    lo, hi = profile.weight_range(mode)
    step = 2 if mode == "mixed" else 1  # mixed 8-bit: Lava keeps even mantissas
    # the largest magnitude on the grid: 254 mixed, 255 excitatory, 255 inhibitory
    top = -lo if mode == "inhibitory" else hi - (hi % step)
    e_lo, e_hi = limits(profile, constraints, "weight_exp")
    amax = float(np.max(np.abs(x), initial=0.0))
    if amax == 0:
        return np.zeros(x.shape, np.int64), 0, mode
    if e_min is not None and e_min > e_lo:
        e_lo = e_min
        if amax < top * 2.0 ** (e_min - 1):
            lost = int(math.floor(math.log2(top * 2.0 ** e_min / amax)))
            notes.append(f"{where}: weight_exp kept >= {e_min} (Lava's Conv); the largest "
                         f"mantissa uses {lost} bit(s) less than it could")
    e = int(math.ceil(math.log2(amax / top))) if amax > top * 2.0**e_lo else e_lo
    # rounding can push the largest value just over the top: check and bump
    while e < e_hi and np.max(np.abs(np.rint(x / (step * 2.0**e)) * step)) > max(top, -lo):
        e += 1
    e = int(np.clip(e, e_lo, e_hi))
    w = np.rint(x / (step * 2.0**e)).astype(np.int64) * step
    clipped = np.clip(w, lo if mode == "inhibitory" else max(lo, -top),
                      0 if mode == "inhibitory" else top)
    if np.any(clipped != w):
        notes.append(f"{where}: {int(np.count_nonzero(clipped != w))} weights saturate at the "
                     f"{profile.weight_bits}-bit limit even with weight_exp={e_hi}")
    if amax < 0.5 * step * 2.0**e_lo:
        notes.append(f"{where}: all weights round to zero (largest {amax:.3g} chip units)")
    return clipped, e, mode


def quantize_bias(B: np.ndarray, profile: HardwareProfile, where: str,
                  notes: List[str], constraints: Optional[Dict[str, Tuple[int, int]]] = None
                  ) -> Tuple[np.ndarray, np.ndarray]:
    """Per-neuron ``bias_mant``, ``bias_exp`` for chip bias ``B`` (chip units per step)."""
    m_lo, m_hi = profile.range_of("bias_mant")
    e_lo, e_hi = limits(profile, constraints, "bias_exp")
    mag = np.abs(B)
    with np.errstate(divide="ignore"):
        need = np.where(mag > 0, np.ceil(np.log2(np.maximum(mag, 1e-300) / m_hi)), e_lo)
    e = np.clip(need, e_lo, e_hi).astype(np.int64)
    m = np.rint(B / np.exp2(e)).astype(np.int64)
    over = (m > m_hi) | (m < m_lo)
    if np.any(over):
        e = np.where(over, np.minimum(e + 1, e_hi), e)
        m = np.rint(B / np.exp2(e)).astype(np.int64)
    clipped = np.clip(m, m_lo, m_hi)
    if np.any(clipped != m):
        notes.append(f"{where}: {int(np.count_nonzero(clipped != m))} biases saturate "
                     f"(largest {float(mag.max()):.4g} chip units)")
    eff = clipped * np.exp2(e)
    nz = B != 0
    lost = nz & (eff == 0)
    if np.any(lost):
        notes.append(f"{where}: {int(lost.sum())} non-zero biases round to 0 (largest "
                     f"{float(mag[lost].max()):.3g} chip units, resolution {2.0 ** int(e_lo):g})")
    elif np.any(nz):
        rel = float(np.max(np.abs(eff[nz] - B[nz]) / np.abs(B[nz])))
        if rel > 0.01:
            notes.append(f"{where}: bias rounding error up to {100 * rel:.1f}% "
                         f"(resolution {2.0 ** int(e_lo):g} chip units)")
    return clipped, e


@dataclass
class ProjectionMap:
    """One quantized path: the IR projection built and its float counterpart."""

    path: Path
    node: ir.Node
    target: np.ndarray  # float chip increments per unit input, same shape as the weights
    weight_error: float  # relative RMS error of the effective weights


def _rel_err(eff: np.ndarray, target: np.ndarray) -> float:
    den = float(np.sqrt(np.mean(target ** 2))) if target.size else 0.0
    if den == 0:
        return 0.0
    return float(np.sqrt(np.mean((eff - target) ** 2)) / den)


def build_network(fg: FloatGraph, maps: Dict[str, NeuronMap], profile: HardwareProfile, dt: float,
                  per_channel: bool = False, source: str = "graph",
                  constraints: Optional[Dict[str, Tuple[int, int]]] = None):
    """Build the :class:`~neurohw.ir.Network` once every population has its scale.

    Returns ``(network, projections, notes)``.
    """
    nodes: Dict[str, ir.Node] = {}
    edges: List[Tuple[str, str]] = []
    notes: List[str] = []
    projs: List[ProjectionMap] = []
    delay_max = profile.range_of("delay")[1]
    for name in fg.inputs:
        nodes[name] = ir.InputNode(name, fg.shapes[name])
    bias_total = {k: np.zeros(m.size) for k, m in maps.items()}
    used = set(fg.inputs) | set(fg.neurons) | set(fg.outputs)

    def fresh(base: str) -> str:
        k, i = base, 1
        while k in used:
            i += 1
            k = f"{base}_{i}"
        used.add(k)
        return k

    # a population keeps its NIR shape only where a convolution reads or feeds it
    conv_touch = {p.src for p in fg.paths if p.kind != "dense"} | \
        {p.dst for p in fg.paths if p.kind != "dense"}
    pop_shape = {k: (m.shape if k in conv_touch else (m.size,)) for k, m in maps.items()}
    pending_edges = []
    for path in fg.paths:
        nm = maps[path.dst]
        S = nm.scale
        g = nm.gain
        bias_total[path.dst] += S * g * path.bias / ((nm.du + 1) / 4096.0)
        if nm.du < 4095 and np.any(path.bias != 0):
            nm.notes.append(f"the constant input of {path.name} is added to v at its settled "
                            f"value (the synaptic filter's rise time is not modeled)")
        where = f"projection {path.name}"
        src_shape = pop_shape.get(path.src, fg.shapes[path.src])
        if path.kind in ("conv", "pool"):
            c = path.conv
            out_shape = c["out_shape"]
            per_ch = (S * g).reshape(out_shape)
            ch = per_ch.reshape(out_shape[0], -1)
            if not np.allclose(ch, ch[:, :1], rtol=1e-12, atol=0):
                raise ValidationError(
                    f"{source}: {where}: neurons of one channel need one scale for a convolution "
                    f"(per-neuron thresholds or gains differ within a channel)")
            k = ch[:, 0][:, None, None, None] * c["weight"] / 64.0
            groups = _split_rows(k, profile, per_channel, constraints)
            for gi, rows in enumerate(groups):
                kk = np.where(rows[:, None, None, None], k, 0.0)
                w, e, mode = quantize_weights(kk, profile, where, notes, e_min=0,
                                              constraints=constraints)
                base = path.ops[0] if len(groups) == 1 else f"{path.ops[0]}.{gi}"
                pname = fresh(base)
                node = ir.Conv2d(pname, weight=w, weight_exp=e, num_weight_bits=profile.weight_bits,
                                 sign_mode=mode, input_shape=c["input_shape"], stride=c["stride"],
                                 padding=c["padding"], dilation=c["dilation"], groups=c["groups"])
                nodes[pname] = node
                projs.append(ProjectionMap(path, node, kk, _rel_err(float_view_weight(node, profile), kk)))
                pending_edges.append((path.src, pname, src_shape, c["input_shape"]))
                pending_edges.append((pname, path.dst, node.out_shape, pop_shape[path.dst]))
        else:
            x = (S * g)[:, None] * path.A / 64.0
            delay = None
            if path.delay_s is not None:
                steps = np.rint(path.delay_s / dt).astype(np.int64)
                if np.any(np.abs(steps * dt - path.delay_s) > 1e-6 * np.maximum(path.delay_s, dt)):
                    notes.append(f"{where}: delays rounded to whole steps of dt={dt:.6g} s")
                if steps.max(initial=0) > delay_max:
                    raise ValidationError(
                        f"{source}: {where}: delay {int(steps.max())} steps exceeds the "
                        f"profile maximum {delay_max} (dt={dt:.6g} s)")
                delay = np.broadcast_to(steps[:, None], x.shape)
            groups = _split_rows(x, profile, per_channel, constraints)
            for gi, rows in enumerate(groups):
                xx = np.where(rows[:, None], x, 0.0)
                w, e, mode = quantize_weights(xx, profile, where, notes, constraints=constraints)
                base = "_".join(path.ops) if len(path.ops) <= 2 else f"{path.ops[0]}__{path.ops[-1]}"
                pname = fresh(base if len(groups) == 1 else f"{base}.{gi}")
                node = ir.Dense(pname, weight=w, weight_exp=e, num_weight_bits=profile.weight_bits,
                                sign_mode=mode, delay=None if delay is None else delay.copy())
                nodes[pname] = node
                projs.append(ProjectionMap(path, node, xx, _rel_err(float_view_weight(node, profile), xx)))
                pending_edges.append((path.src, pname, src_shape, (x.shape[1],)))
                pending_edges.append((pname, path.dst, (x.shape[0],), pop_shape[path.dst]))
    for name, nm in maps.items():
        B = bias_total[name] + nm.scale * (nm.dv / 4096.0) * nm.v_leak
        mant, exp = quantize_bias(B, profile, "bias", nm.notes, constraints)
        shape = pop_shape[name]
        nodes[name] = ir.LIFPopulation(name, shape, du=nm.du, dv=nm.dv, vth=nm.vth,
                                       bias_mant=mant.reshape(shape), bias_exp=exp.reshape(shape))
    # connect, inserting Flatten nodes where shapes differ only by layout
    for src, dst, have, want in pending_edges:
        if tuple(have) != tuple(want):
            fname = fresh(f"{src}.flat" if src in maps or src in fg.inputs else f"{dst}.in_flat")
            if len(want) != 1:
                raise ValidationError(
                    f"{source}: edge {src} -> {dst}: a fully connected layer's output {tuple(have)} "
                    f"cannot feed population shape {tuple(want)} that a convolution also uses")
            nodes[fname] = ir.Flatten(fname, input_shape=tuple(have))
            edges.extend([(src, fname), (fname, dst)])
        else:
            edges.append((src, dst))
    for out, src in fg.outputs.items():
        nodes[out] = ir.OutputNode(out, pop_shape.get(src, fg.shapes[src]))
        edges.append((src, out))
    net = ir.Network(nodes=nodes, edges=tuple(edges), profile=profile, dt_s=dt)
    return net, projs, notes


def _split_rows(x: np.ndarray, profile: HardwareProfile, per_channel: bool,
                constraints=None) -> List[np.ndarray]:
    """Row groups sharing one weight exponent (a single group unless ``per_channel``)."""
    n = x.shape[0]
    if not per_channel:
        return [np.ones(n, bool)]
    amax = np.abs(x.reshape(n, -1)).max(axis=1)
    top = profile.weight_range("excitatory")[1]
    e_lo, e_hi = limits(profile, constraints, "weight_exp")
    with np.errstate(divide="ignore"):
        e = np.where(amax > 0, np.ceil(np.log2(np.maximum(amax, 1e-300) / top)), e_lo)
    e = np.clip(e, e_lo, e_hi)
    return [e == v for v in np.unique(e)]
