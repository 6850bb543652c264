"""Float NIR -> integer chip network: the mapping, with every approximation recorded.

Notation (per neuron ``i``; ``dt`` seconds per step; ``D = 2**decay_bits``,
``A = 2**act_shift``, ``H = 2**vth_shift`` and ``L = 2**(state_bits-1) - 1``
from the profile -- Loihi: 4096, 64, 64, 2**23 - 1; all formulas also in
``docs/quantization.md``):

* neuron types: neurons with the same float ``(tau_syn, tau_mem,
  threshold)`` form one type (``neuron_types=None``), or the population is
  clustered into at most ``K`` types (:func:`cluster_types`); each type
  gets one ``(du, dv, vth)`` from its members' median time constants.
* decays: ``alpha_v = dt / tau_mem``, ``dv = round(D alpha_v)``;
  ``alpha_u = dt / tau_syn``, ``du = round(D alpha_u) - 1`` (Lava's
  offset); a neuron without a synaptic filter (LIF, IF, LI, I, Threshold)
  gets ``du = D - 1`` so ``u = A a`` holds exactly one step's input.
  The chip then runs the forward-Euler model with the *effective*
  ``alpha_v' = dv / D`` and ``alpha_u' = (du + 1) / D``.
* gain ``g``: the float voltage increment per unit of synaptic input per
  step -- ``r alpha_v'`` (LIF, LI), ``r w_in alpha_v' alpha_u'`` (CubaLIF,
  CubaLI), ``r dt`` (IF, I), ``1`` (Threshold).
* voltage scale ``S_i`` (chip units per float volt): each type's threshold
  mantissa ``vth`` is as large as the headroom of the ``L``-bounded state
  allows (see :func:`choose_scale`), and ``S_i = vth H / v_th_i``.
* a projection with float map ``A_ij`` (from :mod:`.graph`) gets mantissas
  ``w = round(S_i g_i A_ij / (A * 2**e))`` with the smallest exponent
  ``e`` that keeps ``|w|`` within the sign mode's ``weight_bits`` range, and
  the sign mode from the signs of ``A_ij`` (excitatory/inhibitory use all
  bits; mixed mode keeps even mantissas, since Lava drops the LSB).
* bias: ``B_i = S_i (g_i b_i / alpha_u' + alpha_v' v_leak_i)`` (``b`` the
  constant part of the incoming affine maps), as ``bias_mant * 2**bias_exp``
  with the smallest exponent in the profile's range that fits the
  ``bias_bits`` mantissa.

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
from .sparse import maybe_sparse

__all__ = ["NeuronMap", "ProjectionMap", "neuron_params", "choose_scale", "quantize_weights",
           "quantize_bias", "build_network"]

SPIKING = ("LIF", "CubaLIF", "IF", "Threshold")

THRESHOLD_WEIGHT = 1.0
"""Weight of ``log2(threshold)`` against ``log2(tau)`` when neurons are clustered into types
(a factor 2 in either counts the same).  A shared threshold mantissa costs only precision
(each neuron's threshold stays exact through its scale) while a shared time constant changes
the dynamics, yet weights 0, 0.25 and 1 tracked the float model equally well on random
heterogeneous CubaLIF layers (K = 2, 4, 8; spike-count correlation within run-to-run spread),
so the plain choice stays."""


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
    """How one NIR neuron node maps to a chip LIF population (per neuron, flat arrays).

    ``du``, ``dv`` and ``vth`` are int64 arrays of length :attr:`size`;
    ``types`` gives each neuron's parameter set (neurons of one type share
    ``du``, ``dv`` and ``vth``).  Time constants are per-neuron float64 arrays
    in seconds (``inf``: no leak); ``tau_syn_s`` is ``None`` for a node
    without a synaptic filter.
    """

    name: str
    kind: str  # the NIR type
    shape: Tuple[int, ...]
    du: np.ndarray
    dv: np.ndarray
    gain: np.ndarray  # g_i
    v_threshold: Optional[np.ndarray]  # None for non-spiking readouts
    v_leak: np.ndarray  # after any v_reset shift
    v_shift: np.ndarray  # v_reset moved to 0: v_chip/S = v_float - v_shift
    tau_mem_s: Optional[np.ndarray] = None
    tau_syn_s: Optional[np.ndarray] = None
    tau_mem_eff_s: Optional[np.ndarray] = None
    tau_syn_eff_s: Optional[np.ndarray] = None
    notes: List[str] = field(default_factory=list)
    scale: Optional[np.ndarray] = None  # S_i, set by choose_scale
    vth: Optional[np.ndarray] = None  # set by choose_scale
    types: Optional[np.ndarray] = None  # parameter-set index per neuron
    decay_bits: int = 12
    neuron_types: Optional[int] = None  # the K asked for (None: one type per distinct float set)
    vth_alone: Optional[np.ndarray] = None  # the vth each neuron would get as its own type
    bias_target: Optional[np.ndarray] = None  # float chip bias B_i, set by build_network
    vth_shift: int = 6  # the profile's, set by choose_scale
    ext: Optional[object] = None  # neurohw.neuronext.NeuronExt (metadata["neurohw"]), if any

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def spiking(self) -> bool:
        return self.v_threshold is not None

    @property
    def unity(self) -> float:
        """``2**decay_bits``: a decay ``d`` removes ``d / 2**decay_bits`` per step."""
        return float(1 << self.decay_bits)

    @property
    def alpha_u(self) -> np.ndarray:
        """Effective current decay per step, ``(du + 1) / 2**decay_bits`` (per neuron)."""
        return (self.du + 1) / self.unity

    @property
    def alpha_v(self) -> np.ndarray:
        """Effective voltage decay per step, ``dv / 2**decay_bits`` (per neuron)."""
        return self.dv / self.unity

    @property
    def filtered(self) -> np.ndarray:
        """Per neuron: whether ``u`` keeps part of its past (``du < 2**decay_bits - 1``)."""
        return self.du < (1 << self.decay_bits) - 1

    def parameter_sets(self) -> int:
        """Number of distinct ``(du, dv, vth)`` triples (chip profile-table entries)."""
        vth = self.vth if self.vth is not None else np.zeros(self.size, np.int64)
        return int(np.unique(np.stack([self.du, self.dv, vth], axis=1), axis=0).shape[0])

    def costs(self) -> Dict[str, Optional[Dict[str, float]]]:
        """What the integer parameters cost against the float ones, per population.

        ``tau_mem`` / ``tau_syn``: ``max`` and ``mean`` of ``|tau_eff - tau| / tau``
        over neurons (rounding to ``decay_bits`` and sharing a type both
        count); ``v_threshold``: the same for the threshold the chip applies,
        ``(vth << vth_shift) / S_i`` in float volts (0 up to float rounding:
        the per-neuron scale absorbs it); ``vth_bits_lost``: ``max`` and
        ``mean`` of ``log2(vth_alone / vth)``, the threshold precision each
        neuron gives up by sharing its type's ``vth``.
        """
        def rel(eff, ref):
            if eff is None or ref is None:
                return None
            with np.errstate(invalid="ignore", divide="ignore"):
                e = np.where(np.isinf(ref) & np.isinf(eff), 0.0, np.abs(eff - ref) / ref)
            return {"max": float(np.max(e)), "mean": float(np.mean(e))}

        out = {"tau_mem": rel(self.tau_mem_eff_s, self.tau_mem_s),
               "tau_syn": rel(self.tau_syn_eff_s, self.tau_syn_s),
               "v_threshold": None, "vth_bits_lost": None}
        if self.spiking and self.scale is not None and self.vth is not None:
            out["v_threshold"] = rel(self.vth.astype(np.float64) * 2.0**self.vth_shift / self.scale,
                                     self.v_threshold)
            if self.vth_alone is not None:
                lost = np.log2(np.maximum(self.vth_alone, 1) / np.maximum(self.vth, 1))
                out["vth_bits_lost"] = {"max": float(lost.max()), "mean": float(lost.mean())}
        return out


def cluster_types(features: np.ndarray, k: Optional[int]) -> np.ndarray:
    """Group neurons into at most ``k`` parameter sets; returns an int64 label per neuron.

    ``features`` is ``(n, d)`` float64 (here ``log2`` of each time constant
    and threshold, so a factor of two counts the same in each).  Neurons
    with identical features always share a label.  ``k=None``, or no more
    distinct rows than ``k``: one label per distinct row (exact).  Otherwise
    weighted k-means (Lloyd) on the distinct rows, each weighted by its
    neuron count, deterministic: the ``k`` starting centres are the rows at
    the weighted quantiles ``(j + 1/2) / k`` along the first principal
    axis, ties go to the lower centre index, at most 100 iterations.
    Labels are numbered by first appearance of each cluster in sorted order.
    """
    n = features.shape[0]
    if n == 0 or features.shape[1] == 0:
        return np.zeros(n, np.int64)
    uniq, inv, cnt = np.unique(features, axis=0, return_inverse=True, return_counts=True)
    inv = np.asarray(inv).reshape(-1)
    if k is None or uniq.shape[0] <= k:
        return inv.astype(np.int64)
    w = cnt.astype(np.float64)
    mean = (w[:, None] * uniq).sum(axis=0) / w.sum()
    c = uniq - mean
    cov = (w[:, None] * c).T @ c / w.sum()
    _, vecs = np.linalg.eigh(cov)
    axis = vecs[:, -1]
    if axis[np.argmax(np.abs(axis))] < 0:
        axis = -axis
    order = np.argsort(c @ axis, kind="stable")
    mid = np.cumsum(w[order]) - 0.5 * w[order]
    targets = (np.arange(k) + 0.5) / k * w.sum()
    pick = order[np.clip(np.searchsorted(mid, targets), 0, order.size - 1)]
    centres = uniq[np.unique(pick)]
    labels = None
    for _ in range(100):
        d2 = ((uniq[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        new = d2.argmin(axis=1)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        for j in range(centres.shape[0]):
            sel = labels == j
            if sel.any():
                centres[j] = (w[sel, None] * uniq[sel]).sum(axis=0) / w[sel].sum()
    _, compact = np.unique(labels, return_inverse=True)
    return np.asarray(compact).reshape(-1)[inv].astype(np.int64)


def _group_median(values: np.ndarray, labels: np.ndarray, ng: int) -> np.ndarray:
    """``np.median`` of ``values`` within each label ``0..ng-1`` (every label non-empty)."""
    order = np.lexsort((values, labels))
    sv = values[order]
    counts = np.bincount(labels, minlength=ng)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return 0.5 * (sv[starts + (counts - 1) // 2] + sv[starts + counts // 2])


def _check_tau(tau: np.ndarray, dt: float, where: str, param: str) -> None:
    bad = np.flatnonzero(tau <= 0)
    if bad.size:
        i = int(bad[0])
        raise ValidationError(f"{where}: {param}[{i}]={tau[i]:.6g} s must be positive")
    short = np.flatnonzero(tau < dt)
    if short.size:
        i = int(short[0])
        raise ValidationError(
            f"{where}: {param}[{i}]={tau[i]:.6g} s is shorter than dt={dt:.6g} s; the chip cannot "
            f"decay faster than one step: check the time constants (a Norse 1.1 export needs --source "
            f"norse, which reads tau as tau/dt) or, if they are right, choose dt <= {tau[i]:.3g} s")


def _decays(tau: np.ndarray, dt: float, offset: int, decay_bits: int):
    """``decay_bits``-bit decays for time constants ``tau`` (s, per type).

    Returns ``(d, eff, slow)``: int64 decays, effective time constants
    ``dt / ((d + offset) / 2**decay_bits)`` (s), and where a leak slower
    than the slowest decay was raised to ``d = 1`` (``offset = 0`` only).
    """
    unity = float(1 << decay_bits)
    raw = unity * dt / tau
    d = np.clip(np.rint(raw), offset, unity).astype(np.int64) - offset
    d = np.minimum(d, (1 << decay_bits) - 1)
    slow = (d == 0) if offset == 0 else np.zeros(d.shape, bool)
    # a leak of 0 would also zero the input gain r * dv / 2**decay_bits: keep the slowest leak
    d = np.where(slow, 1, d)
    eff = dt / ((d + offset) / unity)
    return d, eff, slow


def _typed_decay(tau: np.ndarray, types: np.ndarray, ng: int, dt: float, param: str,
                 offset: int, decay_bits: int, k: Optional[int], notes: List[str]):
    """Per-neuron decays when each type uses its members' median ``tau``; notes what it costs."""
    tau_t = _group_median(tau, types, ng)
    d_t, eff_t, slow = _decays(tau_t, dt, offset, decay_bits)
    if np.any(tau != tau_t[types]):
        dev = float(np.max(np.abs(tau - tau_t[types]) / tau))
        notes.append(f"{param} differs across neurons ({tau.min():.4g}..{tau.max():.4g} s); "
                     f"neuron_types={k} gives {ng} type(s), each using its members' median "
                     f"(up to {100 * dev:.2f}% off)")
    if np.any(slow):
        j = int(np.flatnonzero(slow)[0])
        notes.append(f"{param}={tau_t[j]:.6g} s is longer than {2 << decay_bits} steps of "
                     f"dt={dt:.6g} s; the slowest {decay_bits}-bit leak (d=1, "
                     f"{(1 << decay_bits) * dt:.6g} s) is used -- use IF/I for no leak")
    off = np.abs(eff_t - tau_t) > 1e-3 * tau_t
    if np.any(off):
        rel = (eff_t - tau_t) / tau_t
        if ng == 1:
            notes.append(f"{param}={tau_t[0]:.6g} s becomes {eff_t[0]:.6g} s after {decay_bits}-bit "
                         f"rounding (d={int(d_t[0])}, {100 * rel[0]:+.2f}%)")
        else:
            j = int(np.argmax(np.abs(rel)))
            notes.append(f"{param}: {decay_bits}-bit rounding moves {int(off.sum())} of {ng} "
                         f"types' time constants, by up to {100 * rel[j]:+.2f}% "
                         f"({tau_t[j]:.6g} s -> {eff_t[j]:.6g} s, d={int(d_t[j])})")
    return d_t[types], eff_t[types]


