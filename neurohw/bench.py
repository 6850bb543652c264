"""Benchmark: neurohw's emulator against Lava's ``fixed_pt`` CPU simulator.

:func:`run_bench` builds the same integer networks for both, runs them in one
process on the same seeded Poisson input, checks that the spikes agree bit
for bit, and reports speeds and ratios:

1. ``single`` -- one sample of a 100-100-10 LIF network (Input 100 -> Dense ->
   LIF 100 -> Dense -> LIF 10) for ``steps`` steps; emulator steps/s against
   Lava's steady-state steps/s (target: at least 20x).
2. ``batch`` -- ``batch`` samples of the same network in one emulator run
   against Lava run one sample at a time.  Lava runs one sample per process
   graph, so its sample-steps/s is its single-sample steps/s, measured in
   case 1 and not re-run per sample (target: at least 2,000x).
3. ``dense_single`` and ``dense_batch`` -- the same network (same weights and
   thresholds) driven hard: input rate :data:`DENSE_INPUT_RATE` instead of 0.1,
   so most hidden and output neurons spike in most steps (about 80-90 %, against
   15-25 % in cases 1-2).  Lava runs sample 0 of that input (its step time on the
   active net, phase-timed, best of ``repeats``; its spikes are compared with the
   emulator's bit for bit); the emulator runs one sample and the whole batch
   (targets as cases 1-2: 100x and 5,000x).
4. ``large`` -- a 10,000-neuron network (Input 1000 -> Dense -> LIF 5000 ->
   Dense -> LIF 5000), one sample; Lava runs fewer steps (``large_lava_steps``).

Sections beside the cases (emulator only, each against its target of issue 13):
the float32 GEMM bound (:func:`gemm_bound`), start-up of a whole process
(:func:`measure_startup`), speed under load (:func:`measure_under_load`), the
1M-neuron conv net (:func:`measure_conv`) and the 1M-neuron, 100M-synapse
recurrent sparse net (:func:`measure_sparse`), the last two each in a fresh
process so that their peak memory is their own.

How Lava is timed: the process graph is built exactly as
:func:`~neurohw.backends.lava.run_lava` builds it, with a spike ``Monitor``
per population, and run in two calls: ``RunSteps(1)`` -- so *startup* is
building, compiling and the first step -- then ``RunSteps(T - 1)``, whose
time over ``T - 1`` is the *steady-state* time per step (best of ``repeats``
runs in case 1, one run in case 3).  Case 1 also calls ``run_lava`` once,
end to end, and the spikes of every Lava run are compared with the
emulator's.  Ratios are taken against Lava's steady-state speed, the
comparison least favourable to the emulator; the end-to-end ratio (Lava's
whole ``run_lava`` call, startup included) is reported beside it.  The
emulator is timed over its whole ``run`` call (set-up and recording
included), after one short warm-up run, best of ``repeats`` runs in cases
1-2 (one run in case 3).

Times are wall-clock seconds (``time.perf_counter``); speeds are steps per
second (``steps/s``) or sample-steps per second (batch x steps per second).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from . import ir
from .errors import ValidationError

__all__ = ["BenchConfig", "bench_network", "bench_input", "machine_info", "run_bench",
           "format_markdown", "write_report", "TARGETS", "conv_network", "measure_conv",
           "CONV_TARGET_STEPS_PER_S", "CONV_TARGET_GIB", "DENSE_INPUT_RATE",
           "sparse_network", "sparse_steady_state", "measure_sparse",
           "SPARSE_TARGET_STEPS_PER_S", "SPARSE_TARGET_GIB"]

#: speed targets (ratio emulator / Lava steady state) per case; None: no target
#: (issue 13: 100x single-sample, 5,000x at batch 256; issue 4 asked 20x and 2,000x)
TARGETS: Dict[str, Optional[float]] = {"single": 100.0, "batch": 5000.0,
                                        "dense_single": 100.0, "dense_batch": 5000.0,
                                        "large": None}

#: input spike probability per step of the dense-activity cases (cases 1-2: 0.1)
DENSE_INPUT_RATE = 0.5

#: under load (one CPU-bound process beside the emulator), the least acceptable
#: fraction of the quiet speed
LOAD_TARGET = 0.5

_DU, _DV = 1024, 512  # current / voltage decay: time constants of ~4 and ~8 steps


@dataclass(frozen=True)
class BenchConfig:
    """What to run.  Step counts are time steps; ``batch`` is samples.

    ``steps`` -- emulator and Lava steps for cases 1-2 (>= 10);
    ``batch`` -- samples in case 2 (>= 1);
    ``large`` -- run case 3 (the 10k-neuron network);
    ``large_steps`` -- emulator steps for case 3 (>= 10);
    ``large_lava_steps`` -- Lava steps for case 3 (>= 10, at most ``large_steps``);
    ``skip_lava`` -- time the emulator only (no ratios, no bit-exactness check);
    ``repeats`` -- emulator runs per case 1-2 and Lava runs per length in case 1
    (the shortest counts, as ``timeit`` does: on a shared machine the shortest
    run is the least disturbed one);
    ``seed`` -- seeds weights and inputs (``np.random.default_rng``);
    ``under_load`` -- also time cases 1-2 with one CPU-bound process running beside
    the emulator (:func:`measure_under_load`);
    ``gemm`` -- measure the machine's float32 GEMM bound (:func:`gemm_bound`);
    ``startup`` -- time whole ``neurohw emulate`` processes on a small run
    (:func:`measure_startup`);
    ``conv`` -- time the 1M-neuron conv net (:func:`measure_conv`) for
    ``conv_steps`` steps (>= 10), one sample and a batch of ``conv_batch``;
    ``dense`` -- run the dense-activity cases (``dense_single``, ``dense_batch``);
    ``sparse`` -- time the recurrent sparse net (:func:`measure_sparse`) of
    ``sparse_neurons`` neurons (>= 100) with ``sparse_fan`` synapses each
    (1 .. ``sparse_neurons``), threshold mantissa ``sparse_vth`` (>= 1; 4000: a
    spike rate of about 5 %), ``sparse_steps`` steps (>= 10).
    """

    steps: int = 2000
    batch: int = 256
    large: bool = True
    large_steps: int = 500
    large_lava_steps: int = 200
    skip_lava: bool = False
    repeats: int = 3
    seed: int = 0
    under_load: bool = False
    gemm: bool = True
    startup: bool = True
    conv: bool = True
    conv_steps: int = 200
    conv_batch: int = 4
    dense: bool = True
    sparse: bool = True
    sparse_neurons: int = 1_000_000
    sparse_fan: int = 100
    sparse_steps: int = 50
    sparse_vth: int = 4000

    @classmethod
    def quick(cls, **overrides) -> "BenchConfig":
        """Short runs for CI and tests: 200 steps, batch 16, one repeat, no 10k network,
        no start-up, conv or sparse section."""
        base = dict(steps=200, batch=16, large=False, large_steps=100, large_lava_steps=50,
                    repeats=1, startup=False, conv=False, sparse=False)
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)

    def check(self) -> None:
        for name, lo in (("steps", 10), ("batch", 1), ("large_steps", 10),
                         ("large_lava_steps", 10), ("repeats", 1), ("conv_steps", 10),
                         ("conv_batch", 1), ("sparse_neurons", 100), ("sparse_fan", 1),
                         ("sparse_steps", 10), ("sparse_vth", 1)):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < lo:
                raise ValidationError(f"bench: {name}={value!r} must be an integer >= {lo}")
        if self.large_lava_steps > self.large_steps:
            raise ValidationError(
                f"bench: large_lava_steps={self.large_lava_steps} must be at most "
                f"large_steps={self.large_steps}")
        if self.sparse_fan > self.sparse_neurons:
            raise ValidationError(
                f"bench: sparse_fan={self.sparse_fan} must be at most "
                f"sparse_neurons={self.sparse_neurons}")
        if self.sparse_vth > 131071:
            raise ValidationError(f"bench: sparse_vth={self.sparse_vth} must be at most 131071 "
                                  f"(a 17-bit threshold mantissa)")


def _layer(rng: np.random.Generator, name: str, n_out: int, n_in: int,
           in_rate: float) -> tuple:
    """A Dense + LIF pair whose neurons spike at moderate, varied rates.

    Weights are normal with mean ``m`` and standard deviation ``3 m`` (mixed
    sign, 8-bit mantissas, ``weight_exp = 0``), so the summed drive differs
    from neuron to neuron; ``vth`` is half the steady-state voltage the mean
    drive would give (``n_in * in_rate * m`` per step, scaled by Lava's
    ``<< 6`` and the two decays), so a typical neuron fires every few steps
    and many stay silent.
    """
    m = 12.0
    w = np.clip(np.rint(rng.normal(m, 3 * m, size=(n_out, n_in))), -256, 254).astype(np.int16)
    drive = max(n_in * in_rate * m, 1.0)
    u_ss = drive * 64 * 4096 / (_DU + 1)
    v_ss = u_ss * 4096 / _DV
    vth = int(np.clip(0.5 * v_ss / 64, 1, 131071))
    dense = ir.Dense(f"w_{name}", weight=w, weight_exp=0, num_weight_bits=8, sign_mode="mixed")
    lif = ir.LIFPopulation(name, (n_out,), du=_DU, dv=_DV, vth=vth, bias_mant=0, bias_exp=0)
    return dense, lif


def bench_network(sizes: Sequence[int], seed: int = 0, in_rate: float = 0.1,
                  hidden_rate: float = 0.1, profile="loihi2") -> ir.Network:
    """Input ``sizes[0]`` -> (Dense -> LIF ``sizes[i]``)... on ``profile`` (Loihi 2).

    ``in_rate`` is the input spike probability per step the thresholds are
    set for; ``hidden_rate`` the rate assumed for the layers after the first.
    The Lava side of the benchmark refuses a profile whose datapath Lava's
    fixed_pt models do not compute
    (:func:`neurohw.backends.lava.graph.check_lava_profile`).
    """
    rng = np.random.default_rng(seed)
    nodes: Dict[str, ir.Node] = {"in": ir.InputNode("in", (int(sizes[0]),))}
    edges = []
    last, rate = "in", in_rate
    for i, n in enumerate(sizes[1:]):
        dense, lif = _layer(rng, f"lif{i}", int(n), int(sizes[i]), rate)
        nodes[dense.name], nodes[lif.name] = dense, lif
        edges += [(last, dense.name), (dense.name, lif.name)]
        last, rate = lif.name, hidden_rate
    return ir.Network(nodes=nodes, edges=tuple(edges), profile=profile, dt_s=1e-3)


def bench_input(n_in: int, steps: int, batch: int, rate: float = 0.1,
                seed: int = 1) -> np.ndarray:
    """Poisson (Bernoulli per step) input spikes, int8 ``(batch, steps, n_in)``."""
    rng = np.random.default_rng(seed)
    return (rng.random((batch, steps, n_in)) < rate).astype(np.int8)


#: issue 13 item 5: the 1M-neuron conv net, one sample, steps/s and whole-process memory
CONV_TARGET_STEPS_PER_S = 100.0
CONV_TARGET_GIB = 2.0


def conv_network(seed: int = 0, profile="loihi2") -> ir.Network:
    """The 1M-neuron conv net: Input 2x128x128 -> Conv2d 3x3 (padding 1) -> LIF
    32x128x128 -> Conv2d 3x3 (padding 1) -> LIF 32x128x128 (1,048,576 LIF neurons;
    9,792 weights applied at every position, 160M multiply-adds per sample-step).
    Weights: mixed sign, 8-bit mantissas, exponent 0; thresholds set so that about
    a quarter of the hidden and a sixth of the output neurons spike per step on
    :func:`bench_input` spikes at rate 0.05 (the reports list the measured rates).
    """
    rng = np.random.default_rng(seed)
    c1 = ir.Conv2d("conv1", weight=rng.integers(-60, 121, size=(32, 2, 3, 3)), weight_exp=0,
                   input_shape=(2, 128, 128), padding=1)
    c2 = ir.Conv2d("conv2", weight=rng.integers(-60, 81, size=(32, 32, 3, 3)), weight_exp=0,
                   input_shape=(32, 128, 128), padding=1)
    nodes = [ir.InputNode("in", (2, 128, 128)), c1,
             ir.LIFPopulation("lif1", (32, 128, 128), du=_DU, dv=_DV, vth=300), c2,
             ir.LIFPopulation("lif2", (32, 128, 128), du=_DU, dv=_DV, vth=12000),
             ir.OutputNode("out", (32, 128, 128))]
    names = [n.name for n in nodes]
    return ir.Network({n.name: n for n in nodes}, list(zip(names[:-1], names[1:])), profile)


_CONV_CHILD = """
import json, resource, sys, time
from neurohw.bench import conv_network, bench_input
from neurohw.emulate import run
from neurohw.emulate.engine import numba_available
steps, batch, seed = (int(v) for v in sys.argv[1:4])
net = conv_network(seed)
out = {}
for b in (1, batch):
    x = bench_input(2 * 128 * 128, steps, b, rate=0.05, seed=seed + 3)
    run(net, x[:, :5], engine="numba" if numba_available() else "numpy")  # warm-up: kernels
    t0 = time.perf_counter()
    r = run(net, x)
    dt = time.perf_counter() - t0
    out[str(b)] = {"seconds": dt, "sample_steps_per_s": b * steps / dt,
                   "spike_rates": {k: float(v.mean()) for k, v in r.spikes.items()}}
    del r
