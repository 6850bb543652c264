"""An independent Loihi 1 reference: run a neurohw IR network in nengo-loihi 1.1.0's emulator.

nengo-loihi's ``EmulatorInterface`` (``nengo_loihi/emulator/interface.py``) is a
Loihi 1 emulator written by the nengo team; ``neurohw verify --against
nengo-loihi`` and ``tests/test_loihi1.py`` compare neurohw's ``loihi1`` engines
with it (docs/loihi1.md).  The network is rebuilt at nengo-loihi's block level
(``LoihiBlock``, ``Synapse``, ``Axon``, ``SpikeInput``) with the integers a
quantized file holds, turned into what nengo-loihi's chip model stores:

* ``decay_u = du``, ``decay_v = dv`` (the emulator adds the ``+1`` of ``du``);
* ``vth = vth_mant << vth_shift``; ``bias = bias_mant << bias_exp`` (a floor
  shift for a negative exponent);
* ``refract_delay``, ``vmin``, ``vmax`` as given;
* synapse weights from nengo-loihi's own ``discretize_weights`` applied to
  Lava's effective mantissas (``SynapseConfig`` with ``weight_exp`` and the
  sign mode's ``fanout_type``/``weight_bits``), so the per-synapse rounding
  for ``weight_exp <= -2`` is nengo-loihi's code, not neurohw's.

What nengo-loihi's emulator cannot express is refused by
:func:`check_nengo_loihi` in one line naming the node (or the profile) and
the reason: a profile other than Loihi 1's datapath, synaptic delays,
convolution and pooling, graded spikes, the ELIF table.  Spike traces are
accepted: they do not change spikes, ``u`` or ``v`` (what is compared) and are
not compared.  nengo-loihi is a test dependency (``requirements/test.txt``,
installed by ``make``); :func:`require_nengo_loihi` says how to install it.
"""

from __future__ import annotations

import types
import warnings
from typing import Dict, Mapping, Union

import numpy as np

from .. import ir
from ..errors import MissingDependencyError, ValidationError
from ..fixedpoint import effective_weights

__all__ = ["NENGO_LOIHI_DATAPATH", "INSTALL_HINT", "nengo_loihi_available",
           "require_nengo_loihi", "check_nengo_loihi", "synapse_weights", "run_nengo_loihi"]

# nengo-loihi's SynapseConfig.WEIGHT_BITS_MAP index of each real weight width
_WEIGHT_BITS_INDEX = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 8: 7}

NENGO_LOIHI_DATAPATH = {
    "semantics": ("loihi1", "the Loihi 1 rules of emulator/interface.py, docs/loihi1.md"),
    "dendrite_bits": (22, "builder/discretize.py Q_BITS = 21, plus sign"),
    "state_bits": (24, "builder/discretize.py U_BITS = 23, plus sign"),
    "decay_bits": (12, "builder/discretize.py decay_int: 12-bit decays"),
    "act_shift": (6, "discretize_weights folds a shift by 6 into every weight"),
    "weight_bits": (8, "block.py SynapseConfig: 8-bit weight mantissas"),
}
"""The profile fields nengo-loihi 1.1.0's emulator hard-codes: ``field -> (value, where)``."""

INSTALL_HINT = ("pip install nengo==4.1.0 nengo-loihi==1.1.0 (numpy<2; `make venv` installs "
                "them from requirements/test.txt)")


def nengo_loihi_available() -> bool:
    """True when ``nengo_loihi`` imports."""
    try:
        _import()
    except Exception:
        return False
    return True


def _import():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not been tested with your nengo version (4.1.0)"
        import nengo_loihi  # noqa: F401
        from nengo_loihi.emulator import interface  # noqa: F401
    return nengo_loihi


def require_nengo_loihi(what: str = "verify --against nengo-loihi") -> None:
    """Raise :class:`~neurohw.errors.MissingDependencyError` (one line, with the install
    command) unless nengo-loihi imports."""
    try:
        _import()
    except Exception as exc:
        raise MissingDependencyError(
            f"{what} needs nengo-loihi 1.1.0, which is not importable "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'}); "
            f"install it with: {INSTALL_HINT}") from None


