"""NIR for float simulators: the quantized NIR, or a variant a given simulator reads right.

:func:`export_nir` writes

* ``flavor="neurohw"`` -- the quantized NIR of :func:`neurohw.write_network`
  (float fields = dequantized values, exact integers in metadata);
* ``flavor="snntorch"`` / ``flavor="norse"`` -- a float NIR (no quantized
  metadata: neurohw tools treat it as unquantized) whose float fields give
  the dequantized dynamics *as that importer interprets them*.

Why the variants (snnTorch 1.0.0 ``snntorch.import_nir.import_from_nir``,
Norse 1.1.0 ``norse.torch.from_nir``, both through nirtorch 2.6):

* NIR has no time step; snnTorch's importer hard-codes ``dt = 1e-4`` s
  (``alpha = 1 - dt / tau_syn``) and asserts ``r == tau_mem / dt``, so the
  quantized NIR loads only for networks with ``dt_s == 1e-4``.  Norse takes
  ``dt`` as an argument (default ``1e-3``).  The variants write time
  constants for the importer's own ``dt`` (``tau = sim_dt / alpha``), which
  gives the same per-step decays whatever the network's ``dt_s``.
* snnTorch asserts ``v_leak == 0`` (it has no bias in ``Synaptic``) and
  Norse applies the CubaLIF ``v_leak`` to the synaptic current as well as to
  the membrane (its ``LIBoxCell`` gets ``v_leak=node.v_leak``).  The
  variants set ``v_leak = 0`` and move the bias into the incoming
  projection as an ``Affine`` bias ``c = alpha_u * bias / 64`` (per step, in
  units of the current ``I = u / 64``): the current then settles at
  ``I + bias / 64``, which adds exactly ``bias / 64`` to ``V`` per step once
  settled; during the first ``~1 / alpha_u`` steps the bias is smaller than
  on the chip (a factor ``1 - (1 - alpha_u)**(t + 1)``).

Not fixed here (documented in docs/export-lava.md): both importers run a
feed-forward chain within one step, where every Lava ``Dense`` adds one step
of latency.  A non-spiking (LI) readout is refused for both flavors because
neither importer loads ``nir.LI`` or ``nir.CubaLI`` (checked against the
installed code, and pinned by ``tests/test_flavor_exports.py``): snnTorch's
``import_from_nir`` has no entry for them in its node map and raises
``ValueError: Unknown node type``; Norse's ``_import_norse_module`` returns
``None`` for them and nirtorch's ``load`` then drops the node, so the graph
loads and runs without error but outputs the readout's *input current*.
Written as a ``CubaLIF`` instead, it would be a spiking neuron that never
fires, its membrane hidden in the importer's state.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Union

import numpy as np

from .. import ir
from ..errors import ValidationError
from ..fixedpoint import scaled_bias
from ..fileio import atomic_write
from ..floatview import float_view_lif
from ..nirio import network_to_nir, write_network

__all__ = ["export_nir", "float_nir_graph", "FLAVORS", "SIM_DT_S"]

SIM_DT_S: Dict[str, float] = {"snntorch": 1e-4, "norse": 1e-3}
"""The time step (seconds) each importer assumes (snnTorch: fixed; Norse: ``from_nir`` default)."""
FLAVORS = ("neurohw",) + tuple(SIM_DT_S)

PathLike = Union[str, "os.PathLike[str]"]


_NO_LI = {
    "snntorch": "snntorch.import_nir.import_from_nir has no LI/CubaLI module "
                "(it raises 'Unknown node type')",
    "norse": "norse.torch.from_nir has no LI/CubaLI module (it drops the node and outputs "
             "the readout's input current)",
}
"""Why each flavor's importer cannot load a non-spiking readout (snnTorch 1.0.0, Norse 1.1.0)."""


def _refuse_unloadable(net: ir.Network, flavor: str) -> None:
    """One-line refusals, naming node and remedy, for what the importer cannot load right."""
    alt = "'--to lava' (bit-exact) or '--flavor neurohw' (the quantized NIR, read with neurohw)"
    for name, pop in net.populations.items():
        if np.all(np.asarray(pop.vth) >= 2**net.profile.vth_bits - 1):
            # a non-spiking readout (LI/CubaLI quantized with the largest threshold)
            raise ValidationError(
                f"node '{name}': a non-spiking readout (LI); {_NO_LI[flavor]}; "
                f"export with {alt}")