out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(out))
"""


def measure_conv(steps: int = 200, batch: int = 4, seed: int = 0) -> dict:
    """Time the :func:`conv_network` in a fresh process (so its peak resident memory,
    spikes recorded, is the run's alone): ``steps`` steps on one sample and on
    ``batch`` samples (engine ``auto``, after a 5-step warm-up run), against
    :data:`CONV_TARGET_STEPS_PER_S` (single sample) and :data:`CONV_TARGET_GIB`
    (peak resident set of the whole process, Linux ``ru_maxrss``)."""
    out = _child(_CONV_CHILD, (steps, batch, seed), "conv", 1800.0)
    single = out["1"]
    gib = out["peak_rss_bytes"] / 2**30
    return {"network": "conv 2x128x128 -> 32x128x128 -> 32x128x128, 3x3", "neurons": 2 * 32 * 128 * 128,
            "steps": steps, "batch": batch, "single": single, "batched": out[str(batch)],
            "peak_rss_gib": gib, "target_steps_per_s": CONV_TARGET_STEPS_PER_S,
            "target_gib": CONV_TARGET_GIB,
            "meets_target": bool(single["sample_steps_per_s"] >= CONV_TARGET_STEPS_PER_S
                                 and gib <= CONV_TARGET_GIB)}


#: issue 13 item 4: a 1M-neuron, 100M-synapse recurrent sparse net, steps/s and
#: whole-process memory (the target is for that size: :data:`SPARSE_TARGET_NEURONS`
#: neurons with :data:`SPARSE_TARGET_FAN` synapses each)
SPARSE_TARGET_STEPS_PER_S = 5.0
SPARSE_TARGET_GIB = 6.0
SPARSE_TARGET_NEURONS = 1_000_000
SPARSE_TARGET_FAN = 100


def sparse_network(n: int, fan: int = 100, seed: int = 0, vth: int = 1000) -> ir.Network:
    """A recurrent population of ``n`` LIF neurons with ``fan`` random synapses each
    (an ``ir.Sparse`` ``pop -> pop``, ``n * fan`` synapses, columns drawn with
    repetition, weights +-1..40 with random signs, 8-bit mixed-sign mantissas,
    exponent 0), driven by per-neuron biases (mantissas 0..599, exponent 3) and one
    input through a second ``Sparse`` (weight 100 to every neuron).  ``du = 400``,
    ``dv = 200``, threshold mantissa ``vth``: 1000 gives a spike rate of about 21 %
    per step, 4000 about 5 %.  The CSR matrix is built directly (memory ~8 bytes
    per synapse), so 100M synapses fit in a few GiB.
    """
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    cols = rng.integers(0, n, size=(n, fan), dtype=np.int32)
    cols.sort(axis=1)  # CSR built directly: row i holds its FAN (sorted) columns
    data = (rng.integers(1, 41, size=n * fan, dtype=np.int32)
            * rng.choice(np.array([-1, 1], np.int32), n * fan))
    w = sp.csr_matrix((data, cols.reshape(-1), np.arange(0, n * fan + 1, fan, dtype=np.int64)),
                      shape=(n, n))
    del cols, data
    rec = ir.Sparse("rec", weight=w, weight_exp=0, num_weight_bits=8, sign_mode="mixed")
    del w
    drive = ir.Sparse("drive", weight=sp.csr_matrix(np.full((n, 1), 100, np.int32)))
    pop = ir.LIFPopulation("pop", (n,), du=400, dv=200, vth=vth,
                           bias_mant=rng.integers(0, 600, n), bias_exp=3)
    return ir.Network({"in": ir.InputNode("in", (1,)), "drive": drive, "pop": pop, "rec": rec},
                      [("in", "drive"), ("drive", "pop"), ("pop", "rec"), ("rec", "pop")],
                      "loihi2")


def sparse_steady_state(n: int, fan: int, steps: int, engine: str = "auto", vth: int = 1000,
                        seed: int = 0) -> dict:
    """Build :func:`sparse_network` and time it in this process: ``build_s`` (seconds to
    build the IR), ``first_run_s`` (a first 2-step run: loading numba and the kernels,
    preparing the column-wise copy of the matrix, which later runs reuse), and the
    steady state ``steps_per_s`` = (``steps`` - 2) / (time of ``steps`` steps - time of
    2 steps), both runs after the first.  Input: one Bernoulli(0.5) spike train.
    ``engine="auto"`` runs the engine ``auto`` picks for ``steps`` steps in all three.
    Also ``spike_rate`` (mean per neuron-step), ``engine_used`` (the engine that ran)
    and ``peak_rss_gib``, the peak resident memory of this whole process so far
    (Linux ``ru_maxrss``): meaningful in a fresh process (:func:`measure_sparse`).
    """
    import resource

    from .emulate import run
    from .emulate.engine import choose_engine

    t0 = time.perf_counter()
    net = sparse_network(n, fan, seed=seed, vth=vth)
    t_build = time.perf_counter() - t0
    if engine == "auto":  # the engine "auto" runs for STEPS steps, for all three runs
        engine = choose_engine(net, 1, steps)
    x = (np.random.default_rng(seed + 1).random((steps, 1)) < 0.5).astype(np.int8)
    t0 = time.perf_counter()
    run(net, x[:2], engine=engine)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    run(net, x[:2], engine=engine)
    t_two = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = run(net, x, engine=engine)
    t_all = time.perf_counter() - t0
    return {
        "neurons": n, "fan": fan, "synapses": int(net.num_synapses), "engine_used": engine,
        "steps": steps, "vth": vth, "build_s": t_build, "first_run_s": t_first,
        "steps_per_s": (steps - 2) / max(t_all - t_two, 1e-9),
        "spike_rate": float(r.spikes["pop"].mean()),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


_SPARSE_CHILD = """
import json, sys
from neurohw.bench import sparse_steady_state
n, fan, steps, vth, seed = (int(v) for v in sys.argv[1:6])
print(json.dumps(sparse_steady_state(n, fan, steps, sys.argv[6], vth, seed)))
"""


def _child(code: str, args: Sequence, what: str, timeout_s: float) -> dict:
    """Run ``python -c code args`` in a fresh process; its last stdout line, as JSON."""
    import json
    import subprocess
    import sys

    try:
        proc = subprocess.run([sys.executable, "-c", code, *map(str, args)],
                              capture_output=True, text=True, check=False, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"bench {what}: child process ran past {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        raise RuntimeError(f"bench {what}: child process failed: {tail[0][-300:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_sparse(neurons: int = SPARSE_TARGET_NEURONS, fan: int = SPARSE_TARGET_FAN,
                   steps: int = 50, vth: int = 4000, seed: int = 0, engine: str = "auto",
                   timeout_s: float = 1800.0) -> dict:
    """Time :func:`sparse_network` (``neurons`` x ``fan`` synapses, threshold mantissa
    ``vth``; 4000 gives ~5 % spikes per step) in a fresh process with
    :func:`sparse_steady_state`: steady-state steps/s of one sample and the peak
    resident memory of that whole process, against :data:`SPARSE_TARGET_STEPS_PER_S`
    and :data:`SPARSE_TARGET_GIB`.  ``meets_target`` is None unless the net is the
    target's size (1M neurons x 100 synapses).  Needs ~4.3 GiB and ~30-60 s at that
    size on 2 cores; a child running past ``timeout_s`` seconds is an error.
    """
    out = _child(_SPARSE_CHILD, (neurons, fan, steps, vth, seed, engine), "sparse", timeout_s)
    at_size = neurons == SPARSE_TARGET_NEURONS and fan == SPARSE_TARGET_FAN
    out.update({"network": f"recurrent ir.Sparse, {neurons:,} LIF x {fan} synapses",
                "target_steps_per_s": SPARSE_TARGET_STEPS_PER_S,
                "target_gib": SPARSE_TARGET_GIB, "target_size": at_size,
                "meets_target": (bool(out["steps_per_s"] >= SPARSE_TARGET_STEPS_PER_S
                                      and out["peak_rss_gib"] <= SPARSE_TARGET_GIB)
                                 if at_size else None)})
    return out


def machine_info() -> Dict[str, object]:
    """CPU model, core counts, OS, Python, numpy and Lava versions, load average, date (UTC)."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    try:
        from importlib.metadata import version

        lava = version("lava-nc")
    except Exception:
        lava = None
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu or "unknown",
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "lava": lava,
        "load_average": load,  # 1, 5, 15 min, at the start: other jobs slow both sides
    }


