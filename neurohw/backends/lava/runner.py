"""Build a Lava process graph from a :class:`~neurohw.ir.Network` and run it.

Supported here: Input (a Lava ``RingBuffer`` source), ``Dense`` (Lava
``Dense``, or ``DelayDense`` when delays are set) and ``LIFPopulation``
(Lava ``LIF``), in any topology including recurrence.  Convolution,
pooling and flatten nodes raise :class:`~neurohw.errors.ValidationError`
naming the node (they come with the emulator work).

Timing follows Lava exactly: the source sends row ``t`` of the input at step
``t + 1`` (1-based), every Dense delivers what it accumulated one step
later, and ``Monitor`` index ``t`` holds the value after step ``t + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, Mapping, Optional, Sequence

import numpy as np

from ... import ir
from ...errors import ValidationError
from ...fixedpoint import as_int_array

__all__ = ["LavaRun", "build_processes", "run_lava"]

_SIGN_MODE_VALUE = {"mixed": 1, "excitatory": 2, "inhibitory": 3}


@dataclass
class LavaRun:
    """What a Lava run recorded: per population ``NAME`` arrays of shape ``(T, n)``.

    ``spikes[NAME]`` is ``np.int8`` (0/1), ``v[NAME]`` and ``u[NAME]`` are
    ``np.int64`` -- present for the variables asked for in ``record``.
    """

    num_steps: int
    spikes: Dict[str, np.ndarray] = field(default_factory=dict)
    v: Dict[str, np.ndarray] = field(default_factory=dict)
    u: Dict[str, np.ndarray] = field(default_factory=dict)


def _check_input(net: ir.Network, inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    out = {}
    in_nodes = net.of_type(ir.InputNode)
    for name, node in in_nodes.items():
        if name not in inputs:
            raise ValidationError(f"input for node '{name}' is missing")
        n = int(np.prod(node.shape))
        arr = np.asarray(inputs[name])
        if arr.ndim != 2 or arr.shape[1] != n:
            raise ValidationError(
                f"input for node '{name}': shape {arr.shape}, expected (T, {n})"
            )
        # binary unless a graded projection reads it; graded payloads are checked by range
        graded = max(
            (net.nodes[s].num_message_bits for s in net.successors(name)
             if isinstance(net.nodes[s], ir.Dense)),
            default=0,
        )
        hi = 1 if graded == 0 else 2 ** graded - 1
        out[name] = as_int_array(arr, f"input for node '{name}'", "x", 0, hi,
                                 "binary spikes" if graded == 0 else f"{graded}-bit payload")
    extra = sorted(set(inputs) - set(in_nodes))
    if extra:
        raise ValidationError(f"inputs given for unknown input node(s): {', '.join(extra)}")
    return out


def build_processes(net: ir.Network, inputs: Mapping[str, np.ndarray]) -> Dict[str, object]:
    """Create and connect the Lava processes of ``net``; returns name -> process.

    ``inputs`` maps each Input node name to a ``(T, n)`` integer array fed
    by a ``RingBuffer`` (row ``t`` is sent at step ``t + 1``).
    """
    from . import import_lava

    import_lava()
    from lava.proc.dense.process import Dense, DelayDense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.utils.weightutils import SignMode

    data = _check_input(net, inputs)
    procs: Dict[str, object] = {}
    for name, node in net.nodes.items():
        if isinstance(node, ir.InputNode):
            procs[name] = RingBuffer(data=data[name].T.astype(np.int32).copy())
        elif isinstance(node, ir.LIFPopulation):
            n = node.size
            procs[name] = LIF(
                shape=(n,),
                du=node.du,
                dv=node.dv,
                vth=node.vth,
                bias_mant=node.bias_mant.reshape(n).astype(np.int32),
                bias_exp=node.bias_exp.reshape(n).astype(np.int32),
                name=name,
            )
        elif isinstance(node, ir.Dense):
            kwargs = dict(
                weights=np.asarray(node.weight, dtype=np.int32).copy(),
                weight_exp=node.weight_exp,
                num_weight_bits=node.num_weight_bits,
                sign_mode=SignMode(_SIGN_MODE_VALUE[node.sign_mode]),
                num_message_bits=node.num_message_bits,
                name=name,
            )
            if node.delay is not None:
                delays = np.asarray(node.delay, dtype=int).copy()  # Lava checks dtype == int
                procs[name] = DelayDense(delays=delays, max_delay=int(delays.max()), **kwargs)
            else:
                procs[name] = Dense(**kwargs)
        elif isinstance(node, ir.OutputNode):
            continue
        else:
            raise ValidationError(
                f"node '{name}': {node.kind} is not supported by the Lava backend yet"
            )
    for src, dst in net.edges:
        if dst not in procs:
            continue  # Output nodes are read from the population they watch
        s, d = procs[src], procs[dst]
        out_port = s.s_out if not isinstance(net.nodes[src], ir.Dense) else s.a_out
        in_port = d.a_in if isinstance(net.nodes[dst], ir.LIFPopulation) else d.s_in
        out_port.connect(in_port)
    return procs


def run_lava(
    net: ir.Network,
    inputs: Mapping[str, np.ndarray] | np.ndarray,
    num_steps: Optional[int] = None,
    record: Iterable[str] = ("spikes",),
    select_tag: str = "fixed_pt",
) -> LavaRun:
    """Run ``net`` in Lava's CPU simulator (``Loihi2SimCfg``) for ``num_steps`` steps.

    ``inputs`` is a ``(T, n_in)`` array for a single Input node, or a dict of
    them.  ``record`` names what to record per population: any of
    ``"spikes"``, ``"v"``, ``"u"``.  ``num_steps`` defaults to ``T``.
    """
    from . import import_lava

    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.monitor.process import Monitor

    if not isinstance(inputs, Mapping):
        in_names = list(net.of_type(ir.InputNode))
        if len(in_names) != 1:
            raise ValidationError(
                f"network has {len(in_names)} input nodes; pass inputs as a dict by name"
            )
        inputs = {in_names[0]: inputs}
    record = tuple(record)
    unknown = sorted(set(record) - {"spikes", "v", "u"})
    if unknown:
        raise ValidationError(f"record: unknown variable(s) {', '.join(unknown)}; use spikes, v, u")
    lengths = {np.asarray(x).shape[0] for x in inputs.values()}
    if num_steps is None:
        if len(lengths) != 1:
            raise ValidationError("inputs have different lengths; pass num_steps")
        num_steps = lengths.pop()
    if num_steps < 1:
        raise ValidationError(f"num_steps={num_steps} must be at least 1")
    procs = build_processes(net, inputs)
    monitors = []
    for name, node in net.populations.items():
        proc = procs[name]
        for var in record:
            target = {"spikes": proc.s_out, "v": proc.v, "u": proc.u}[var]
            mon = Monitor()
            mon.probe(target, num_steps)
            monitors.append((name, var, mon, target))
    if not monitors:
        raise ValidationError("network has no LIF population to record")
    anchor = monitors[0][2]
    result = LavaRun(num_steps=num_steps)
    try:
        anchor.run(condition=RunSteps(num_steps=num_steps),
                   run_cfg=Loihi2SimCfg(select_tag=select_tag))
        for name, var, mon, target in monitors:
            data = mon.get_data()[procs[name].name][target.name]
            arr = np.asarray(data).reshape(num_steps, -1)
            if var == "spikes":
                result.spikes[name] = (arr != 0).astype(np.int8)
            else:
                getattr(result, var)[name] = np.rint(arr).astype(np.int64)
    finally:
        anchor.stop()
    return result
