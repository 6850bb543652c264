"""Train a small spiking network on scikit-learn's digits with snnTorch, export it to NIR.

    .venv/bin/python examples/train_digits.py --out examples/models

Data: ``sklearn.datasets.load_digits`` (1797 images of 8x8 = 64 pixels, values
0..16, 10 classes), split 75/25 stratified with ``random_state=SEED``.

Encoding: rate (Bernoulli) coding.  Pixel ``p`` spikes at each of ``T`` steps
independently with probability ``p / 16``; the draws come from
``numpy.random.default_rng`` seeded from ``SEED``, so the encoded test split is
the same on every run (and it is shipped, so nobody needs to re-encode it).
Training draws a fresh encoding of the train split each epoch (also seeded).

Network (``torch.nn.Sequential``, exported by snnTorch's own NIR exporter)::

    64 -> Linear(64, HIDDEN, bias=False) -> Leaky -> Linear(HIDDEN, 10, bias=False) -> Leaky

``snn.Leaky(beta=BETA, threshold=1.0, reset_mechanism="zero")``: fixed
(not learned) beta and threshold; a spike resets the membrane to 0, as a
chip LIF does.  The readout is the output layer's spike count over the T
steps; the predicted class is its argmax (ties go to the lowest class index,
``numpy.argmax``/``torch.argmax``).  Training uses snnTorch's surrogate
gradient (its default ``atan``) and cross-entropy on the spike counts.

Outputs (in ``--out``, each written atomically):

* ``digits.nir`` -- ``snntorch.export_nir.export_to_nir(net, sample)`` written
  with ``nir.write``;
* ``digits_data.npz`` -- ``x_test`` (N, T, 64) uint8 spikes, ``y_test`` (N,)
  int64 labels, ``x_train``/``y_train`` (a class-balanced calibration subset of
  the train split, encoded the same way);
* ``digits_info.json`` -- T, seed, beta, the float test accuracy measured in
  snnTorch on ``x_test``, library versions, date.

Runs on the CPU in well under two minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

SEED = 7
T_STEPS = 25
HIDDEN = 64
BETA = 0.9
THRESHOLD = 1.0
EPOCHS = 10
BATCH = 64
LR = 5e-3
N_CALIB_PER_CLASS = 20  # calibration subset of the train split: 20 per class = 200 samples


def encode(pixels: np.ndarray, num_steps: int, rng: np.random.Generator) -> np.ndarray:
    """Bernoulli rate code: ``(N, 64)`` pixels 0..16 -> ``(N, T, 64)`` uint8 spikes.

    Each pixel spikes at each step independently with probability ``pixel / 16``.
    """
    p = np.clip(np.asarray(pixels, dtype=np.float64) / 16.0, 0.0, 1.0)
    u = rng.random((p.shape[0], num_steps, p.shape[1]))
    return (u < p[:, None, :]).astype(np.uint8)


def load_split(seed: int):
    """The fixed stratified 75/25 split of sklearn's digits: (x_tr, y_tr, x_te, y_te)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.data.astype(np.float64)  # (1797, 64), values 0..16
    y = digits.target.astype(np.int64)
    return train_test_split(x, y, test_size=0.25, stratify=y, random_state=seed)


def build_net(hidden: int = HIDDEN, beta: float = BETA):
    """The snnTorch network (``init_hidden=True`` so ``Sequential`` and the exporter work)."""
    import snntorch as snn
    import torch

    def leaky(n, **kw):
        # per-neuron (constant, not learned) beta and threshold: with scalars snnTorch
        # 1.0.0 exports 0-d LIF parameters and NIR's type inference then rejects the graph
        return snn.Leaky(beta=torch.full((n,), beta), threshold=torch.full((n,), THRESHOLD),
                         reset_mechanism="zero", init_hidden=True, **kw)

    return torch.nn.Sequential(
        torch.nn.Linear(64, hidden, bias=False),
        leaky(hidden),
        torch.nn.Linear(hidden, 10, bias=False),
        leaky(10, output=True),
    )


def reset_states(net) -> None:
    """Zero the hidden state of every snnTorch neuron in ``net`` (before each sequence)."""
    import snntorch as snn

    for m in net.modules():
        if isinstance(m, snn.Leaky):
            m.reset_mem()


def run_counts(net, x):
    """Run ``net`` over ``x`` (B, T, 64) float tensor; returns output spike counts (B, 10)."""
    reset_states(net)
    counts = 0
    for t in range(x.shape[1]):
        spk, _mem = net(x[:, t])
        counts = counts + spk
    return counts


