"""neurohw demo (`make demo`): the whole pipeline on a real trained model.

1. load the shipped snnTorch model (examples/models/digits.nir, trained on
   scikit-learn's digits by examples/train_digits.py) and its encoded test split;
2. quantize it for Loihi 2, calibrated on training samples, and write the
   quantized NIR;
3. emulate the whole test split bit-exactly (batched) and compare with the
   float reference: accuracy, per-layer report and figures;
4. verify the emulator against Lava's bit-accurate simulator (fixed_pt) on a
   few test samples -- bit-exact or the first divergence;
5. export to all three targets: a standalone Lava script (run and checked
   bit-exact), lava-dl netx HDF5 (netx re-derives weight exponents, so a
   netx-constrained variant is quantized, loaded by the real netx loader and
   run in Lava), and NIR that snnTorch loads (run and compared);
6. print the accuracy table: float / emulated / Lava-run / netx-run / snnTorch-run;
7. plan the quantized model on the chip (`neurohw map`): cores, chips, limits, events from
   a bit-exact run of test samples, energy, latency and NeuroBench metrics (out/plan.json,
   out/plan.html).

Everything goes to ./out/.  Options: --lava-samples N (default 20),
--profile loihi1|loihi2.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
import time
from pathlib import Path

# quiet third-party import chatter (torch's CUDA_HOME notice, lava-dl's Prophesee note,
# snnTorch's importer prints); neurohw's own output is unaffected
os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)

import numpy as np

import neurohw as nh
from neurohw.quantize import quantize
from neurohw.quantize.report import evaluate, format_report, write_report

HERE = Path(__file__).resolve().parent
MODEL = HERE / "models" / "digits.nir"
DATA = HERE / "models" / "digits_data.npz"



def _vth_text(pop) -> str:
    """A population's threshold mantissa: one value, or min..max when per neuron."""
    one = pop.uniform("vth")
    return str(one) if one is not None else f"{int(pop.vth.min())}..{int(pop.vth.max())}"

def _lava_accuracy(model, x, y, n):
    """Run n test samples through Lava; returns (accuracy, all bit-exact, seconds)."""
    from neurohw.backends.lava import run_lava
    from neurohw.emulate import run as emulate

    net = model.network
    out = [k for k in model.float_graph.outputs.values()][-1]
    lat = model.latency[out]
    correct, exact = 0, True
    t0 = time.perf_counter()
    for i in range(n):
        xi = np.concatenate([x[i], np.zeros((lat, x.shape[2]), x.dtype)]).astype(np.int64)
        lava = run_lava(net, xi, record=("spikes", "v", "u"))
        emu = emulate(net, xi, record=("spikes", "v", "u"))
        for var in ("spikes", "v", "u"):
            for k in net.populations:
                exact &= bool(np.array_equal(getattr(lava, var)[k], getattr(emu, var)[k][0]))
        pred = lava.spikes[out][lat:].sum(axis=0).argmax()
        correct += int(pred == y[i])
    return correct / n, exact, time.perf_counter() - t0