def _time_emulator(net: ir.Network, x: np.ndarray, progress: bool, label: str,
                   repeats: int = 1):
    """Best (shortest) of ``repeats`` timed runs after a short warm-up; (seconds, run)."""
    from .emulate import run as emulate

    from .emulate.engine import numba_available

    # warm-up: imports, first allocations; loads the compiled kernels (serial and
    # parallel) so that "auto" measures the steady state, not the one-off load; then
    # one untimed run of the whole input: it loads the kernels a long run probes (both
    # chain loops, serial and parallel) and has the kernel find memory for a recording
    # of this size once (right after Lava's runs, the first runs' fresh pages cost up to
    # ~100 ms of system time each on the test VM: docs/performance.md)
    warm = "numba" if numba_available() else "numpy"
    emulate(net, x[:1, :10], engine=warm)
    emulate(net, x[:, :10], engine=warm)
    emulate(net, x)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = emulate(net, x, progress=progress, source=label)
        best = min(best, time.perf_counter() - t0)
    return best, out


def _lava_split_run(net: ir.Network, x: np.ndarray) -> tuple:
    """One Lava run timed in phases; returns (startup_s, steady_s, readout_s, total_s, spikes).

    The process graph is built exactly as :func:`~neurohw.backends.lava.run_lava`
    builds it (``build_processes`` plus a spike ``Monitor`` per population);
    ``startup_s`` covers building, compiling and the first step
    (``run(RunSteps(1))``), ``steady_s`` the remaining ``T - 1`` steps in one
    ``run`` call, ``readout_s`` reading the monitors and stopping (Lava's
    ``get_var`` sends one message per recorded value, so this grows with
    steps x neurons), ``total_s`` everything.
    """
    from .backends.lava import import_lava
    from .backends.lava._builder import attach_monitors, read_monitors
    from .backends.lava.runner import build_processes

    t0 = time.perf_counter()
    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    T = x.shape[0]
    in_name = next(iter(net.of_type(ir.InputNode)))
    procs = build_processes(net, {in_name: x})
    monitors = attach_monitors({k: procs[k] for k in net.populations}, ("spikes",), T)
    anchor = monitors[0][2]
    cfg = Loihi2SimCfg(select_tag="fixed_pt")
    try:
        anchor.run(condition=RunSteps(num_steps=1), run_cfg=cfg)
        t1 = time.perf_counter()
        anchor.run(condition=RunSteps(num_steps=T - 1), run_cfg=cfg)
        t2 = time.perf_counter()
        spikes = {name: arr for (name, _), arr in read_monitors(monitors, T).items()}
    finally:
        anchor.stop()
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2, t3 - t0, spikes


