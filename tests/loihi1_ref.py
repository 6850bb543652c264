"""Independent Loihi 1 reference: run a neurohw IR network in nengo-loihi 1.1.0's emulator.

The network is rebuilt at nengo-loihi's block level (``LoihiBlock``,
``Synapse``, ``Axon``, ``SpikeInput``) with the integers a quantized file
holds, turned into what nengo-loihi's chip model stores:

* ``decay_u = du``, ``decay_v = dv`` (the emulator adds the ``+1`` of ``du``);
* ``vth = vth_mant << 6``; ``bias = bias_mant << bias_exp``;
* ``refract_delay``, ``vmin``, ``vmax`` as given;
* synapse weights from nengo-loihi's own ``discretize_weights`` applied to
  Lava's effective mantissas (``SynapseConfig`` with ``weight_exp`` and the
  sign mode's ``fanout_type``/``weight_bits``), so the per-synapse rounding
  for ``weight_exp <= -2`` is nengo-loihi's code, not ours.

Only Input -> Dense -> LIF stacks (with recurrent Dense projections) and no
delays: nengo-loihi's emulator has no synaptic delays.
"""

from __future__ import annotations

import types
import warnings
from typing import Dict

import numpy as np

from neurohw import ir
from neurohw.fixedpoint import effective_weights

# nengo-loihi's SynapseConfig.WEIGHT_BITS_MAP index of each real weight width
_WEIGHT_BITS_INDEX = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 8: 7}


def nengo_loihi_available() -> bool:
    try:
        import nengo_loihi  # noqa: F401
    except Exception:  # pragma: no cover - nengo-loihi is a test dependency
        return False
    return True


def _synapse_weights(node: ir.Dense, profile) -> np.ndarray:
    """``(n_in, n_out)`` int32 weights a nengo-loihi Synapse adds per spike (v units)."""
    from nengo_loihi.block import SynapseConfig
    from nengo_loihi.builder.discretize import discretize_weights

    w_eff = effective_weights(node.weight, node.sign_mode, node.num_weight_bits,
                              profile.weight_bits)
    cfg = SynapseConfig(weight_exp=int(node.weight_exp),
                        fanout_type=1 if node.sign_mode == "mixed" else 0,
                        weight_bits=_WEIGHT_BITS_INDEX[int(node.num_weight_bits)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Lost N extra bits in weight rounding"
        w = discretize_weights(cfg, w_eff.T.astype(np.float64), check_result=False)
    return np.ascontiguousarray(w, dtype=np.int32)


def run_nengo_loihi(net: ir.Network, x: np.ndarray) -> Dict[str, Dict[str, np.ndarray]]:
    """Run ``net`` on binary input ``x`` ``(T, n_in)`` in nengo-loihi's ``EmulatorInterface``.

    Returns ``{pop: {"spikes", "u", "v"}}``, each ``(T, n)`` int64, row ``k``
    read after emulator step ``k + 1`` (the row a nengo-loihi probe records).
    """
    from nengo_loihi.block import Axon, LoihiBlock, Synapse
    from nengo_loihi.emulator.interface import EmulatorInterface
    from nengo_loihi.inputs import SpikeInput

    profile = net.profile
    blocks: Dict[str, LoihiBlock] = {}
    for name, pop in net.populations.items():
        n = pop.size
        b = LoihiBlock(n, label=name)
        c = b.compartment
        c.decay_u = pop.du.reshape(-1).astype(np.int32)
        c.decay_v = pop.dv.reshape(-1).astype(np.int32)
        c.vth = (pop.vth.reshape(-1).astype(np.int64) << profile.vth_shift).astype(np.int32)
        bm = pop.bias_mant.reshape(-1).astype(np.int64)
        be = pop.bias_exp.reshape(-1).astype(np.int64)
        c.bias = (bm << be).astype(np.int32)
        c.refract_delay = pop.refract_delay.reshape(-1).astype(np.int32)
        c.vmin, c.vmax = pop.v_limits(profile)
        c.scale_u = c.scale_v = False
        blocks[name] = b
    (in_name, in_node), = net.of_type(ir.InputNode).items()
    spike_input = SpikeInput(int(np.prod(in_node.shape)), label=in_name)
    for name, node in net.of_type(ir.Dense).items():
        if node.delay is not None and np.any(node.delay):
            raise ValueError(f"{name}: nengo-loihi's emulator has no synaptic delays")
        src = net.spike_source(name)
        (dst,) = net.successors(name)
        syn = Synapse(node.weight.shape[1], label=name)
        syn.set_weights(np.zeros(node.weight.T.shape, np.float32))
        w = _synapse_weights(node, profile)
        syn.weights = [w[i:i + 1].copy() for i in range(w.shape[0])]
        blocks[dst].add_synapse(syn)
        axon = Axon(node.weight.shape[1], label=name)
        axon.target = syn
        if src == in_name:
            spike_input.add_axon(axon)
        else:
            blocks[src].add_axon(axon)
    model = types.SimpleNamespace(blocks=list(blocks.values()), inputs=[spike_input],
                                  probes=[], dt=float(net.dt_s))
    x = np.asarray(x)
    T = x.shape[0]
    for r in range(T):
        spike_input.add_spikes(r + 1, np.flatnonzero(x[r]).tolist())
    out = {k: {v: np.zeros((T, p.size), np.int64) for v in ("spikes", "u", "v")}
           for k, p in net.populations.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # overflow warnings (EmulatorInterface.strict = False)
        emu = EmulatorInterface(model, seed=0)
        slices = emu.block_info.slices
        for t in range(T):
            emu.step()
            for k, b in blocks.items():
                sl = slices[b]
                out[k]["spikes"][t] = emu.compartment.spiked[sl]
                out[k]["u"][t] = emu.compartment.current[sl]
                out[k]["v"][t] = emu.compartment.voltage[sl]
        emu.close()
    return out
