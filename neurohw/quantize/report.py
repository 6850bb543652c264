"""What quantization cost: float reference vs integer emulation, layer by layer.

:func:`evaluate` runs the float NIR reference simulator
(:mod:`neurohw.reference`) and the bit-exact emulator on the same spike
input.  The chip is compared with the float model *after* removing its
latency: a population ``L`` projections deep (see
:func:`neurohw.quantize.latencies`) is read ``L`` steps later, and the
emulator runs ``L_max`` extra steps on zero input so every float step has
its chip counterpart.

Per population it reports:

* ``count_corr`` -- Pearson correlation of per-(sample, neuron) spike
  counts, float vs chip (``nan`` when either side has constant counts);
* ``rate_float`` / ``rate_chip`` -- mean spikes per neuron per step, and
  ``rate_err`` -- mean absolute difference of per-neuron rates;
* ``first_spike_shift`` -- mean (chip - float) first-spike step over the
  (sample, neuron) pairs that spike in both, and ``first_spike_abs`` its
  mean absolute value (steps);
* ``bin_agreement`` -- fraction of (sample, step, neuron) bins equal;
* ``spike_time_err`` -- for populations with the float-side extension
  (ELIF, refractory period, ``docs/neuron-models.md``): the mean absolute
  difference (steps) between the k-th float and the k-th chip spike of each
  (sample, neuron), over the first ``min`` of the two counts;
* ``u_wraps`` / ``v_clips`` -- wrap and saturation events of the ``state_bits``-wide
  state in the chip run;

and per projection the relative RMS weight error; per population the
effective time constants; and accuracy for float and chip when labels are
given (argmax of output spike counts, or of the final ``v`` for a
non-spiking readout).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from ..emulate import run as emulate
from ..errors import ValidationError
from .calibrate import spike_batch

__all__ = ["Evaluation", "evaluate", "format_report", "report_dict", "write_report"]


@dataclass
class Evaluation:
    """Float vs chip on one input batch (see module docstring for the metrics)."""

    layers: Dict[str, Dict[str, float]]
    accuracy_float: Optional[float] = None
    accuracy_chip: Optional[float] = None
    readout: Optional[str] = None
    num_samples: int = 0
    num_steps: int = 0
    float_spikes: Dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    chip_spikes: Dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    chip_v: Dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    float_v: Dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    accuracy_float_chip_semantics: Optional[float] = None  # the model run with the chip's reset
    float_chip_semantics_spikes: Dict[str, np.ndarray] = field(default_factory=dict, repr=False)


def float_run(model, x: np.ndarray, chip_semantics: bool = False):
    """Float reference spikes and voltages per neuron node: ``(B, T, n)`` arrays.

    The graph is read with the producer conventions the model was quantized
    with (``model.convention``), so this is the model as trained;
    ``chip_semantics=True`` runs it with the chip's reset instead (to zero,
    at once, one spike per step, membranes from 0).
    """
    from .. import reference

    conv = getattr(model, "convention", None)
    if conv is None:
        res = reference.simulate(model.graph, x, dt=model.dt_s, record=("spikes", "v"))
    else:
        res = reference.simulate(conv.graph, x, dt=model.dt_s, record=("spikes", "v"),
                                 rules=conv.chip_rules() if chip_semantics else conv.rules,
                                 start_at_leak=conv.start_at_leak and not chip_semantics)
    spikes = {k: np.asarray(v).reshape(v.shape[0], v.shape[1], -1)
              for k, v in res.spikes.items() if k in model.neurons}
    vs = {k: np.asarray(v).reshape(v.shape[0], v.shape[1], -1)
          for k, v in res.v.items() if k in model.neurons}
    return spikes, vs


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a.reshape(-1).astype(np.float64)
    b = b.reshape(-1).astype(np.float64)
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _first(s: np.ndarray) -> np.ndarray:
    """First spike step per (sample, neuron), -1 if none: s is (B, T, n)."""
    any_ = s.any(axis=1)
    return np.where(any_, s.argmax(axis=1), -1)


def _spike_time_err(fs: np.ndarray, cs: np.ndarray) -> float:
    """Mean |t_chip - t_float| (steps) of the k-th spikes paired in order, per (sample,
    neuron), ``fs``/``cs`` ``(B, T, n)``; nan when no pair exists."""
    tot, cnt = 0.0, 0
    for b, i in zip(*np.nonzero(fs.any(axis=1) & cs.any(axis=1))):
        tf, tc = np.flatnonzero(fs[b, :, i]), np.flatnonzero(cs[b, :, i])
        k = min(tf.size, tc.size)
        tot += float(np.abs(tc[:k] - tf[:k]).sum())
        cnt += k
    return tot / cnt if cnt else float("nan")


def evaluate(model, x, labels=None, progress: bool = False, scheduler=None) -> Evaluation:
    """Compare the float reference and the chip emulation on spike input ``x`` ``(B, T, n_in)``.

    ``scheduler`` (a Dask scheduler address or ``Client``): run the chip emulation's
    batch on that cluster (:mod:`neurohw.distributed`; same integers); the float
    reference runs locally."""
    net = model.network
    if len(model.float_graph.inputs) != 1:
        raise ValidationError(f"evaluate: the network has {len(model.float_graph.inputs)} Input "
                              f"nodes; evaluation supports one")
    (in_name,) = model.float_graph.inputs
    n_in = int(np.prod(model.float_graph.shapes[in_name]))
    x = spike_batch(x, n_in, "evaluation input", in_name)
    B, T, _ = x.shape
    fspk, fv = float_run(model, x)
    lat = model.latency
    L = max(lat.values(), default=0)
    xp = np.concatenate([x, np.zeros((B, L, n_in), x.dtype)], axis=1).astype(np.int64)
    readout_pop = _readout(model)
    if scheduler is not None:
        from ..distributed import run as run_distributed

        chip = run_distributed(net, xp, scheduler, record=("spikes", "v"), count_events=True)
    else:
        chip = emulate(net, xp, record=("spikes", "v"), progress=progress, count_events=True)
    layers: Dict[str, Dict[str, float]] = {}
    cs_all, cv_all = {}, {}
    for name, nm in model.neurons.items():
        k = lat[name]
        cs = chip.spikes[name][:, k:k + T].astype(np.int8)
        cs_all[name] = cs
        if name in chip.v:
            cv_all[name] = chip.v[name][:, k:k + T]
        fs = fspk.get(name)
        row: Dict[str, float] = {
            "type": nm.kind, "neurons": nm.size, "latency_steps": k,
            "du": _summary(nm.du), "dv": _summary(nm.dv), "vth": _summary(nm.vth),
            "parameter_sets": nm.parameter_sets(),
            "tau_mem_s": _summary(nm.tau_mem_s), "tau_mem_eff_s": _summary(nm.tau_mem_eff_s),
            "tau_syn_s": _summary(nm.tau_syn_s), "tau_syn_eff_s": _summary(nm.tau_syn_eff_s),
            "u_wraps": int(chip.events[name]["u_wrap"].sum()),
            "v_clips": int(chip.events[name]["v_clip"].sum()),
        }
        if not nm.spiking:
            # a readout must not fire; if it did, its v was reset and readings are corrupt
            row["unexpected_spikes"] = int(chip.spikes[name].sum())
        if fs is not None and nm.spiking:
            fs = (fs != 0).astype(np.int8)
            fc, cc = fs.sum(axis=1), cs.sum(axis=1)
            f1, c1 = _first(fs), _first(cs)
            both = (f1 >= 0) & (c1 >= 0)
            shift = (c1 - f1)[both]
            row.update(
                count_corr=_corr(fc, cc),
                rate_float=float(fs.mean()), rate_chip=float(cs.mean()),
                rate_err=float(np.abs(fs.mean(axis=(0, 1)) - cs.mean(axis=(0, 1))).mean()),
                first_spike_shift=float(shift.mean()) if shift.size else float("nan"),
                first_spike_abs=float(np.abs(shift).mean()) if shift.size else float("nan"),
                bin_agreement=float((fs == cs).mean()),
            )
            if getattr(nm, "ext", None) is not None:
                row["spike_time_err"] = _spike_time_err(fs, cs)
        layers[name] = row
    ev = Evaluation(layers, readout=readout_pop, num_samples=B, num_steps=T,
                    float_spikes=fspk, chip_spikes=cs_all, chip_v=cv_all, float_v=fv)
    if labels is not None and readout_pop is not None:
        y = np.asarray(labels).reshape(-1)
        if y.shape[0] != B:
            raise ValidationError(f"labels: {y.shape[0]} labels for {B} samples")
        ev.accuracy_float = _accuracy(model, readout_pop, fspk, fv, y)
        ev.accuracy_chip = _accuracy(model, readout_pop, cs_all, cv_all, y)
    if getattr(model, "approximations", None):
        # what the chip's semantics alone cost, before any quantization
        aspk, av = float_run(model, x, chip_semantics=True)
        ev.float_chip_semantics_spikes = aspk
        if labels is not None and readout_pop is not None:
            ev.accuracy_float_chip_semantics = _accuracy(model, readout_pop, aspk, av, y)
    return ev


def _readout(model) -> Optional[str]:
    outs = [s for s in model.float_graph.outputs.values() if s in model.neurons]
    return outs[-1] if outs else (list(model.neurons)[-1] if model.neurons else None)


def _accuracy(model, pop, spikes, vs, y) -> Optional[float]:
    if model.neurons[pop].spiking:
        if pop not in spikes:
            return None
        pred = spikes[pop].sum(axis=1).argmax(axis=1)
    else:
        if pop not in vs:
            return None
        pred = vs[pop][:, -1].argmax(axis=1)
    return float((pred == y).mean())


def report_dict(model, ev: Optional[Evaluation] = None) -> dict:
    """Everything in the report as plain JSON-able data."""
    projs = [{
        "name": p.node.name, "path": p.path.name, "kind": type(p.node).__name__,
        "weight_exp": int(p.node.weight_exp), "sign_mode": p.node.sign_mode,
        "weight_rel_rms_error": p.weight_error,
        "synapses": int(p.node.num_synapses),
    } for p in model.projections]
    pops = {}
    for name, nm in model.neurons.items():
        pops[name] = {"type": nm.kind, "neurons": nm.size, "du": _summary(nm.du),
                      "dv": _summary(nm.dv), "vth": _summary(nm.vth),
                      "parameter_sets": nm.parameter_sets(),
                      "tau_mem_s": _summary(nm.tau_mem_s),
                      "tau_mem_eff_s": _summary(nm.tau_mem_eff_s),
                      "tau_syn_s": _summary(nm.tau_syn_s),
                      "tau_syn_eff_s": _summary(nm.tau_syn_eff_s),
                      "parameter_error": nm.costs(),
                      "latency_steps": model.latency[name]}
        if ev is not None:
            pops[name].update({k: v for k, v in ev.layers[name].items() if k not in pops[name]})
    out = {
        "warnings": list(getattr(model, "warnings", [])),
        "profile": model.profile.name, "dt_s": model.dt_s, "calibrated": model.calibrated,
        "neuron_types": getattr(model, "neuron_types", None),
        "populations": pops, "projections": projs, "notes": model.all_notes(),
        "source": getattr(getattr(model, "convention", None), "source", None),
        "approximations": list(getattr(model, "approximations", [])),
    }
    if ev is not None:
        out["evaluation"] = {"samples": ev.num_samples, "steps": ev.num_steps,
                             "readout": ev.readout, "accuracy_float": ev.accuracy_float,
                             "accuracy_float_chip_semantics": ev.accuracy_float_chip_semantics,
                             "accuracy_chip": ev.accuracy_chip}
        if ev.accuracy_float_chip_semantics is not None and ev.accuracy_float is not None:
            out["evaluation"]["approximation_cost_points"] = 100 * (
                ev.accuracy_float_chip_semantics - ev.accuracy_float)
    return _clean(out)


def _clean(obj):
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return None if math.isnan(f) else ("inf" if math.isinf(f) else f)
    return obj


def _summary(values):
    """A per-neuron array as JSON-able data: the value when uniform, else min/median/max."""
    if values is None:
        return None
    arr = np.asarray(values).reshape(-1)
    if arr.size == 0:
        return None
    if np.all(arr == arr[0]):
        return arr[0].item()
    return {"min": arr.min().item(), "median": float(np.median(arr)), "max": arr.max().item(),
            "distinct": int(np.unique(arr).size)}


def _span(values, fmt="{:.4g}") -> str:
    """A per-neuron array as text: ``v`` when uniform, else ``min..max``."""
    if values is None:
        return "-"
    arr = np.asarray(values).reshape(-1)
    lo, hi = arr.min().item(), arr.max().item()
    return _f(lo, fmt) if lo == hi else f"{_f(lo, fmt)}..{_f(hi, fmt)}"


def _pct(cost) -> str:
    return "-" if cost is None else f"{100 * cost['max']:.2f}/{100 * cost['mean']:.2f}"


def _f(v, fmt="{:.4g}") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return fmt.format(v)


def format_report(model, ev: Optional[Evaluation] = None) -> str:
    """A plain-text report: populations, projections, evaluation, notes."""
    lines = [f"neurohw quantization report -- profile {model.profile.name}, dt = {model.dt_s:g} s, "
             f"{'calibrated' if model.calibrated else 'worst-case scales (no calibration)'}", ""]
    warnings = list(getattr(model, "warnings", []))
    if warnings:
        lines += [f"WARNING: {w}" for w in warnings] + [""]
    conv = getattr(model, "convention", None)
    if conv is not None:
        lines.append(f"source: {conv.source} (float = the model as trained, read with its conventions)")
    approx = list(getattr(model, "approximations", []))
    if approx:
        lines.append("the chip cannot do what the model does (float as trained -> chip semantics):")
        lines += [f"  - {a}" for a in approx]
        if ev is not None and ev.accuracy_float_chip_semantics is not None:
            lines.append(f"  measured cost: float as trained {100 * ev.accuracy_float:.2f}% -> float with "
                         f"chip semantics {100 * ev.accuracy_float_chip_semantics:.2f}% "
                         f"({100 * (ev.accuracy_float_chip_semantics - ev.accuracy_float):+.2f} points)")
        elif ev is None:
            lines.append("  (give --eval and --labels to measure what it costs)")
    if conv is not None or approx:
        lines.append("")
    lines.append("populations")
    hdr = (f"  {'name':<14}{'type':<9}{'n':>6}{'du':>12}{'dv':>12}{'vth':>16}"
           f"{'tau_mem->eff (s)':>42}{'lat':>5}")
    if ev is not None:
        hdr += f"{'corr':>7}{'rate f/c':>14}{'1st shift':>10}{'wraps':>7}{'clips':>7}"
    lines.append(hdr)
    for name, nm in model.neurons.items():
        taus = f"{_span(nm.tau_mem_s)} -> {_span(nm.tau_mem_eff_s)}"
        row = (f"  {name:<14}{nm.kind:<9}{nm.size:>6}{' ' + _span(nm.du, '{}'):>12}"
               f"{' ' + _span(nm.dv, '{}'):>12}{' ' + _span(nm.vth, '{}'):>16}{' ' + taus:>42}"
               f"{model.latency[name]:>5}")
        if ev is not None:
            r = ev.layers[name]
            rates = f"{_f(r.get('rate_float'), '{:.3f}')}/{_f(r.get('rate_chip'), '{:.3f}')}"
            row += (f"{_f(r.get('count_corr'), '{:.3f}'):>7}{rates:>14}"
                    f"{_f(r.get('first_spike_shift'), '{:+.2f}'):>10}{r['u_wraps']:>7}{r['v_clips']:>7}")
        lines.append(row)
    ext = [(n, nm) for n, nm in model.neurons.items() if getattr(nm, "ext", None) is not None]
    if ext:  # float-side extension (docs/neuron-models.md)
        lines += ["", "neuron models (metadata neurohw; spike-time error: mean |t_chip - t_float| "
                      "of the k-th spikes, steps)"]
        for name, nm in ext:
            e = nm.ext
            what = [e.model] + (["refractory"] if e.has_refractory else []) + \
                (["lower_bound"] if e.lower_bound is not None else []) + \
                (["trace"] if e.trace is not None else [])
            err = "-" if ev is None else _f(ev.layers[name].get("spike_time_err"), "{:.2f}")
            lines.append(f"  {name:<14}{', '.join(what):<36}{err:>8}")
    k = getattr(model, "neuron_types", None)
    lines += ["", f"neuron parameter sets (neuron_types={'per distinct float set' if k is None else k}; "
                  f"relative error max/mean in %)",
              f"  {'name':<14}{'sets':>6}{'tau_mem err':>14}{'tau_syn err':>14}{'thresh err':>14}"
              f"{'vth bits lost':>15}"]
    for name, nm in model.neurons.items():
        c = nm.costs()
        lost = c["vth_bits_lost"]
        lost_s = "-" if lost is None else f"{lost['max']:.2f}/{lost['mean']:.2f}"
        lines.append(f"  {name:<14}{nm.parameter_sets():>6}{_pct(c['tau_mem']):>14}"
                     f"{_pct(c['tau_syn']):>14}{_pct(c['v_threshold']):>14}{lost_s:>15}")
    lines += ["", "projections", f"  {'name':<22}{'kind':<8}{'exp':>5}{'sign':>12}{'synapses':>10}{'weight err':>12}"]
    for p in model.projections:
        lines.append(f"  {p.node.name:<22}{type(p.node).__name__:<8}{p.node.weight_exp:>5}"
                     f"{p.node.sign_mode:>12}{p.node.num_synapses:>10}{100 * p.weight_error:>11.2f}%")
    if ev is not None:
        lines += ["", f"evaluation: {ev.num_samples} samples x {ev.num_steps} steps, readout "
                      f"'{ev.readout}' (chip read {model.latency.get(ev.readout, 0)} steps later)"]
        if ev.accuracy_float is not None:
            lines.append(f"  accuracy: float {100 * ev.accuracy_float:.2f}%   chip "
                         f"{100 * ev.accuracy_chip:.2f}%   "
                         f"({100 * (ev.accuracy_chip - ev.accuracy_float):+.2f} points)")
    if ev is not None:
        for name, r in ev.layers.items():
            if r.get("unexpected_spikes"):
                lines.append(f"  WARNING: non-spiking readout '{name}' fired {r['unexpected_spikes']} "
                             f"times on the chip (its v saturated); recalibrate with data that "
                             f"covers the longest input")
    notes = model.all_notes()
    if notes:
        lines += ["", "approximations and notes"] + [f"  - {n}" for n in notes]
    return "\n".join(lines) + "\n"


def write_report(model, out_dir, ev: Optional[Evaluation] = None, figures: bool = True) -> List[str]:
    """Write ``report.txt``, ``report.json`` and (with matplotlib) figures into ``out_dir``."""
    from pathlib import Path

    from ..fileio import atomic_write

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    text = format_report(model, ev)
    atomic_write(out / "report.txt", lambda tmp: Path(tmp).write_text(text))
    written.append(str(out / "report.txt"))
    data = json.dumps(report_dict(model, ev), indent=2)
    atomic_write(out / "report.json", lambda tmp: Path(tmp).write_text(data))
    written.append(str(out / "report.json"))
    if figures:
        from .figures import (count_scatter_figure, layer_error_figure, membrane_figure,
                              raster_compare_figure)

        written.append(layer_error_figure(model, ev, out / "layer_error.png"))
        if ev is not None:
            written.append(count_scatter_figure(model, ev, out / "spike_counts.png"))
            written.append(raster_compare_figure(model, ev, out / "raster_float_vs_chip.png"))
            written.append(membrane_figure(model, ev, out / "membrane_float_vs_chip.png"))
    return written