class _Spikes:
    """Spikes by population, ``(T, n)`` each, as a Lava run holds them."""

    def __init__(self, spikes: Dict[str, np.ndarray]):
        self.spikes = spikes


def _time_lava(net: ir.Network, x: np.ndarray, log: Callable[[str], None],
               repeats: int = 1, end_to_end: bool = True) -> tuple:
    """Time Lava on ``x`` (``(T, n_in)``): startup and steady state (best of
    ``repeats`` phase-timed runs), and, with ``end_to_end``, one
    :func:`~neurohw.backends.lava.run_lava` call.  Returns (stats, runs), where
    ``runs`` are the spike records to check (each with a ``spikes`` dict)."""
    T = x.shape[0]
    startup = steady = readout = float("inf")
    runs = []
    total = None
    for r in range(repeats):
        log(f"  lava: {T} steps, phase-timed run {r + 1}/{repeats}...")
        a, b, c, d, spikes = _lava_split_run(net, x)
        startup, steady, readout = min(startup, a), min(steady, b), min(readout, c)
        total = d if total is None else min(total, d)
        runs.append(_Spikes(spikes))
    if end_to_end:
        from .backends.lava import run_lava

        log(f"  lava: {T} steps, run_lava (end to end)...")
        t0 = time.perf_counter()
        runs.append(run_lava(net, x))
        total = time.perf_counter() - t0
    step_s = steady / (T - 1)
    stats = {
        "steps": T,
        "startup_s": startup,
        "step_s": step_s,
        "steps_per_s": 1.0 / step_s,
        "readout_s": readout,
        "end_to_end_s": total,
        "end_to_end_via": "run_lava" if end_to_end else "phase-timed run",
        "end_to_end_steps_per_s": T / total,
        "repeats": repeats,
    }
    return stats, runs