def accuracy(net, x: np.ndarray, y: np.ndarray, batch: int = 512) -> float:
    """Test accuracy of ``net`` on uint8 spikes ``x`` (N, T, 64): argmax of spike counts."""
    import torch

    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(x[i:i + batch].astype(np.float32))
            pred = run_counts(net, xb).argmax(dim=1).numpy()
            correct += int((pred == y[i:i + batch]).sum())
    return correct / len(x)


def calibration_subset(x: np.ndarray, y: np.ndarray, per_class: int, rng) -> np.ndarray:
    """Indices of ``per_class`` samples of each class, drawn with ``rng``, sorted."""
    idx = [rng.choice(np.flatnonzero(y == c), size=per_class, replace=False) for c in range(10)]
    return np.sort(np.concatenate(idx))


def train(out: Path, epochs: int = EPOCHS, seed: int = SEED, num_steps: int = T_STEPS,
          verbose: bool = True) -> dict:
    """Train, evaluate, export; returns the info dict written to ``digits_info.json``."""
    import nir
    import snntorch
    import torch
    from snntorch.export_nir import export_to_nir

    from neurohw.fileio import atomic_write

    torch.manual_seed(seed)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    ss = np.random.SeedSequence(seed)
    rng_test, rng_train, rng_calib, rng_shuffle = (np.random.default_rng(s) for s in ss.spawn(4))

    x_tr, x_te, y_tr, y_te = load_split(seed)
    x_test = encode(x_te, num_steps, rng_test)

    net = build_net()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for epoch in range(epochs):
        xs = torch.from_numpy(encode(x_tr, num_steps, rng_train).astype(np.float32))
        ys = torch.from_numpy(y_tr)
        perm = rng_shuffle.permutation(len(x_tr))
        total = 0.0
        for i in range(0, len(perm), BATCH):
            b = torch.from_numpy(perm[i:i + BATCH])
            counts = run_counts(net, xs[b])
            loss = loss_fn(counts, ys[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        if verbose and (epoch % 5 == 4 or epoch == epochs - 1):
            acc = accuracy(net, x_test, y_te)
            print(f"epoch {epoch + 1:3d}  loss {total / len(perm):.4f}  test acc {acc:.4f}"
                  f"  ({time.perf_counter() - t0:.1f} s)")
    train_s = time.perf_counter() - t0
    net.eval()
    test_acc = accuracy(net, x_test, y_te)

    calib = calibration_subset(x_tr, y_tr, N_CALIB_PER_CLASS, rng_calib)
    x_calib = encode(x_tr[calib], num_steps, rng_calib)

    reset_states(net)
    graph = export_to_nir(net, torch.zeros(64))  # unbatched sample: Input type (64,)

    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "digits.nir", lambda tmp: nir.write(tmp, graph))

    def _write_npz(tmp):
        buf = io.BytesIO()
        np.savez_compressed(buf, x_test=x_test, y_test=y_te.astype(np.int64),
                            x_train=x_calib, y_train=y_tr[calib].astype(np.int64))
        Path(tmp).write_bytes(buf.getvalue())

    atomic_write(out / "digits_data.npz", _write_npz)
    info = {
        "dataset": "sklearn.datasets.load_digits, train_test_split(test_size=0.25, "
                   "stratify=y, random_state=seed)",
        "encoding": "Bernoulli rate code: P(spike) = pixel/16 per step, "
                    "numpy default_rng(SeedSequence(seed).spawn(4)[0]) for x_test",
        "T": num_steps,
        "seed": seed,
        "n_test": int(len(x_test)),
        "n_calibration": int(len(calib)),
        "hidden": HIDDEN,
        "beta": BETA,
        "threshold": THRESHOLD,
        "reset_mechanism": "zero",
        "readout": "argmax of output spike counts over T steps (ties: lowest index)",
        "nir_dt_s": 1e-4,
        "nir_dt_note": "snnTorch's exporter fixes dt = 1e-4 s: tau = dt / (1 - beta), r = tau / dt",
        "epochs": epochs,
        "train_seconds": round(train_s, 1),
        "float_test_accuracy": test_acc,
        "snntorch_version": snntorch.__version__,
        "torch_version": torch.__version__,
        "nir_version": getattr(nir, "__version__", "unknown"),
        "date": _dt.date.today().isoformat(),
    }
    atomic_write(out / "digits_info.json",
                 lambda tmp: Path(tmp).write_text(json.dumps(info, indent=2) + "\n"))
    if verbose:
        print(f"float test accuracy (snnTorch): {test_acc:.4f} on {len(x_test)} samples; "
              f"trained in {train_s:.1f} s; wrote {out}/digits.nir, digits_data.npz, digits_info.json")
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("examples/models"),
                    help="output directory (default: examples/models)")
    ap.add_argument("--epochs", type=int, default=EPOCHS, help=f"epochs (default {EPOCHS})")
    args = ap.parse_args(argv)
    train(args.out, epochs=args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
