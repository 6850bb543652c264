"""Quantization figures: per-layer error, spike-count scatter, float vs chip raster."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..plots import _pyplot

__all__ = ["layer_error_figure", "count_scatter_figure", "raster_compare_figure",
           "membrane_figure"]


def _save(fig, path) -> str:
    from ..fileio import atomic_write

    plt = _pyplot()
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=110))
    plt.close(fig)
    return str(path)


def layer_error_figure(model, ev, path) -> str:
    """Bars: relative RMS weight error per projection; with ``ev``, spike-count correlation per layer."""
    plt = _pyplot()
    ncols = 2 if ev is not None else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5 * ncols, 3.2), squeeze=False)
    ax = axes[0, 0]
    names = [p.node.name for p in model.projections]
    errs = [100 * p.weight_error for p in model.projections]
    ax.bar(range(len(names)), errs, color="tab:blue")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("weight error (% RMS)")
    ax.set_title("weights after quantization", fontsize=10)
    if ev is not None:
        ax = axes[0, 1]
        pops = [k for k, r in ev.layers.items() if "count_corr" in r]
        corr = [ev.layers[k]["count_corr"] for k in pops]
        agree = [ev.layers[k]["bin_agreement"] for k in pops]
        xs = np.arange(len(pops))
        ax.bar(xs - 0.2, np.nan_to_num(corr), 0.4, label="spike-count correlation")
        ax.bar(xs + 0.2, agree, 0.4, label="bin agreement")
        ax.set_xticks(xs, pops, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=7, loc="lower left")
        ax.set_title("float vs chip spikes", fontsize=10)
    return _save(fig, path)


def count_scatter_figure(model, ev, path) -> str:
    """Per spiking layer: chip vs float spike count of every (sample, neuron)."""
    plt = _pyplot()
    pops = [k for k in ev.chip_spikes if k in ev.float_spikes and model.neurons[k].spiking]
    fig, axes = plt.subplots(1, max(1, len(pops)), figsize=(3.4 * max(1, len(pops)), 3.2),
                             squeeze=False)
    for ax, k in zip(axes[0], pops):
        f = ev.float_spikes[k].sum(axis=1).reshape(-1)
        c = ev.chip_spikes[k].sum(axis=1).reshape(-1)
        top = max(1, int(max(f.max(initial=0), c.max(initial=0))))
        ax.scatter(f, c, s=4, alpha=0.3)
        ax.plot([0, top], [0, top], color="gray", lw=0.8)
        ax.set_xlabel("float spike count")
        ax.set_ylabel("chip spike count")
        ax.set_title(f"{k}: r = {ev.layers[k].get('count_corr', float('nan')):.3f}", fontsize=9)
    return _save(fig, path)


def raster_compare_figure(model, ev, path, sample: int = 0) -> str:
    """Raster of one sample, float (dots) over chip (bars, latency removed), per spiking layer."""
    plt = _pyplot()
    pops = [k for k in ev.chip_spikes if k in ev.float_spikes and model.neurons[k].spiking]
    fig, axes = plt.subplots(len(pops), 1, figsize=(8, 1.2 + 1.8 * len(pops)), squeeze=False,
                             sharex=True)
    for ax, k in zip(axes[:, 0], pops):
        f = ev.float_spikes[k][sample]
        c = ev.chip_spikes[k][sample]
        t, n = np.nonzero(f)
        ax.scatter(t, n, s=10, marker="o", facecolors="none", edgecolors="tab:blue", label="float")
        t, n = np.nonzero(c)
        ax.scatter(t, n, s=12, marker="|", color="black", label="chip")
        ax.set_ylabel(f"{k}\nneuron")
        ax.set_title(f"{k}: float {int(f.sum())} / chip {int(c.sum())} spikes "
                     f"(chip read {model.latency[k]} step(s) later)", fontsize=9, loc="left")
    axes[0, 0].legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time step")
    return _save(fig, path)


def membrane_figure(model, ev, path, sample: int = 0, neurons: int = 3) -> str:
    """Membrane traces of a few neurons per layer: float ``v`` vs chip ``v / S_i`` (dequantized).

    The chip trace is read ``latency`` steps later (see :mod:`neurohw.quantize.report`);
    both are the value after the step's reset.  The most active neurons are shown.
    """
    plt = _pyplot()
    pops = [k for k in ev.chip_v if k in ev.float_v]
    fig, axes = plt.subplots(len(pops), 1, figsize=(8, 1.2 + 2.0 * len(pops)), squeeze=False,
                             sharex=True)
    for ax, k in zip(axes[:, 0], pops):
        f = ev.float_v[k][sample]
        c = ev.chip_v[k][sample].astype(np.float64) / model.neurons[k].scale[None, :]
        counts = ev.float_spikes[k][sample].sum(axis=0) if k in ev.float_spikes else np.abs(f).sum(0)
        pick = np.argsort(-counts, kind="stable")[:neurons]
        for j, i in enumerate(pick):
            color = f"C{j}"
            ax.plot(f[:, i], color=color, lw=1.0, label=f"neuron {i} float")
            ax.plot(c[:, i], color=color, lw=1.0, ls="--", label=f"neuron {i} chip")
        th = model.neurons[k].v_threshold
        if th is not None:
            ax.axhline(float(np.median(th)), color="gray", lw=0.6, ls=":")
        ax.set_ylabel(f"{k}\nv (float units)")
        ax.legend(fontsize=6, ncol=3, loc="upper right")
    axes[-1, 0].set_xlabel("time step (float timing)")
    return _save(fig, path)