def _checks(emu, runs, sample: int, steps: int) -> dict:
    """Bit-exactness of the emulator's sample ``sample`` against every Lava run."""
    results = [_spikes_equal(emu, r, sample, steps) for r in runs]
    out = dict(results[0])
    out["bit_exact"] = all(r["bit_exact"] for r in results)
    out["mismatched"] = sorted({m for r in results for m in r["mismatched"]})
    out["lava_runs_compared"] = len(results)
    return out


def _check_row0_is_single(check: dict, batch_run, single_run, steps: int) -> None:
    """Add to ``check`` whether row 0 of ``batch_run`` has the spikes of ``single_run``
    (the same input) over ``steps`` steps; a mismatch makes the case not bit-exact."""
    single = _spikes_equal(batch_run, _Spikes({k: v[0] for k, v in single_run.spikes.items()}),
                           0, steps)
    check["batch_row0_equals_single_run"] = single["bit_exact"]
    if not single["bit_exact"]:
        check["bit_exact"] = False
        check["mismatched"].append("batch row 0 vs single-sample run")


def _spikes_equal(emu, lava, sample: int, steps: int) -> dict:
    """Compare every population's spikes of emulator sample ``sample`` with Lava."""
    mismatched = []
    compared = 0
    for name, arr in lava.spikes.items():
        want = np.asarray(arr[:steps], np.int64)
        got = emu.spikes[name][sample, :steps].astype(np.int64)
        compared += want.size
        if not np.array_equal(want, got):
            mismatched.append(name)
    return {"bit_exact": not mismatched, "mismatched": mismatched, "values_compared": compared,
            "steps_compared": steps}


def _rates(emu) -> Dict[str, float]:
    return {k: float(v.mean()) for k, v in emu.spikes.items()}


def _case(name: str, net_desc: str, neurons: int, steps: int, batch: int, emu_s: float,
          emu, lava: Optional[dict], lava_speed: Optional[float], check: Optional[dict],
          note: str = "") -> dict:
    emu_speed = steps * batch / emu_s
    ratio = emu_speed / lava_speed if lava_speed else None
    target = TARGETS[name]
    case = {
        "case": name,
        "network": net_desc,
        "neurons": neurons,
        "steps": steps,
        "batch": batch,
        "emulator": {"seconds": emu_s, "steps_per_s": steps / emu_s,
                     "sample_steps_per_s": emu_speed},
        "lava": lava,
        "ratio": ratio,
        "target": target,
        "meets_target": None if (ratio is None or target is None) else bool(ratio >= target),
        "check": check,
        "spike_rates": _rates(emu),
        "note": note,
    }
    if lava and ratio is not None:
        case["ratio_end_to_end"] = emu_speed / lava["end_to_end_steps_per_s"]
    return case