def check_nengo_loihi(net: ir.Network) -> None:
    """Raise :class:`ValidationError` unless nengo-loihi's emulator can run ``net`` exactly.

    One line naming the profile field (and nengo-loihi's value) or the node and
    the reason.  Accepted: a profile with Loihi 1's datapath
    (:data:`NENGO_LOIHI_DATAPATH`), Input nodes with binary spikes, Dense and
    Sparse projections without delays from an Input or a LIF population
    (through Flatten) into a LIF population, LIF populations with refractory
    delays, ``vmin``/``vmax`` and spike traces, Flatten and Output nodes.
    """
    profile = net.profile
    for name, (value, where) in NENGO_LOIHI_DATAPATH.items():
        got = getattr(profile, name)
        if got != value:
            raise ValidationError(
                f"profile '{profile.name}': {name}={got!r}; nengo-loihi's emulator computes "
                f"{name}={value!r} ({where}); quantize with --profile loihi1 to compare with it")
    for name, node in net.nodes.items():
        where = f"node '{name}'"
        if isinstance(node, (ir.Conv2d, ir.SumPool2d)):
            raise ValidationError(
                f"{where}: {node.kind}; nengo-loihi's emulator is compared on Input -> "
                f"Dense/Sparse -> LIF networks only (no convolution or pooling blocks)")
        if isinstance(node, (ir.Dense, ir.Sparse)):
            delay = node.delay.data if isinstance(node, ir.Sparse) and node.delay is not None \
                else node.delay
            if delay is not None and np.any(np.asarray(delay) != 0):
                raise ValidationError(
                    f"{where}: synaptic delays (max {int(np.max(delay))} steps); nengo-loihi's "
                    f"emulator has no synaptic delays")
            if node.num_message_bits:
                raise ValidationError(
                    f"{where}: num_message_bits={node.num_message_bits} (graded spikes); "
                    f"nengo-loihi's emulator carries binary spikes only")
            if int(node.num_weight_bits) not in _WEIGHT_BITS_INDEX:
                raise ValidationError(
                    f"{where}: num_weight_bits={node.num_weight_bits}; nengo-loihi's "
                    f"SynapseConfig holds {', '.join(map(str, _WEIGHT_BITS_INDEX))} bits")
            if node.sign_mode == "mixed" and int(node.num_weight_bits) == 1:
                raise ValidationError(
                    f"{where}: num_weight_bits=1 with sign_mode 'mixed' (a sign bit only); "
                    f"nengo-loihi's discretize_weights has no magnitude bit to round to")
            dst = net.successors(name)
            if len(dst) != 1 or not isinstance(net.nodes[dst[0]], ir.LIFPopulation):
                kinds = ", ".join(f"{net.nodes[d].kind} '{d}'" for d in dst) or "nothing"
                raise ValidationError(
                    f"{where}: feeds {kinds}; a nengo-loihi Synapse feeds exactly one LIF "
                    f"population")
        if isinstance(node, ir.LIFPopulation):
            if node.is_elif:
                raise ValidationError(
                    f"{where}: ELIF (an exponential table added to v, docs/neuron-models.md); "
                    f"nengo-loihi's compartments have no such term")
            top = (1 << 31) - 1  # the emulator's compartment state is int32
            vth = int(node.vth.max(initial=0)) << profile.vth_shift
            bias = np.abs(_bias(node))
            if vth > top or (bias.size and int(bias.max()) > top):
                raise ValidationError(
                    f"{where}: vth << {profile.vth_shift} = {vth} or |bias| = "
                    f"{int(bias.max(initial=0))} exceeds nengo-loihi's int32 compartment state")
    for name in net.of_type(ir.OutputNode):
        src = net.through_flatten(net.predecessors(name)[0])
        if not isinstance(net.nodes[src], (ir.LIFPopulation, ir.InputNode)):
            raise ValidationError(
                f"node '{name}': reads {net.nodes[src].kind} '{src}'; nengo-loihi's emulator "
                f"probes LIF populations only")


