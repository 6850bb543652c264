"""One figure per neuron model: float membrane vs chip membrane (docs/neuron-models.md).

    .venv/bin/python examples/neuron_models.py [OUT_DIR]   (default docs/figures)

For each model (LIF, LIF with a refractory period, LIF with a lower bound,
ELIF, ELIF with a refractory period) one neuron gets a constant current plus
random input spikes; the float reference (neurohw.reference) and the
quantized network on the emulator (``loihi2``) run side by side, and the chip's
``v`` is shown in volts (``v_chip / S + v_shift``, the latency removed).
Writes ``neuron-<model>.png`` and prints the spike-time error per model.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nir
import numpy as np

from neurohw.emulate import run
from neurohw.quantize import quantize
from neurohw.reference import simulate

MODELS = {
    "lif": {},
    "refractory": {"refractory_s": 0.003},
    "lower-bound": {"lower_bound": -0.3},
    "elif": {"model": "elif", "delta_t": 0.1, "theta_rh": 0.7},
    "elif-refractory": {"model": "elif", "delta_t": 0.2, "theta_rh": 0.6, "refractory_s": 0.003},
}


def network(ext, n_in=8, seed=0):
    """Input -> Affine (random weights, a constant current as bias) -> one LIF node."""
    rng = np.random.default_rng(seed)
    return nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([n_in])}),
        "fc": nir.Affine(rng.normal(-8.0, 25.0, (1, n_in)), np.array([1.6])),
        "lif": nir.LIF(tau=np.array([0.02]), r=np.ones(1), v_leak=np.zeros(1),
                       v_threshold=np.ones(1), v_reset=np.zeros(1), metadata={"neurohw": ext}),
        "out": nir.Output(output_type={"output": np.array([1])})},
        edges=[("in", "fc"), ("fc", "lif"), ("lif", "out")])


def main(out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    dt, T = 2e-4, 1500
    rng = np.random.default_rng(1)
    x = (rng.random((1, T, 8)) < 0.04).astype(np.float64)
    for name, ext in MODELS.items():
        g = network(ext)
        f = simulate(g, x, dt, record=("spikes", "v"))
        model = quantize(g, "loihi2", dt=dt, calibrate=x)
        L = model.latency["lif"]
        chip = run(model.network, np.concatenate([x, np.zeros((1, L, 8))], 1).astype(np.int64),
                   record=("spikes", "v"))
        nm = model.neurons["lif"]
        v_chip = chip.v["lif"][0, L:L + T, 0] / nm.scale[0] + nm.v_shift[0]
        tf = np.flatnonzero(f.spikes["lif"][0, :, 0])
        tc = np.flatnonzero(chip.spikes["lif"][0, L:L + T, 0])
        k = min(tf.size, tc.size)
        err = float(np.abs(tf[:k] - tc[:k]).mean()) if k else float("nan")
        t = np.arange(T) * dt * 1e3
        fig, ax = plt.subplots(figsize=(8, 2.6))
        ax.plot(t, f.v["lif"][0, :, 0], lw=1.0, label="float reference")
        ax.plot(t, v_chip, lw=0.8, ls="--", label="chip (loihi2), in volts")
        ax.axhline(1.0, color="grey", lw=0.5)
        ax.set_xlabel("time (ms)")
        ax.set_ylabel("v")
        ax.set_title(f"{name}: {tf.size} float / {tc.size} chip spikes, "
                     f"mean spike-time error {err:.2f} steps")
        ax.legend(loc="lower right", fontsize=7)
        fig.tight_layout()
        fig.savefig(out_dir / f"neuron-{name}.png", dpi=80)
        plt.close(fig)
        print(f"{name:<16} float {tf.size:4d} chip {tc.size:4d} spikes, spike-time error "
              f"{err:.2f} steps")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/figures"))