def run_bench(config: Optional[BenchConfig] = None, progress: bool = False,
              log: Callable[[str], None] = lambda s: None) -> dict:
    """Run the benchmark described in the module docstring; returns a JSON-ready dict.

    ``log`` receives one line per phase (e.g. ``print``); ``progress`` shows
    tqdm bars over emulator steps.  The dict holds ``machine`` (see
    :func:`machine_info`), ``config`` and ``cases`` (one dict per case with
    ``emulator`` and ``lava`` timings in seconds and steps/s, ``ratio``,
    ``target``, ``meets_target``, ``check`` -- the bit-exactness of the
    spikes -- and the mean ``spike_rates`` per population).
    """
    cfg = config or BenchConfig()
    cfg.check()
    if not cfg.skip_lava:
        from .backends.lava import import_lava

        import_lava()  # fail early, with the install hint, if Lava is missing
    report = {"machine": machine_info(), "config": dict(cfg.__dict__), "cases": []}
    cases: List[dict] = report["cases"]

    sizes = (100, 100, 10)
    net = bench_network(sizes, seed=cfg.seed)
    x = bench_input(sizes[0], cfg.steps, cfg.batch, seed=cfg.seed + 1)
    desc = "100-100-10 LIF"

    log(f"[1] single sample, {desc}, {cfg.steps} steps")
    emu_s, emu1 = _time_emulator(net, x[:1], progress, "single", cfg.repeats)
    # both emulator cases before Lava's runs, as for the dense cases: right after
    # Lava's processes the first emulator runs were perturbed (both threads left on
    # one CPU for ~0.1 s; docs/performance.md)
    log(f"[2] batch of {cfg.batch}, {desc}, {cfg.steps} steps")
    emu_sb, emub = _time_emulator(net, x, progress, "batch", cfg.repeats)
    lava1, check1 = None, None
    if not cfg.skip_lava:
        lava1, lruns = _time_lava(net, x[0], log, cfg.repeats)
        check1 = _checks(emu1, lruns, 0, cfg.steps)
    cases.append(_case("single", desc, 110, cfg.steps, 1, emu_s, emu1, lava1,
                       lava1 and lava1["steps_per_s"], check1))

    check2 = None
    if not cfg.skip_lava:
        # sample 0 of the batch is the single-sample input Lava ran in case 1
        check2 = _checks(emub, lruns, 0, cfg.steps)
        _check_row0_is_single(check2, emub, emu1, cfg.steps)
    cases.append(_case("batch", desc, 110, cfg.steps, cfg.batch, emu_sb, emub, lava1,
                       lava1 and lava1["steps_per_s"], check2,
                       note="Lava runs one sample at a time: its sample-steps/s is its "
                            "single-sample steps/s from case 1 (not re-run per sample)"))

    xd = None
    if cfg.dense:
        xd = bench_input(sizes[0], cfg.steps, cfg.batch, rate=DENSE_INPUT_RATE, seed=cfg.seed + 4)
        ddesc = f"{desc}, input rate {DENSE_INPUT_RATE:g}"
        log(f"[3] dense activity: {ddesc}, 1 and {cfg.batch} samples, {cfg.steps} steps")
        emu_s1, emud1 = _time_emulator(net, xd[:1], progress, "dense_single", cfg.repeats)
        emu_sb, emudb = _time_emulator(net, xd, progress, "dense_batch", cfg.repeats)
        lavad = checkd1 = checkdb = None
        if not cfg.skip_lava:
            # Lava's step time on the active net: sample 0 of the dense input
            lavad, lrunsd = _time_lava(net, xd[0], log, cfg.repeats, end_to_end=False)
            checkd1 = _checks(emud1, lrunsd, 0, cfg.steps)
            checkdb = _checks(emudb, lrunsd, 0, cfg.steps)
            _check_row0_is_single(checkdb, emudb, emud1, cfg.steps)
        dnote = (f"same net as single/batch driven at input rate {DENSE_INPUT_RATE:g}; Lava's "
                 f"step time measured on sample 0 of that input (phase-timed, no run_lava)")
        cases.append(_case("dense_single", ddesc, 110, cfg.steps, 1, emu_s1, emud1, lavad,
                           lavad and lavad["steps_per_s"], checkd1, note=dnote))
        cases.append(_case("dense_batch", ddesc, 110, cfg.steps, cfg.batch, emu_sb, emudb,
                           lavad, lavad and lavad["steps_per_s"], checkdb,
                           note="Lava's sample-steps/s is its steps/s on sample 0 of the dense "
                                "input (one sample at a time, as in batch)"))
        del emud1, emudb

    if cfg.gemm:
        gf = gemm_gflops()
        bound = gemm_bound(sizes, gf)
        report["gemm"] = {"gflops_float32": gf, "bound_sample_steps_per_s": bound,
                          "network": desc}
        for c in cases:
            c["fraction_of_gemm_bound"] = c["emulator"]["sample_steps_per_s"] / bound
        log(f"  float32 GEMM: {gf:.1f} GFLOP/s -> {bound:,.0f} sample-steps/s bound on {desc}")
    if cfg.startup:
        log("[3a] start-up: whole neurohw emulate processes, 1 x 100 steps")
        report["startup"] = measure_startup(net, x[0, :100], max(2, cfg.repeats))
    if cfg.under_load:
        log(f"[3b] under load: one CPU-bound process beside the emulator, {cfg.repeats} rounds")
        loads = {"single": x[:1], "batch": x}
        if xd is not None:
            loads["dense_batch"] = xd
        report["under_load"] = measure_under_load(net, loads, max(2, cfg.repeats), log)

    if cfg.large:
        sizes = (1000, 5000, 5000)
        desc = "1000-5000-5000 LIF"
        net = bench_network(sizes, seed=cfg.seed, in_rate=0.05)
        x = bench_input(sizes[0], cfg.large_steps, 1, rate=0.05, seed=cfg.seed + 2)
        log(f"[4] 10k neurons, {desc}, emulator {cfg.large_steps} steps, "
            f"Lava {cfg.large_lava_steps} steps")
        emu_s, emul = _time_emulator(net, x, progress, "large")
        lava3, check3 = None, None
        if not cfg.skip_lava:
            lava3, lruns = _time_lava(net, x[0, :cfg.large_lava_steps], log, 1,
                                      end_to_end=False)
            check3 = _checks(emul, lruns, 0, cfg.large_lava_steps)
        note = (f"Lava ran {cfg.large_lava_steps} steps (one phase-timed run), "
                f"the emulator {cfg.large_steps}; spikes compared over Lava's steps")
        cases.append(_case("large", desc, 10000, cfg.large_steps, 1, emu_s, emul, lava3,
                           lava3 and lava3["steps_per_s"], check3, note=note))
    else:
        log("[4] 10k-neuron network skipped")
    if cfg.conv:
        log(f"[5] 1M-neuron conv net, {cfg.conv_steps} steps, 1 and {cfg.conv_batch} samples "
            f"(fresh process)")
        report["conv"] = _section(lambda: measure_conv(cfg.conv_steps, cfg.conv_batch,
                                                       cfg.seed), log)
    if cfg.sparse:
        log(f"[6] sparse synapses: recurrent {cfg.sparse_neurons:,} neurons x {cfg.sparse_fan} "
            f"synapses, {cfg.sparse_steps} steps (fresh process)")
        report["sparse"] = _section(lambda: measure_sparse(
            cfg.sparse_neurons, cfg.sparse_fan, cfg.sparse_steps, cfg.sparse_vth, cfg.seed), log)
    report["sections_failed"] = sorted(k for k in ("conv", "sparse")
                                       if isinstance(report.get(k), dict) and "error" in report[k])
    report["all_bit_exact"] = (None if cfg.skip_lava else
                               all(c["check"]["bit_exact"] for c in cases))
    return report