def _snntorch_accuracy(path, x, y, lat):
    """Accuracy of snnTorch's own import of the exported NIR (float, no chip latency)."""
    import torch
    from snntorch import import_nir

    import nir

    with contextlib.redirect_stdout(io.StringIO()):
        net = import_nir.import_from_nir(nir.read(str(path)))
    xt = torch.from_numpy(np.concatenate([x, np.zeros((x.shape[0], lat, x.shape[2]), x.dtype)],
                                         axis=1).astype(np.float32))
    counts = 0
    state = None
    with torch.no_grad():
        for t in range(xt.shape[1]):
            out, state = net(xt[:, t], state)
            counts = counts + out
    return float((counts.numpy().argmax(axis=1) == y).mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lava-samples", type=int, default=20)
    ap.add_argument("--profile", default="loihi2")
    args = ap.parse_args(argv)
    out = Path("out")
    out.mkdir(exist_ok=True)
    data = np.load(DATA)
    x_test, y_test, x_cal = data["x_test"], data["y_test"], data["x_train"]
    print(f"[1/7] model {MODEL.relative_to(HERE.parent)}; test split {x_test.shape[0]} samples "
          f"x {x_test.shape[1]} steps x {x_test.shape[2]} inputs")

    t0 = time.perf_counter()
    model = quantize(MODEL, args.profile, calibrate=x_cal, source="snntorch", reset="zero")
    qpath = nh.write_network(model.network, out / "digits.q.nir")
    print(f"[2/7] quantized for {args.profile} in {time.perf_counter() - t0:.2f} s -> {qpath}")

    t0 = time.perf_counter()
    ev = evaluate(model, x_test, y_test)
    secs = time.perf_counter() - t0
    print(f"[3/7] float reference and batched emulation of {x_test.shape[0]} samples: {secs:.2f} s\n")
    print(format_report(model, ev))
    files = write_report(model, out / "report", ev)
    print("      report and figures: " + ", ".join(str(Path(f).name) for f in files))

    n = min(args.lava_samples, x_test.shape[0])
    acc_lava, exact, secs = _lava_accuracy(model, x_test, y_test, n)
    print(f"\n[4/7] Lava Loihi2SimCfg(fixed_pt) on {n} test samples ({secs:.1f} s): emulator is "
          f"{'BIT-EXACT (spikes, v, u at every step)' if exact else 'NOT bit-exact'}")

    from neurohw.export import export_lava_script, export_netx, export_nir, run_netx

    # (a) standalone Lava script, run as its own process on two samples
    script_dir = export_lava_script(model.network, out / "digits_lava", overwrite=True)
    lat = model.latency[ev.readout]
    x2 = np.concatenate([x_test[:2], np.zeros((2, lat, x_test.shape[2]), x_test.dtype)], axis=1)
    np.save(out / "x2.npy", x2.astype(np.int64))
    import subprocess

    subprocess.run([sys.executable, str(script_dir / "run_lava.py"), "--input", str(out / "x2.npy"),
                    "--out", str(out / "x2_lava.npz")], check=True, capture_output=True)
    from neurohw.emulate import run as emulate

    emu2 = emulate(model.network, x2.astype(np.int64)).to_npz_dict()
    with np.load(out / "x2_lava.npz") as z:
        script_exact = all(np.array_equal(z[k], emu2[k]) for k in emu2)
    print(f"[5/7] exports\n      Lava script {script_dir}/run_lava.py: ran 2 samples in its own "
          f"process, {'bit-exact' if script_exact else 'NOT bit-exact'} with the emulator")

    # (b) netx: quantize a variant within netx's limits, export, load with netx, run in Lava
    model_nx = quantize(MODEL, args.profile, calibrate=x_cal, target="netx", source="snntorch",
                        reset="zero")
    ev_nx = evaluate(model_nx, x_test, y_test)
    from neurohw.backends.lava import import_lava

    import_lava()  # the Python 3.11 patch, before any lava module
    with contextlib.redirect_stdout(io.StringIO()):
        import lava.lib.dl.netx  # noqa: F401  (imports torch and prints a note)
    report = export_netx(model_nx.network, out / "digits.net")
    correct, nx_exact = 0, True
    out_pop = ev_nx.readout
    for i in range(n):
        xi = np.concatenate([x_test[i], np.zeros((lat, x_test.shape[2]), x_test.dtype)])
        got = run_netx(out / "digits.net", xi.astype(np.int64), report)
        want = emulate(model_nx.network, xi.astype(np.int64))
        nx_exact &= all(np.array_equal(got[k], want.spikes[k][0]) for k in got)
        correct += int(got[out_pop][lat:].sum(axis=0).argmax() == y_test[i])
    acc_netx = correct / n
    print(f"      netx HDF5 {out / 'digits.net'} (weight_exp 0 variant, vth "
          f"{', '.join(_vth_text(p) for p in model_nx.network.populations.values())}): real netx "
          f"loader + Lava on {n} samples, {'bit-exact' if nx_exact else 'NOT bit-exact'} "
          f"with the emulator")

    # (c) NIR for snnTorch: load with snnTorch's importer and run the float model
    nir_path = export_nir(model.network, out / "digits.snntorch.nir", flavor="snntorch")
    acc_snn = _snntorch_accuracy(nir_path, x_test, y_test, lat)
    print(f"      NIR {nir_path}: loaded by snntorch.import_nir, float run of the dequantized "
          f"network")

    emu_acc_subset = float((ev.chip_spikes[ev.readout][:n].sum(axis=1).argmax(axis=1)
                            == y_test[:n]).mean())
    def sub(e, spikes):
        return float((spikes[e.readout][:n].sum(axis=1).argmax(axis=1) == y_test[:n]).mean())

    rows = [("float reference (snnTorch semantics)", ev.accuracy_float, sub(ev, ev.float_spikes)),
            ("emulated, integer (neurohw)", ev.accuracy_chip, emu_acc_subset),
            ("Lava fixed_pt run", None, acc_lava),
            ("emulated, netx variant", ev_nx.accuracy_chip, sub(ev_nx, ev_nx.chip_spikes)),
            ("netx loaded + Lava run", None, acc_netx),
            ("snnTorch run of exported NIR", acc_snn, None)]
    print(f"\n[6/7] {'accuracy':<38}{'all %d' % x_test.shape[0]:>10}{'first %d' % n:>10}")
    for name, a, b in rows:
        fa = f"{100 * a:.2f} %" if a is not None else ""
        fb = f"{100 * b:.2f} %" if b is not None else ""
        print(f"      {name:<38}{fa:>10}{fb:>10}")
    exact = exact and script_exact and nx_exact
    ok = exact and ev.accuracy_chip >= ev.accuracy_float - 0.01

    # the deployment plan of the shipped model, events counted from 20 test samples
    import json

    from neurohw.fileio import atomic_write
    from neurohw.mapping import plan
    from neurohw.mapping.html import plan_html

    n_plan = min(20, x_test.shape[0])
    deploy = plan(model.network, x_test[:n_plan], input_name=f"{n_plan} test samples")
    d = deploy.to_dict()
    for name, text in (("plan.json", json.dumps(d, indent=1)),
                       ("plan.html", plan_html(d, "neurohw deployment plan: digits"))):
        atomic_write(out / name, lambda tmp, text=text: Path(tmp).write_text(text))
    print(f"\n[7/7] deployment plan on {args.profile} ({n_plan} test samples; out/plan.json, "
          f"out/plan.html)")
    print("      " + deploy.text().replace("\n", "\n      "))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