def synapse_weights(node: Union[ir.Dense, ir.Sparse], profile) -> np.ndarray:
    """``(n_in, n_out)`` int32 weights a nengo-loihi ``Synapse`` adds to ``u`` per spike
    (``u`` units, the shift by 6 included), from nengo-loihi's ``discretize_weights``."""
    from nengo_loihi.block import SynapseConfig
    from nengo_loihi.builder.discretize import discretize_weights

    w = node.dense_weight() if isinstance(node, ir.Sparse) else node.weight
    w_eff = effective_weights(w, node.sign_mode, node.num_weight_bits, profile.weight_bits)
    cfg = SynapseConfig(weight_exp=int(node.weight_exp),
                        fanout_type=1 if node.sign_mode == "mixed" else 0,
                        weight_bits=_WEIGHT_BITS_INDEX[int(node.num_weight_bits)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Lost N extra bits in weight rounding"
        out = discretize_weights(cfg, w_eff.T.astype(np.float64), check_result=False)
    return np.ascontiguousarray(out, dtype=np.int32)


def _bias(pop: ir.LIFPopulation) -> np.ndarray:
    bm = pop.bias_mant.reshape(-1).astype(np.int64)
    be = pop.bias_exp.reshape(-1).astype(np.int64)
    return np.where(be >= 0, bm << np.maximum(be, 0), bm >> np.maximum(-be, 0))


def run_nengo_loihi(net: ir.Network, x: Union[np.ndarray, Mapping[str, np.ndarray]]
                    ) -> Dict[str, Dict[str, np.ndarray]]:
    """Run ``net`` on binary spikes in nengo-loihi's ``EmulatorInterface``, one sample.

    ``x`` is ``(T, n_in)`` for a network with one Input node, or a dict by Input
    name of ``(T, n)`` arrays (``n`` the Input's size, row-major).  Returns
    ``{pop: {"spikes", "u", "v"}}``, each ``(T, n)`` int64, row ``k`` read after
    emulator step ``k + 1`` (the row a nengo-loihi probe records, the row of
    :func:`neurohw.emulate.run`).  :func:`check_nengo_loihi` is called first.
    """
    check_nengo_loihi(net)
    require_nengo_loihi("run_nengo_loihi")
    from nengo_loihi.block import Axon, LoihiBlock, Synapse
    from nengo_loihi.emulator.interface import EmulatorInterface
    from nengo_loihi.inputs import SpikeInput

    in_nodes = net.of_type(ir.InputNode)
    if not isinstance(x, Mapping):
        if len(in_nodes) != 1:
            raise ValidationError(f"network has {len(in_nodes)} Input nodes; give inputs by name")
        x = {next(iter(in_nodes)): x}
    xs = {k: np.asarray(x[k]).reshape(np.asarray(x[k]).shape[0], -1) for k in in_nodes}
    T = next(iter(xs.values())).shape[0]
    for k, arr in xs.items():
        n = int(np.prod(in_nodes[k].shape))
        if arr.shape != (T, n):
            raise ValidationError(f"input for node '{k}' has shape {arr.shape}, expected ({T}, {n})")
        if arr.size and (arr.min() < 0 or arr.max() > 1):
            raise ValidationError(f"input for node '{k}': values {int(arr.min())}..{int(arr.max())};"
                                  f" nengo-loihi's SpikeInput carries binary spikes (0/1)")

    profile = net.profile
    blocks: Dict[str, LoihiBlock] = {}
    for name, pop in net.populations.items():
        b = LoihiBlock(pop.size, label=name)
        c = b.compartment
        c.decay_u = pop.du.reshape(-1).astype(np.int32)
        c.decay_v = pop.dv.reshape(-1).astype(np.int32)
        c.vth = (pop.vth.reshape(-1).astype(np.int64) << profile.vth_shift).astype(np.int32)
        c.bias = _bias(pop).astype(np.int32)
        c.refract_delay = pop.refract_delay.reshape(-1).astype(np.int32)
        c.vmin, c.vmax = pop.v_limits(profile)
        c.scale_u = c.scale_v = False
        blocks[name] = b
    inputs = {k: SpikeInput(int(np.prod(node.shape)), label=k) for k, node in in_nodes.items()}
    for name, node in {**net.of_type(ir.Dense), **net.of_type(ir.Sparse)}.items():
        src = net.spike_source(name)
        (dst,) = net.successors(name)
        n_in = int(node.weight.shape[1])
        syn = Synapse(n_in, label=name)
        syn.set_weights(np.zeros((n_in, int(node.weight.shape[0])), np.float32))
        w = synapse_weights(node, profile)
        syn.weights = [w[i:i + 1].copy() for i in range(w.shape[0])]
        blocks[dst].add_synapse(syn)
        axon = Axon(n_in, label=name)
        axon.target = syn
        (inputs[src] if src in inputs else blocks[src]).add_axon(axon)
    model = types.SimpleNamespace(blocks=list(blocks.values()), inputs=list(inputs.values()),
                                  probes=[], dt=float(net.dt_s))
    for k, arr in xs.items():
        for r in range(T):
            inputs[k].add_spikes(r + 1, np.flatnonzero(arr[r]).tolist())
    out = {k: {v: np.zeros((T, p.size), np.int64) for v in ("spikes", "u", "v")}
           for k, p in net.populations.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # overflow warnings (EmulatorInterface.strict = False)
        emu = EmulatorInterface(model, seed=0)
        try:
            slices = emu.block_info.slices
            for t in range(T):
                emu.step()
                for k, b in blocks.items():
                    sl = slices[b]
                    out[k]["spikes"][t] = emu.compartment.spiked[sl]
                    out[k]["u"][t] = emu.compartment.current[sl]
                    out[k]["v"][t] = emu.compartment.voltage[sl]
        finally:
            emu.close()
    return out