def _section(measure: Callable[[], dict], log: Callable[[str], None]) -> dict:
    """``measure()``, or ``{"error": one line}`` when its child process failed, so that the
    other sections' numbers are still reported (the CLI then exits with status 1)."""
    try:
        return measure()
    except RuntimeError as exc:
        log(f"  {exc}")
        return {"error": str(exc)}


def gemm_gflops(n: int = 512, repeats: int = 5) -> float:
    """The machine's float32 matrix-product speed in GFLOP/s: the best of ``repeats``
    ``(n, n) @ (n, n)`` products (2 n^3 flops each) with BLAS's default threads."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    a @ b  # warm-up: BLAS threads, pages
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best / 1e9


def gemm_bound(sizes: Sequence[int], gflops: float) -> float:
    """Sample-steps/s a dense float32 GEMM at ``gflops`` GFLOP/s would allow for a
    ``sizes`` Dense chain: 2 flops per synapse per sample-step (multiply and add),
    nothing else counted (LIF updates, spikes and recording are free in this bound)."""
    synapses = sum(int(a) * int(b) for a, b in zip(sizes[:-1], sizes[1:]))
    return gflops * 1e9 / (2.0 * synapses)


#: whole-process target for a small ``neurohw emulate`` (issue 13), seconds
STARTUP_TARGET_S = 0.4


def measure_startup(net: ir.Network, x: np.ndarray, repeats: int = 3) -> dict:
    """Wall-clock seconds of whole ``python -m neurohw emulate`` processes on ``net``
    and input ``x`` (``(T, n)``), best of ``repeats``, against :data:`STARTUP_TARGET_S`;
    also the best of ``python -c pass`` (the interpreter alone) for scale."""
    import subprocess
    import sys
    import tempfile

    from .nirio import write_network

    with tempfile.TemporaryDirectory(prefix="neurohw-bench-") as d:
        model, xin, out = f"{d}/m.nir", f"{d}/x.npy", f"{d}/run.npz"
        write_network(net, model)
        np.save(xin, x)
        cmds = {"emulate": [sys.executable, "-m", "neurohw", "emulate", model, "--input", xin,
                            "--out", out],
                "python": [sys.executable, "-c", "pass"]}
        best = {k: float("inf") for k in cmds}
        for _ in range(repeats):
            for k, cmd in cmds.items():
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                best[k] = min(best[k], time.perf_counter() - t0)
    return {"steps": int(x.shape[0]), "seconds": best["emulate"],
            "python_seconds": best["python"], "target_s": STARTUP_TARGET_S,
            "meets_target": bool(best["emulate"] <= STARTUP_TARGET_S)}


def _spinner():
    """Start one CPU-bound process (``while True: pass``) and let it get going."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    return proc


def measure_under_load(net: ir.Network, inputs: Dict[str, np.ndarray], repeats: int = 3,
                       log: Callable[[str], None] = lambda s: None) -> dict:
    """Emulator speed on each input of ``inputs`` (name -> ``(B, T, n)``), quiet and with
    one CPU-bound process (started and stopped here) running beside it.

    Quiet and loaded runs alternate, ``repeats`` times each, and the best of each
    counts, so a change in the machine's other load hits both alike.  Returns per
    name ``quiet`` and ``loaded`` sample-steps/s and ``ratio`` = loaded / quiet
    (target: at least :data:`LOAD_TARGET`).
    """
    from .emulate import run as emulate

    best = {k: {"quiet": float("inf"), "loaded": float("inf")} for k in inputs}
    for r in range(repeats):
        for mode in ("quiet", "loaded"):
            proc = _spinner() if mode == "loaded" else None
            try:
                for k, x in inputs.items():
                    t0 = time.perf_counter()
                    emulate(net, x)
                    best[k][mode] = min(best[k][mode], time.perf_counter() - t0)
            finally:
                if proc is not None:
                    proc.kill()
                    proc.wait()
        log(f"  under load: round {r + 1}/{repeats}")
    out = {}
    for k, x in inputs.items():
        work = x.shape[0] * x.shape[1]
        q, ld = work / best[k]["quiet"], work / best[k]["loaded"]
        out[k] = {"batch": int(x.shape[0]), "steps": int(x.shape[1]), "quiet": q,
                  "loaded": ld, "ratio": ld / q, "target": LOAD_TARGET,
                  "meets_target": bool(ld / q >= LOAD_TARGET)}
    return out


def _fmt(x: Optional[float], digits: int = 0) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:,.{max(digits, 2 if x < 10 else 1)}f}"