def neuron_params(name: str, node, shape, dt: float, source: str = "graph",
                  profile: Optional[HardwareProfile] = None,
                  neuron_types: Optional[int] = None) -> NeuronMap:
    """Decays, gain, threshold and leak of one NIR neuron node (see module docstring).

    ``profile`` gives ``decay_bits`` (default: Loihi's 12).  ``neuron_types``
    is the most distinct parameter sets the population may use:
    ``None`` keeps one per distinct float ``(tau_syn, tau_mem, threshold)``
    (per neuron when they differ), ``1`` one per population (each time
    constant the population's median), ``K`` clusters them with
    :func:`cluster_types`; each type then uses its members' median time
    constants, and :func:`choose_scale` gives it one ``vth``.
    """
    t = type(node).__name__
    where = f"{source}: node '{name}'"
    if neuron_types is not None and (isinstance(neuron_types, bool)
                                     or not isinstance(neuron_types, (int, np.integer))
                                     or neuron_types < 1):
        raise ValidationError(f"neuron_types={neuron_types!r} must be a positive integer "
                              f"(or None: one type per distinct parameter set)")
    k = None if neuron_types is None else int(neuron_types)
    decay_bits = 12 if profile is None else profile.decay_bits
    unity = float(1 << decay_bits)
    d_max = (1 << decay_bits) - 1
    n = tuple(shape)
    size = int(np.prod(n))
    notes: List[str] = []
    f = lambda p, default=None: _field(node, p, n, where, default)  # noqa: E731
    zeros = np.zeros(size)
    if t not in ("LIF", "LI", "CubaLIF", "CubaLI", "IF", "I", "Threshold"):
        raise ValidationError(f"{where}: {t} is not a neuron type")
    # thresholds first: they are part of what makes a neuron type
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
    if v_th is not None and np.any(v_th <= 0):
        bad = float(v_th[v_th <= 0][0])
        raise ValidationError(f"{where}: v_threshold - v_reset = {bad} must be positive on a chip "
                              f"(spikes when v > vth with vth >= 0, reset to 0)")
    taus = {}
    if t in ("LIF", "LI"):
        taus["tau"] = f("tau")
    elif t in ("CubaLIF", "CubaLI"):
        taus["tau_syn"] = f("tau_syn")
        taus["tau_mem"] = f("tau_mem")
    for p, tau in taus.items():
        _check_tau(tau, dt, where, p)
    feats = [np.log2(tau) for tau in taus.values()]
    if v_th is not None:
        feats.append(THRESHOLD_WEIGHT * np.log2(v_th))
    features = np.stack(feats, axis=1) if feats else np.zeros((size, 0))
    types = cluster_types(features, k)
    ng = int(types.max()) + 1 if size else 1
    tau_syn = tau_syn_eff = None
    tau_mem = np.full(size, math.inf)
    tau_mem_eff = tau_mem.copy()
    du = np.full(size, d_max, np.int64)
    if t in ("LIF", "LI"):
        tau_mem = taus["tau"]
        dv, tau_mem_eff = _typed_decay(tau_mem, types, ng, dt, "tau", 0, decay_bits, k, notes)
        gain = f("r") * (dv / unity)
        v_leak = f("v_leak", 0.0)
    elif t in ("CubaLIF", "CubaLI"):
        tau_mem, tau_syn = taus["tau_mem"], taus["tau_syn"]
        dv, tau_mem_eff = _typed_decay(tau_mem, types, ng, dt, "tau_mem", 0, decay_bits, k, notes)
        du, tau_syn_eff = _typed_decay(tau_syn, types, ng, dt, "tau_syn", 1, decay_bits, k, notes)
        gain = f("r") * f("w_in", 1.0) * (dv / unity) * ((du + 1) / unity)
        v_leak = f("v_leak", 0.0)
    elif t in ("IF", "I"):
        dv = np.zeros(size, np.int64)
        gain = f("r") * dt
        v_leak = zeros.copy()
    else:  # Threshold
        dv = np.full(size, d_max, np.int64)
        gain = np.ones_like(zeros)
        v_leak = zeros.copy()
        notes.append(f"Threshold (stateless) runs as a LIF with dv={d_max}: 1/{1 << decay_bits} "
                     f"of v survives each step")
    if np.any(v_reset != 0):
        v_leak = v_leak - v_reset
    if t in ("IF", "I") and np.any(f("r") <= 0):
        raise ValidationError(f"{where}: r must be positive")
    from ..neuronext import neuron_ext

    ext = neuron_ext(node, f"{where} ({t})") if t in ("LIF", "CubaLIF") else None
    return NeuronMap(name, t, n, du.astype(np.int64), dv.astype(np.int64), gain.astype(np.float64),
                     v_th, v_leak.astype(np.float64), v_reset, tau_mem, tau_syn, tau_mem_eff,
                     tau_syn_eff, notes, types=types, decay_bits=decay_bits, neuron_types=k,
                     ext=None if ext is None or ext.empty else ext)


