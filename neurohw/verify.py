"""Emulator vs a reference simulator: bit-exact comparison and the first divergence.

:func:`verify_against_lava` runs the emulator on a batch and Lava's
``fixed_pt`` simulator once per sample; :func:`verify_against_nengo_loihi`
does the same with nengo-loihi 1.1.0's Loihi 1 emulator (``loihi1`` profile,
:mod:`neurohw.backends.nengo_loihi`).  :func:`compare` then looks for the
earliest step at which any recorded variable differs and reports it with
the node, sample, neuron, variable, expected (reference) and got (emulator)
values, and the last step at which everything was equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional

import numpy as np

from . import ir
from .errors import ValidationError
from .emulate import RECORDABLE, EmulatorRun, prepare_input, run

__all__ = ["Divergence", "VerifyResult", "compare", "verify_against_lava",
           "verify_against_nengo_loihi", "REFERENCES"]

REFERENCES = ("lava", "nengo-loihi")
"""The reference simulators ``verify`` compares the emulator with."""


@dataclass(frozen=True)
class Divergence:
    """The first mismatch: step (0-based row), node, sample, neuron, variable, values;
    ``reference`` names the simulator that gave ``expected``."""

    step: int
    node: str
    sample: int
    neuron: int
    variable: str
    expected: int
    got: int
    reference: str = "Lava"

    @property
    def last_equal_step(self) -> Optional[int]:
        """The last step at which every recorded value agreed (None if none did)."""
        return self.step - 1 if self.step > 0 else None

    def describe(self) -> str:
        last = self.last_equal_step
        return (f"first divergence at step {self.step}: node '{self.node}', sample {self.sample}, "
                f"neuron {self.neuron}, {self.variable}: expected {self.expected} ({self.reference}), "
                f"got {self.got} (emulator); last equal step: "
                f"{'none' if last is None else last}")


@dataclass
class VerifyResult:
    """Outcome of a comparison: ``bit_exact`` or the first :class:`Divergence`."""

    bit_exact: bool
    num_steps: int
    batch_size: int
    compared: Dict[str, int] = field(default_factory=dict)  # "node.var" -> values compared
    divergence: Optional[Divergence] = None
    spike_counts: Dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        if self.bit_exact:
            total = sum(self.compared.values())
            spikes = ", ".join(f"{k} {v}" for k, v in self.spike_counts.items())
            return (f"bit-exact: {self.batch_size} sample(s) x {self.num_steps} steps, "
                    f"{len(self.compared)} recorded arrays, {total} values compared; "
                    f"spikes: {spikes}")
        return self.divergence.describe()


def compare(expected: Dict[str, Dict[str, np.ndarray]], got: EmulatorRun,
            variables: Iterable[str] = RECORDABLE, reference: str = "Lava") -> VerifyResult:
    """Compare ``expected[var][node]`` arrays ``(B, T, n)`` with an emulator run.

    ``reference`` names where ``expected`` came from (in a divergence's text).

    The divergence reported is the one at the smallest step; ties are broken
    by variable order (spikes, v, u), then node order, sample, neuron.
    """
    best: Optional[Divergence] = None
    compared: Dict[str, int] = {}
    for var in variables:
        for node, want in expected.get(var, {}).items():
            have = getattr(got, var)[node]
            want = np.asarray(want)
            compared[f"{node}.{var}"] = int(want.size)
            diff = want.astype(np.int64) != have.astype(np.int64)
            if not diff.any():
                continue
            b, t, i = (int(v) for v in np.argwhere(diff.transpose(1, 0, 2))[0][[1, 0, 2]])
            # argwhere on (T, B, n) gives the earliest step first
            if best is None or t < best.step:
                best = Divergence(t, node, b, i, var, int(want[b, t, i]), int(have[b, t, i]),
                                  reference)
    counts = {k: int(v.sum()) for k, v in got.spikes.items()}
    return VerifyResult(best is None, got.num_steps, got.batch_size, compared, best, counts)


def verify_against_lava(net: ir.Network, x, record: Iterable[str] = RECORDABLE,
                        progress: bool = False, source: str = "input") -> VerifyResult:
    """Run the emulator and Lava (``Loihi2SimCfg`` fixed_pt, one sample at a
    time) on the same input and compare every recorded variable.

    A profile whose datapath Lava's fixed_pt models do not compute (e.g. a
    ``generic`` profile with ``act_shift=5``) is refused with a
    :class:`~neurohw.errors.ValidationError` before anything runs
    (:func:`neurohw.backends.lava.graph.check_lava_profile`): such a
    comparison could only report a divergence that says nothing.
    """
    from .backends.lava import run_lava
    from .backends.lava.graph import lava_graph_spec

    lava_graph_spec(net)  # refuse what Lava cannot run before the emulator runs
    record = tuple(record)
    inputs = prepare_input(net, x, source)
    got = run(net, inputs, record=record, progress=progress, source=source)
    B = got.batch_size
    expected: Dict[str, Dict[str, List[np.ndarray]]] = {v: {} for v in record}
    samples = range(B)
    if progress:
        try:
            from tqdm import tqdm

            samples = tqdm(samples, total=B, unit="sample", desc="lava", leave=False)
        except ImportError:
            pass
    for b in samples:
        lava = run_lava(net, {k: v[b] for k, v in inputs.items()}, record=record)
        for var in record:
            for node, arr in getattr(lava, var).items():
                expected[var].setdefault(node, []).append(arr)
    stacked = {var: {node: np.stack(arrs) for node, arrs in d.items()}
               for var, d in expected.items()}
    return compare(stacked, got, record)


def verify_against_nengo_loihi(net: ir.Network, x, record: Iterable[str] = RECORDABLE,
                               progress: bool = False, source: str = "input") -> VerifyResult:
    """Run the emulator and nengo-loihi 1.1.0's ``EmulatorInterface`` (one sample at a
    time) on the same input and compare every recorded variable (spikes, ``v``, ``u``).

    An independent Loihi 1 reference for the ``loihi1`` profile
    (:mod:`neurohw.backends.nengo_loihi`, docs/loihi1.md).  What nengo-loihi's
    emulator cannot express (another datapath, delays, convolution, graded
    spikes, ELIF) is refused with a :class:`~neurohw.errors.ValidationError`
    naming the node or profile field, and a missing nengo-loihi with a
    :class:`~neurohw.errors.MissingDependencyError` giving the install
    command, both before the emulator runs.
    """
    from .backends.nengo_loihi import check_nengo_loihi, require_nengo_loihi, run_nengo_loihi

    check_nengo_loihi(net)
    require_nengo_loihi()
    record = tuple(record)
    unknown = [v for v in record if v not in RECORDABLE]
    if unknown:
        raise ValidationError(f"nengo-loihi records {', '.join(RECORDABLE)}, not {unknown[0]}")
    inputs = prepare_input(net, x, source)
    got = run(net, inputs, record=record, progress=progress, source=source)
    samples = range(got.batch_size)
    if progress:
        try:
            from tqdm import tqdm

            samples = tqdm(samples, total=got.batch_size, unit="sample", desc="nengo-loihi",
                           leave=False)
        except ImportError:
            pass
    expected: Dict[str, Dict[str, List[np.ndarray]]] = {v: {} for v in record}
    for b in samples:
        ref = run_nengo_loihi(net, {k: v[b] for k, v in inputs.items()})
        for pop, arrs in ref.items():
            for var in record:
                expected[var].setdefault(pop, []).append(arrs[var])
    stacked = {var: {node: np.stack(arrs) for node, arrs in d.items()}
               for var, d in expected.items()}
    return compare(stacked, got, record, reference="nengo-loihi")
