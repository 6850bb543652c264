"""Figures: spike rasters (more plots arrive with the emulator and quantizer).

Needs matplotlib (the ``plots`` extra); it is imported here only, with the
non-interactive Agg backend, so figures render on machines with no screen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from .errors import MissingDependencyError

__all__ = ["raster"]


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependencyError("plots need matplotlib: pip install matplotlib") from None
    return plt


def raster(spikes: Mapping[str, np.ndarray], path: str | Path, title: str = "",
           dt_s: float | None = None) -> Path:
    """Save a spike raster, one panel per population.

    ``spikes`` maps a population name to a ``(T, n)`` 0/1 array (steps x
    neurons).  With ``dt_s`` the x axis is in milliseconds, else in steps.
    The figure is written atomically to ``path`` (PNG, SVG or PDF by suffix).
    """
    from .fileio import atomic_write

    plt = _pyplot()
    names = list(spikes)
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 1.2 + 1.6 * len(names)), sharex=True,
                             squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        s = np.asarray(spikes[name])
        t, n = np.nonzero(s)
        x = t * dt_s * 1e3 if dt_s else t
        ax.scatter(x, n, s=4, marker="|", color="black")
        ax.set_ylabel(f"{name}\nneuron")
        ax.set_ylim(-0.5, s.shape[1] - 0.5)
        ax.set_title(f"{name}: {int(s.sum())} spikes", fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("time (ms)" if dt_s else "time step")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=120))
    plt.close(fig)
    return path