ELIF_LUT_SIZE = 1024
"""Most entries of an ELIF table (``docs/neuron-models.md`` derives size, range and error)."""


def elif_table(nm: NeuronMap, profile: HardwareProfile, where: str = "",
               size: Optional[int] = None) -> Dict[str, object]:
    """The ELIF exponential term as an integer table over the step's starting ``v``.

    In chip units (``S`` the neuron's voltage scale, ``a = dv / 2**decay_bits``
    its effective decay, ``D = S delta_t v_threshold``, ``th = S (theta_rh
    v_threshold - v_shift)``, each the population's median; since ``S`` is
    proportional to ``vth / v_threshold`` they agree wherever the ``vth``
    mantissas and decays do) the term is ``E(v) = a D exp((v - th) / D)``.  The
    table covers ``[lo, hi]``: ``hi = vth << vth_shift`` (a starting ``v`` never
    exceeds it), ``lo = floor(th + D ln(0.5 / (a D)))`` where ``E = 0.5`` (below
    it the term rounds to 0).  Bins are ``w = 2**shift`` wide, the smallest
    power of two giving at most ``size`` (default :data:`ELIF_LUT_SIZE`) bins; entry ``k`` is
    ``round(E(lo + k w + (w - 1) / 2))`` (the bin's middle), clipped to the state's
    ``2**(state_bits-1) - 1``.  Error: ``|E_table - E| <= E (exp((w - 1) / (2 D)) - 1) + 0.5``.
    Returns ``elif_lut``, ``elif_lut_lo``, ``elif_lut_shift`` and appends a note.
    """
    ext = nm.ext
    size = ELIF_LUT_SIZE if size is None else int(size)
    full = (1 << (profile.state_bits - 1)) - 1
    # per neuron in chip units; the population shares one table (the medians)
    v_th_float = nm.v_threshold + nm.v_shift
    D_i = nm.scale * ext.delta_t * v_th_float
    th_i = nm.scale * (ext.theta_rh * v_th_float - nm.v_shift)
    a_i = np.asarray(nm.alpha_v, dtype=np.float64) * np.ones(nm.size)
    D, th, a = float(np.median(D_i)), float(np.median(th_i)), float(np.median(a_i))
    spread = max(float(np.ptp(D_i)) / D if D > 0 else 0.0, float(np.ptp(th_i)) / max(abs(th), 1.0),
                 float(np.ptp(a_i)) / a if a > 0 else 0.0)
    if spread > 1e-3:
        nm.notes.append(f"ELIF: Delta_T, theta_rh or the decay differ across neurons in chip "
                        f"units (relative spread {spread:.2%}); one table uses the medians")
    hi = int(np.max(nm.vth.astype(np.int64) << profile.vth_shift))
    if a <= 0 or D <= 0:
        raise ValidationError(f"{where}: model 'elif' needs a leak (dv > 0) and delta_t > 0")
    lo = int(math.floor(th + D * math.log(0.5 / (a * D))))
    lo = max(min(lo, hi), -full)
    shift = 0
    while ((hi - lo) >> shift) + 1 > size:
        shift += 1
    n = ((hi - lo) >> shift) + 1
    w = 1 << shift
    centers = lo + np.arange(n, dtype=np.float64) * w + (w - 1) / 2.0
    arg = np.minimum((centers - th) / D, 60.0)
    lut = np.minimum(np.rint(a * D * np.exp(arg)), full).astype(np.int64)
    rel = math.exp((w - 1) / (2.0 * D)) - 1.0
    nm.notes.append(f"ELIF: exp term as a {n}-entry table over v in [{lo}, {hi}] (bins of "
                    f"{w}); error <= {rel:.2%} of the term + 0.5 chip units; "
                    f"Delta_T={D:.6g}, theta_rh={th:.6g} chip units")
    return {"elif_lut": lut.astype(np.int32), "elif_lut_lo": lo, "elif_lut_shift": shift}