def float_nir_graph(net: ir.Network, flavor: str):
    """The float NIR graph of ``net`` for ``flavor`` ``"snntorch"`` or ``"norse"``.

    Refuses (one line naming the node, the importer's failure and the remedy)
    a non-spiking readout, which neither importer loads.  Conv projections carry a
    per-channel bias in the ``Conv2d`` bias; a Flatten's dimensions are
    shifted by one for the batch axis both importers pass through
    ``torch.nn.Flatten``.  For snnTorch, a projection from a population back
    onto itself gets an identity ``Flatten`` (``<proj>_identity``, on the
    batched ``(B, n)`` tensor) before the population: snnTorch 1.0 rewrites a
    bare LIF<->Affine loop into a sub-graph that nirtorch 2.6 cannot build,
    while nirtorch runs the plain cycle itself, the loop reading the previous
    step's value (as on the chip) through the state the module returns
    (``out, state = module(x_t, state)``).
    """
    import nir

    if flavor not in SIM_DT_S:
        raise ValidationError(f"flavor={flavor!r} is not one of {', '.join(SIM_DT_S)}")
    _refuse_unloadable(net, flavor)
    sim_dt = SIM_DT_S[flavor]
    graph = network_to_nir(net)
    nodes = dict(graph.nodes)
    for name, node in net.nodes.items():
        if isinstance(node, ir.Flatten):
            # NIR's dims exclude the batch; both importers build torch.nn.Flatten(start, end)
            # on batched tensors, so dim 0 would flatten the batch
            start, end = int(node.start_dim), int(node.end_dim)  # negative: from the end
            nodes[name] = nir.Flatten(input_type={"input": np.array(node.input_shape)},
                                      start_dim=start + 1 if start >= 0 else start,
                                      end_dim=end + 1 if end >= 0 else end)
    for name, pop in net.populations.items():
        # the dequantized view for the importer's own time step (per neuron)
        view = float_view_lif(pop, sim_dt, net.profile)
        view["v_leak"] = np.zeros(pop.shape)
        nodes[name] = nir.CubaLIF(**view)
        a_u = (pop.du.astype(np.float64).reshape(-1) + 1.0) / float(2**net.profile.decay_bits)
        bias = scaled_bias(pop.bias_mant, pop.bias_exp).reshape(-1).astype(np.float64)
        if not bias.any():
            continue
        remedy = "export with '--to lava' or '--flavor neurohw'"
        feeds = [s for s in net.predecessors(name)
                 if isinstance(net.nodes[s], (ir.Dense, ir.Conv2d))]
        if not feeds:
            raise ValidationError(
                f"node '{name}': a bias needs an incoming Dense or Conv2d to carry it in a "
                f"{flavor} NIR; {remedy}")
        proj = feeds[0]
        if net.successors(proj) != [name]:
            raise ValidationError(
                f"node '{proj}': feeds {len(net.successors(proj))} nodes; cannot carry the "
                f"bias of '{name}' alone in a {flavor} NIR; {remedy}")
        carried = a_u * bias / float(2**net.profile.vth_shift)  # per neuron, units of I = u/64
        if isinstance(net.nodes[proj], ir.Conv2d):
            c_out = int(nodes[proj].weight.shape[0])
            per_ch = carried.reshape(c_out, -1)
            if not np.all(per_ch == per_ch[:, :1]):
                ch = int(np.argmax(np.any(per_ch != per_ch[:, :1], axis=1)))
                raise ValidationError(
                    f"node '{name}': bias or du differs within channel {ch}; a Conv2d bias is "
                    f"one value per channel in a {flavor} NIR; {remedy}")
            old = nodes[proj]
            nodes[proj] = nir.Conv2d(input_shape=old.input_shape, weight=np.asarray(old.weight),
                                     stride=old.stride, padding=old.padding,
                                     dilation=old.dilation, groups=old.groups,
                                     bias=per_ch[:, 0].copy())
        else:
            nodes[proj] = nir.Affine(weight=np.asarray(nodes[proj].weight), bias=carried)
    edges = [tuple(e) for e in graph.edges]
    if flavor == "snntorch":
        for name, pop in net.populations.items():
            for proj in net.predecessors(name):
                if (isinstance(net.nodes[proj], ir.Dense) and net.predecessors(proj) == [name]
                        and net.successors(proj) == [name]):
                    ident = f"{proj}_identity"
                    if ident in nodes:  # pragma: no cover - a name clash
                        raise ValidationError(f"node '{ident}': name taken; rename it")
                    nodes[ident] = nir.Flatten(input_type={"input": np.array([pop.size])},
                                               start_dim=1, end_dim=-1)
                    edges.remove((proj, name))
                    edges += [(proj, ident), (ident, name)]
    for node in nodes.values():
        if isinstance(getattr(node, "metadata", None), dict):
            node.metadata.pop("neurohw", None)
    meta = {"neurohw": {"format": "neurohw.float_view", "flavor": flavor,
                        "dt": float(net.dt_s), "sim_dt": sim_dt, "profile": net.profile.name}}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=False)


def export_nir(net: ir.Network, path: PathLike, flavor: str = "neurohw") -> Path:
    """Write ``net`` as NIR to ``path`` (atomically); see the module docstring for flavors.

    ``"neurohw"`` is the lossless quantized NIR; ``"snntorch"`` and
    ``"norse"`` are float-only files that those importers read with their
    default time step (snnTorch ``1e-4`` s, Norse ``1e-3`` s).
    """
    if flavor == "neurohw":
        return write_network(net, path)
    if flavor not in FLAVORS:
        raise ValidationError(f"flavor={flavor!r} is not one of {', '.join(FLAVORS)}")
    import nir

    graph = float_nir_graph(net, flavor)
    return atomic_write(path, lambda tmp: nir.write(tmp, graph))