def format_markdown(report: dict) -> str:
    """The report as a markdown table (plus the machine line), one row per case."""
    m = report["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['usable_cores']} usable core(s) of {m['cores']}; "
        f"Python {m['python']}, numpy {m['numpy']}, lava-nc {m['lava']}; {m['date']}; "
        f"load average at start {m.get('load_average')}",
        "",
        "| case | network | batch x steps | emulator | Lava steady state | Lava startup / readout "
        "| ratio (target) | end-to-end ratio | spikes bit-exact |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in report["cases"]:
        e, lv = c["emulator"], c["lava"]
        unit = "sample-steps/s" if c["batch"] > 1 else "steps/s"
        emu = f"{_fmt(e['sample_steps_per_s'])} {unit}"
        if lv:
            lava = f"{_fmt(lv['steps_per_s'])} steps/s ({lv['step_s'] * 1e3:.3f} ms/step)"
            startup = f"{lv['startup_s']:.2f} s / {lv['readout_s']:.2f} s"
        else:
            lava = startup = "not run"
        target = c["target"]
        ratio = _fmt(c["ratio"], 1) + "x" if c["ratio"] is not None else "-"
        if target is not None:
            ok = {True: "met", False: "MISSED", None: "n/a"}[c["meets_target"]]
            ratio += f" (>= {target:,.0f}x: {ok})"
        e2e = _fmt(c.get("ratio_end_to_end"), 1) + "x" if c.get("ratio_end_to_end") else "-"
        chk = c["check"]
        if chk is None:
            exact = "not checked"
        else:
            exact = (f"yes ({chk['steps_compared']} steps)" if chk["bit_exact"]
                     else f"NO: {', '.join(chk['mismatched'])}")
        lines.append(f"| {c['case']} | {c['network']} | {c['batch']} x {c['steps']} | {emu} "
                     f"| {lava} | {startup} | {ratio} | {e2e} | {exact} |")
    notes = [f"- {c['case']}: {c['note']}" for c in report["cases"] if c["note"]]
    if notes:
        lines += [""] + notes
    rates = [f"{c['case']} " + ", ".join(f"{k} {v:.2f}" for k, v in c["spike_rates"].items())
             for c in report["cases"] if c.get("spike_rates")]
    if rates:
        lines += ["", "spike rates per neuron-step: " + "; ".join(rates)]
    g = report.get("gemm")
    if g:
        lines += ["", f"float32 GEMM: {g['gflops_float32']:.1f} GFLOP/s, a bound of "
                      f"{_fmt(g['bound_sample_steps_per_s'])} sample-steps/s on {g['network']} "
                      f"(2 flops per synapse per sample-step); reached: " + ", ".join(
                          f"{c['case']} {c['fraction_of_gemm_bound'] * 100:.1f} %"
                          for c in report["cases"] if "fraction_of_gemm_bound" in c)]
    st = report.get("startup")
    if st:
        ok = "met" if st["meets_target"] else "MISSED"
        lines += ["", f"start-up: a whole `neurohw emulate` of {st['steps']} steps took "
                      f"{st['seconds']:.3f} s (<= {st['target_s']} s: {ok}; the interpreter "
                      f"alone {st['python_seconds']:.3f} s)"]
    ul = report.get("under_load")
    if ul:
        lines += ["", "| under load (1 CPU-bound process beside) | quiet | loaded | loaded / quiet "
                      "(target) |", "|---|---|---|---|"]
        for k, r in ul.items():
            ok = "met" if r["meets_target"] else "MISSED"
            lines.append(f"| {k} ({r['batch']} x {r['steps']}) | {_fmt(r['quiet'])} | "
                         f"{_fmt(r['loaded'])} | {r['ratio']:.2f} (>= {r['target']:.2f}: {ok}) |")
    for k in report.get("sections_failed", ()):
        lines += ["", f"{k} section FAILED: {report[k]['error']}"]
    cv = report.get("conv")
    if cv and "error" not in cv:
        ok = "met" if cv["meets_target"] else "MISSED"
        rates = ", ".join(f"{k} {v:.2f}" for k, v in cv["single"]["spike_rates"].items())
        lines += ["", f"| 1M-neuron conv ({cv['network']}) | steps | speed | peak memory "
                      f"| target |", "|---|---|---|---|---|",
                  f"| 1 sample | {cv['steps']} | {_fmt(cv['single']['sample_steps_per_s'])} "
                  f"steps/s | {cv['peak_rss_gib']:.2f} GiB (whole process) | "
                  f">= {cv['target_steps_per_s']:.0f} steps/s in <= {cv['target_gib']:.0f} GiB: "
                  f"{ok} |",
                  f"| batch {cv['batch']} | {cv['steps']} | "
                  f"{_fmt(cv['batched']['sample_steps_per_s'])} sample-steps/s | | - |",
                  "", f"conv spike rates per step (1 sample): {rates}"]
    sp = report.get("sparse")
    if sp and "error" not in sp:
        if sp["target_size"]:
            ok = "met" if sp["meets_target"] else "MISSED"
        else:
            ok = (f"n/a, the target is for {SPARSE_TARGET_NEURONS:,} neurons x "
                  f"{SPARSE_TARGET_FAN} synapses")
        lines += ["", f"| sparse synapses ({sp['network']}) | synapses | steps | spike rate "
                      f"| speed (steady state) | peak memory | target |",
                  "|---|---|---|---|---|---|---|",
                  f"| 1 sample, engine {sp['engine_used']} | {sp['synapses']:,} | {sp['steps']} "
                  f"| {sp['spike_rate'] * 100:.1f} % | {_fmt(sp['steps_per_s'], 1)} steps/s "
                  f"| {sp['peak_rss_gib']:.2f} GiB (whole process) | >= "
                  f"{sp['target_steps_per_s']:.0f} steps/s in <= {sp['target_gib']:.0f} GiB: "
                  f"{ok} |",
                  "", f"sparse: building the IR took {sp['build_s']:.1f} s, the first 2-step "
                      f"run {sp['first_run_s']:.1f} s (loading the kernels, the column-wise "
                      f"copy of the matrix)"]
    return "\n".join(lines) + "\n"


def write_report(report: dict, json_path=None, markdown_path=None) -> None:
    """Write the report as JSON and/or the markdown table, each atomically."""
    import json

    from .fileio import atomic_write

    def _text(text):
        def write(tmp):
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
        return write

    if json_path is not None:
        atomic_write(json_path, _text(json.dumps(report, indent=2) + "\n"))
    if markdown_path is not None:
        atomic_write(markdown_path, _text(format_markdown(report)))