def extension_params(nm: NeuronMap, profile: HardwareProfile, dt: float,
                     source: str = "graph") -> Dict[str, object]:
    """The integer form of a population's float-side extension (``docs/neuron-models.md``).

    * ``refractory_s`` -> ``refract_delay = round(refractory_s / dt) + 1`` (Loihi's
      ``r`` gives ``r - 1`` silent steps; ``0`` when no silent step), on every profile;
      per neuron when ``refractory_s`` is an array; above ``refract_delay_max`` is
      refused (naming the neuron's index for an array);
    * ``lower_bound`` -> ``vmin = round(S (lower_bound - v_reset))`` (``S`` the
      population's median voltage scale, chip ``v`` units), at least the state's
      ``-(2**(state_bits-1) - 1)``; on ``loihi1`` rounded (in log2) to the nearest
      ``-(2**k) + 1`` the chip holds;
    * ``trace`` -> ``trace_decay = round(2**trace_decay_bits (1 - exp(-dt/tau_s)))``
      (at least 1), ``trace_mode = "set"`` with ``trace_impulse = 2**trace_bits - 1``
      (multiplicative) or ``"additive"`` with ``trace_impulse = max(1, round((2**trace_bits
      - 1) (1 - exp(-dt/tau_s))))`` (a spike every step then settles near the top);
      the integer trace times ``scale / trace_impulse`` is the float trace.

    Returns keyword arguments for :class:`~neurohw.ir.LIFPopulation`; appends a
    note per mapping to ``nm.notes``.
    """
    ext = nm.ext
    out: Dict[str, object] = {}
    if ext is None:
        return out
    where = f"{source}: node '{nm.name}' ({nm.kind})"
    if ext.is_elif:
        out.update(elif_table(nm, profile, where))
    steps = ext.refractory_steps(dt)
    if isinstance(steps, np.ndarray):  # per neuron
        out.update(_refract_per_neuron(nm, ext, steps, profile, dt, where))
    elif steps > 0:
        r = steps + 1
        if r > profile.refract_delay_max:
            raise ValidationError(
                f"{where}: metadata neurohw.refractory_s={ext.refractory_s:g} is {steps} steps of "
                f"dt={dt:g} s, refract_delay {r} is outside [0, {profile.refract_delay_max}] "
                f"on profile '{profile.name}'")
        out["refract_delay"] = r
        nm.notes.append(f"refractory_s={ext.refractory_s:g} -> {steps} silent steps "
                        f"(round(refractory_s/dt)), refract_delay={r}")
    if ext.lower_bound is not None:
        full = (1 << (profile.state_bits - 1)) - 1
        S = float(np.median(nm.scale))
        target = S * (ext.lower_bound - float(np.max(nm.v_shift)))
        vmin = int(max(-full, min(0, round(target))))
        how = "round"
        if profile.semantics == "loihi1":
            k = int(round(math.log2(1 - vmin))) if vmin < 0 else 0
            k = min(k, profile.state_bits - 1)
            vmin, how = -(1 << k) + 1, "nearest -(2**k)+1 (Loihi 1)"
        out["vmin"] = vmin
        nm.notes.append(f"lower_bound={ext.lower_bound:g} V -> vmin={vmin} ({how} of "
                        f"{target:.6g} chip units; float {vmin / S + float(np.max(nm.v_shift)):.6g} V)")
    if ext.trace is not None:
        tr = ext.trace
        keep = math.exp(-dt / tr.tau_s)
        top = (1 << profile.trace_bits) - 1
        decay = int(min(max(round((1 << profile.trace_decay_bits) * (1 - keep)), 1),
                        (1 << profile.trace_decay_bits) - 1))
        if tr.mode == "multiplicative":
            mode, impulse = "set", top
        else:
            mode, impulse = "additive", int(max(1, min(top, round(top * (1 - keep)))))
        out.update(trace_decay=decay, trace_impulse=impulse, trace_mode=mode)
        nm.notes.append(f"trace tau_s={tr.tau_s:g} {tr.mode} -> trace_decay={decay}, "
                        f"trace_impulse={impulse} ({mode}); float trace = integer * "
                        f"{tr.scale / impulse:.6g}")
    return out


def _refract_per_neuron(nm: NeuronMap, ext, steps: np.ndarray, profile: HardwareProfile,
                        dt: float, where: str) -> Dict[str, object]:
    """Per-neuron ``refractory_s`` (seconds, the population's shape) -> per-neuron
    ``refract_delay`` (steps): ``round(refractory_s / dt) + 1``, ``0`` where no silent step.

    A neuron above ``refract_delay_max`` is refused naming its index, its
    ``refractory_s``, the steps and the range.  Returns ``{"refract_delay": array}``
    shaped as the population (an int when every neuron agrees).
    """
    if steps.size != nm.size:
        raise ValidationError(
            f"{where}: metadata neurohw.refractory_s has {steps.size} values, the population "
            f"has {nm.size} neurons {tuple(nm.shape)}")
    steps = steps.reshape(tuple(nm.shape))
    r = np.where(steps > 0, steps + 1, 0).astype(np.int64)
    bad = r > profile.refract_delay_max
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        sec = np.asarray(ext.refractory_s).reshape(tuple(nm.shape))[idx]
        raise ValidationError(
            f"{where}: metadata neurohw.refractory_s[{', '.join(map(str, idx))}]={sec:g} is "
            f"{int(steps[idx])} steps of dt={dt:g} s, refract_delay {int(r[idx])} is outside "
            f"[0, {profile.refract_delay_max}] on profile '{profile.name}'")
    nm.notes.append(f"refractory_s={_fmt(np.asarray(ext.refractory_s))} s per neuron -> "
                    f"{_fmt(steps)} silent steps (round(refractory_s/dt)), "
                    f"refract_delay={_fmt(r)}")
    first = int(r.flat[0])
    return {"refract_delay": first if bool(np.all(r == first)) else r.astype(np.int32)}


def _fmt(a: np.ndarray) -> str:
    u = np.unique(a)
    return f"{u[0]:.4g}" if u.size == 1 else f"{u.min():.4g}..{u.max():.4g}"


def usable_vth_max(profile: HardwareProfile) -> int:
    """Largest threshold mantissa a neuron can still exceed.

    A spike needs ``v > vth << vth_shift`` while ``v`` saturates at
    ``2**(state_bits-1) - 1``, so ``vth <= (2**(state_bits-1) - 2) >> vth_shift``;
    and ``vth <= 2**vth_bits - 1``.  Loihi: ``min(131071, (2**23 - 2) >> 6) = 131071``;
    ``generic(state_bits=16)``: ``(2**15 - 2) >> 6 = 511``.
    """
    limit = (1 << (profile.state_bits - 1)) - 1
    return min(profile.range_of("vth")[1], (limit - 1) >> profile.vth_shift)


def _type_vth(peak, v_th, capv, types, ng, top, floor_vth, limit, margin, shift):
    """The threshold mantissa of each type (see :func:`choose_scale`), vectorized over types."""
    peak_t = np.zeros(ng)
    np.maximum.at(peak_t, types, peak)
    thmax = np.full(ng, -np.inf)
    np.maximum.at(thmax, types, v_th)
    thmin = np.full(ng, np.inf)
    np.minimum.at(thmin, types, v_th)
    s_room = limit / (margin * np.maximum(peak_t, thmax))
    vth_room = s_room * thmin / (1 << shift)
    vth = np.minimum(float(top), np.floor(vth_room)).astype(np.int64)
    low = vth < floor_vth
    vth = np.where(low, floor_vth, vth)
    cap_t = np.full(ng, np.inf)
    fin = np.isfinite(capv)  # inf: no weight or bias limits this neuron
    np.minimum.at(cap_t, types[fin], capv[fin])
    has_cap = np.isfinite(cap_t)
    cap_i = np.where(has_cap, np.floor(np.where(has_cap, cap_t, 0.0) / (1 << shift)), 0.0).astype(np.int64)
    limited = has_cap & (cap_i < vth)
    vth = np.maximum(np.where(limited, cap_i, vth), 1)
    return vth, low, limited, peak_t, thmax, cap_i


def choose_scale(nm: NeuronMap, peak_input: np.ndarray, peak_v: np.ndarray,
                 profile: HardwareProfile, margin: float = 1.25, min_vth_bits: int = 9,
                 s_cap: Optional[np.ndarray] = None) -> None:
    """Choose the voltage scale ``S_i`` and the threshold mantissa of each neuron type.

    ``peak_input`` (per neuron, float volts per step) bounds ``|u| / S`` and
    ``peak_v`` bounds ``|v| / S``.  With ``L = 2**(state_bits-1) - 1`` and
    ``vth_top`` from :func:`usable_vth_max`, each type ``T`` of a spiking
    population gets ``vth_T = min(vth_top, floor(L min_T(v_th) /
    (margin max_T(peak, v_th) 2**vth_shift)))`` (no wrap of the state), but
    never below ``min(2**min_vth_bits, vth_top >> 2)`` (precision wins over
    headroom there; the report counts wraps) and never above what the
    incoming weights and bias can express (``s_cap``, per neuron: mantissa
    range times the largest exponent; it always wins).  Then
    ``S_i = (vth_T << vth_shift) / v_th_i``: each neuron's float threshold
    is exact.  A non-spiking readout gets ``vth = 2**vth_bits - 1`` (never
    reached) and one ``S`` keeping ``|v|`` below it and below ``L``.
    """
    limit = (1 << (profile.state_bits - 1)) - 1
    vth_max = profile.range_of("vth")[1]
    shift = profile.vth_shift
    nm.vth_shift = shift
    peak_all = np.maximum(peak_input, peak_v)
    peak = float(np.max(peak_all, initial=0.0))
    types = nm.types if nm.types is not None else np.zeros(nm.size, np.int64)
    if nm.spiking:
        top = usable_vth_max(profile)
        if top < 1:
            raise ValidationError(
                f"population '{nm.name}': profile '{profile.name}' leaves no usable threshold: "
                f"(2**(state_bits-1) - 2) >> vth_shift = {top} with state_bits={profile.state_bits}, "
                f"vth_shift={profile.vth_shift}")
        v_th = nm.v_threshold
        floor_vth = min(1 << min_vth_bits, max(top >> 2, 1))
        capv = s_cap * v_th if s_cap is not None else np.full(nm.size, np.inf)
        ng = int(types.max()) + 1
        vth_t, low, limited, peak_t, thmax, cap_i = _type_vth(
            peak_all, v_th, capv, types, ng, top, floor_vth, limit, margin, shift)
        alone, *_ = _type_vth(peak_all, v_th, capv, np.arange(nm.size), nm.size, top, floor_vth,
                              limit, margin, shift)
        if np.any(low):
            j = int(np.flatnonzero(low)[0])
            which = "" if ng == 1 else f" ({int(low.sum())} of {ng} types)"
            nm.notes.append(f"peak input {peak_t[j]:.4g} is {peak_t[j] / thmax[j]:.3g}x the "
                            f"threshold{which}; keeping vth={floor_vth} may wrap the "
                            f"{profile.state_bits}-bit state")
        if np.any(limited):
            j = int(np.flatnonzero(limited)[0])
            which = "" if ng == 1 else f" ({int(limited.sum())} of {ng} types)"
            nm.notes.append(f"threshold mantissa limited to {max(int(cap_i[j]), 1)}{which} so the "
                            f"largest weight or bias fits its mantissa at the largest exponent")
        nm.vth = vth_t[types]
        nm.vth_alone = alone
        nm.scale = (nm.vth << shift).astype(np.float64) / v_th
    else:
        # a readout must never fire: keep |v| below the largest threshold, (vth_max << shift) - 1,
        # and below the state's saturation 2**(state_bits-1) - 1
        nm.vth = np.full(nm.size, vth_max, np.int64)
        nm.vth_alone = nm.vth
        room = min((vth_max << shift) - 1, limit)
        s = room / (margin * peak) if peak > 0 else float(1 << max(profile.state_bits - 8, 0))
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

    ``S_i g_i |A_ij| / 2**act_shift <= w_max 2**e_max`` for every incoming weight and
    ``S_i |b_i| <= bias_max 2**bias_exp_max`` for the constant input.  Where the
    profile wraps the dendritic sum to fewer than 32 bits (``loihi1``: 22), also
    ``S_i g_i sum_j |A_ij| <= 2**(dendrite_bits - 1) - 1`` (summed over every
    incoming projection, binary spikes): one step's input cannot wrap.
    """
    from .calibrate import float_bias

    top = profile.weight_range("excitatory")[1]
    w_hi = top * 2.0 ** limits(profile, constraints, "weight_exp")[1]
    b_hi = profile.range_of("bias_mant")[1] * 2.0 ** limits(profile, constraints, "bias_exp")[1]
    dbits = int(getattr(profile, "dendrite_bits", 32))
    caps = {}
    for name, m in maps.items():
        wmax = np.zeros(m.size)
        wsum = np.zeros(m.size)  # sum_j |A_ij| over every incoming path
        for p in fg.paths:
            if p.dst != name:
                continue
            if p.kind == "dense":
                wmax = np.maximum(wmax, np.abs(p.A).max(axis=1, initial=0.0))
                wsum = wsum + np.abs(p.A).sum(axis=1)
            else:
                w = p.conv["weight"]
                per_ch = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
                hw = int(np.prod(p.conv["out_shape"][1:]))
                wmax = np.maximum(wmax, np.repeat(per_ch, hw))
                wsum = wsum + np.repeat(np.abs(w.reshape(w.shape[0], -1)).sum(axis=1), hw)
        with np.errstate(divide="ignore"):
            cw = np.where(wmax * m.gain > 0, 2.0**profile.act_shift * w_hi / (wmax * m.gain), np.inf)
            b = np.abs(float_bias(fg, m))
            cb = np.where(b > 0, b_hi / b, np.inf)
        cap = np.minimum(cw, cb)
        if dbits < 32:
            with np.errstate(divide="ignore"):
                cd = np.where(wsum * m.gain > 0, ((1 << (dbits - 1)) - 1) / (wsum * m.gain), np.inf)
            cap = np.minimum(cap, cd)
        caps[name] = cap
    return caps


def quantize_weights(x: np.ndarray, profile: HardwareProfile, where: str,
                     notes: List[str], e_min: Optional[int] = None,
                     constraints: Optional[Dict[str, Tuple[int, int]]] = None) -> Tuple[np.ndarray, int, str]:
    """Mantissas, exponent and sign mode for target increments ``x`` (``w * 2**e``).

    Increments are in units of ``2**act_shift`` chip units, the input gain.

    ``x`` is ``S_i g_i A_ij / 2**act_shift`` (float).  Returns int64 mantissas already
    on Lava's grid (even in mixed mode) so Lava's truncation changes nothing.
    """
    if np.all(x >= 0):
        mode = "excitatory"
    elif np.all(x <= 0):
        mode = "inhibitory"
    else:
        mode = "mixed"
    lo, hi = profile.weight_range(mode)
    step = 2 if mode == "mixed" else 1  # mixed, num_weight_bits = weight_bits: Lava drops the LSB
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
    act = float(1 << profile.act_shift)  # the chip adds w * 2**weight_exp * 2**act_shift to u
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
        bias_total[path.dst] += S * g * path.bias / nm.alpha_u
        if np.any(nm.filtered) and np.any(path.bias != 0):
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
                    f"(per-neuron thresholds or gains differ within a channel; --neuron-types 1 "
                    f"gives the population one set of time constants)")
            k = ch[:, 0][:, None, None, None] * c["weight"] / act
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
            x = (S * g)[:, None] * path.A / act
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
                if constraints is None:  # mostly zero and large: CSR (export targets
                    node = maybe_sparse(node, notes, where)  # such as netx take Dense only)
                nodes[pname] = node
                projs.append(ProjectionMap(path, node, xx, _rel_err(float_view_weight(node, profile), xx)))
                pending_edges.append((path.src, pname, src_shape, (x.shape[1],)))
                pending_edges.append((pname, path.dst, (x.shape[0],), pop_shape[path.dst]))
    for name, nm in maps.items():
        B = bias_total[name] + nm.scale * nm.alpha_v * nm.v_leak
        nm.bias_target = B
        mant, exp = quantize_bias(B, profile, "bias", nm.notes, constraints)
        shape = pop_shape[name]
        nodes[name] = ir.LIFPopulation(name, shape, du=_ir_param(nm.du, shape),
                                       dv=_ir_param(nm.dv, shape), vth=_ir_param(nm.vth, shape),
                                       bias_mant=mant.reshape(shape), bias_exp=exp.reshape(shape),
                                       **extension_params(nm, profile, dt, source))
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


def _ir_param(values: np.ndarray, shape) -> object:
    """A per-neuron integer parameter for the IR: a Python int when uniform, else an array."""
    values = np.asarray(values, dtype=np.int64)
    if values.size and np.all(values == values.flat[0]):
        return int(values.flat[0])
    return values.reshape(shape)


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


def _positive_drive(p: "ProjectionMap", weights: np.ndarray) -> np.ndarray:
    """Per target neuron: the sum of the positive weights of ``p`` (``weights`` shaped like
    ``p.target``), i.e. the largest input one step of binary spikes can deliver."""
    pos = np.maximum(weights, 0.0)
    if isinstance(p.node, (ir.Dense, ir.Sparse)):
        return pos.sum(axis=1)
    from .graph import conv_float

    c = p.path.conv
    ones = np.ones((1,) + tuple(c["input_shape"]))
    return conv_float(ones, pos, c["input_shape"], c["stride"], c["padding"], c["dilation"],
                      c["groups"]).reshape(-1)


def unreachable_thresholds(maps: Dict[str, NeuronMap], projections: List["ProjectionMap"],
                           net: ir.Network, profile: HardwareProfile) -> Dict[str, Dict[str, object]]:
    """Spiking neurons that can never fire on the chip, per population.

    An upper bound of ``v`` per neuron (chip units): every excitatory input
    spiking every step gives at most ``P_i = 2**act_shift sum_j max(w_ij 2**e, 0)``
    per step into ``u``, so ``u <= U_i = min(P_i / alpha_u, L)`` and
    ``v <= min((U_i + max(bias_i, 0)) / alpha_v, L)`` (unbounded when
    ``dv = 0`` and the drive is positive), with ``L = 2**(state_bits-1) - 1``
    (rounding toward zero only lowers these).  A neuron whose bound does not
    exceed ``vth << vth_shift`` never fires.  The same bound from the float
    targets (before rounding) says whether the float model could.

    Returns ``{population: {"dead": n, "neurons": size, "float_dead": m,
    "killed": k, "v_max": largest chip bound among them, "threshold": the
    smallest ``vth << vth_shift`` among them}}`` for every population with
    at least one such neuron; ``killed`` counts the neurons the float model
    could fire and the chip cannot.
    """
    from ..fixedpoint import scaled_bias
    from ..floatview import float_view_weight

    limit = float((1 << (profile.state_bits - 1)) - 1)
    act = float(1 << profile.act_shift)
    out: Dict[str, Dict[str, object]] = {}
    for name, nm in maps.items():
        if not nm.spiking or nm.vth is None:
            continue
        pop = net.nodes[name]
        chip_p = np.zeros(nm.size)
        float_p = np.zeros(nm.size)
        for p in projections:
            if p.path.dst != name:
                continue
            chip_p += act * _positive_drive(p, float_view_weight(p.node, profile))
            float_p += act * _positive_drive(p, p.target)
        bias = scaled_bias(np.asarray(pop.bias_mant), np.asarray(pop.bias_exp)).reshape(-1)
        fbias = nm.bias_target if nm.bias_target is not None else bias.astype(np.float64)
        thr = (nm.vth.astype(np.float64) * 2.0**profile.vth_shift)

        def bound(drive, b, clip):
            u = drive / nm.alpha_u
            if clip:
                u = np.minimum(u, limit)
            top = u + np.maximum(b, 0.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.where(nm.dv > 0, top / np.maximum(nm.alpha_v, 1e-300),
                             np.where(top > 0, np.inf, 0.0))
            return np.minimum(v, limit) if clip else v

        v_chip = bound(chip_p, bias.astype(np.float64), True)
        v_float = bound(float_p, fbias, False)
        dead = v_chip <= thr
        float_dead = v_float <= thr
        if np.any(dead):
            out[name] = {"dead": int(dead.sum()), "neurons": nm.size,
                         "float_dead": int(float_dead.sum()),
                         "killed": int((dead & ~float_dead).sum()),
                         "v_max": float(v_chip[dead].max()), "threshold": float(thr[dead].min())}
    return out
