"""Build a Lava process graph from a :class:`~neurohw.ir.Network` and run it.

Supported here: Input (a Lava ``RingBuffer`` source), ``Dense`` (Lava
``Dense``, or ``DelayDense`` when delays are set), ``Conv2d`` and
``SumPool2d`` (Lava ``Conv``), ``Flatten`` (a virtual reshape port) and
``LIFPopulation`` (Lava ``LIF``), in any topology including recurrence.

Lava's ``Conv`` differs from the IR in three ways, all handled here:

* layout: Lava tensors are ``(X, Y, C) = (W, H, C)`` and kernels
  ``(C_out, kx, ky, C_in/groups)``; the IR is ``(C, H, W)`` and
  ``(C_out, C_in/groups, kh, kw)``. Ports are transposed with Lava's virtual
  ``transpose`` ports, so populations keep their IR shape.
* Lava computes a true convolution (it flips the kernel before calling
  PyTorch's cross-correlation); the IR, like NIR and PyTorch, is a
  cross-correlation, so the kernel handed to Lava is flipped once more.
* Lava's fixed_pt ``Conv`` ignores ``weight_exp`` and ``num_weight_bits``;
  the kernel handed to Lava is the IR's effective mantissa shifted left by
  ``weight_exp``, which gives the same integers.  A negative ``weight_exp``
  (a floor shift of the *sum*) cannot be expressed this way and is refused.

``SumPool2d`` runs as a grouped Lava ``Conv`` with unit weights.

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
from ...fixedpoint import as_int_array, effective_weights

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
        from ...emulate.engine import input_payload_bits

        graded = input_payload_bits(net, name)
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
            arr = data[name].reshape((-1,) + tuple(node.shape))  # (T, *shape)
            procs[name] = RingBuffer(data=np.moveaxis(arr, 0, -1).astype(np.int32).copy())
        elif isinstance(node, ir.LIFPopulation):
            shape = tuple(node.shape)
            procs[name] = LIF(
                shape=shape,
                du=node.du,
                dv=node.dv,
                vth=node.vth,
                bias_mant=np.broadcast_to(node.bias_mant, shape).astype(np.int32).copy(),
                bias_exp=np.broadcast_to(node.bias_exp, shape).astype(np.int32).copy(),
                name=name,
            )
        elif isinstance(node, (ir.Conv2d, ir.SumPool2d)):
            procs[name] = _lava_conv(node, profile=net.profile)
        elif isinstance(node, ir.Flatten):
            continue  # a reshape of the port, made when connecting
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
            continue  # Output nodes read the population they watch; Flatten is a port
        while isinstance(net.nodes[src], ir.Flatten):
            (src,) = net.predecessors(src)
        s_node, d_node = net.nodes[src], net.nodes[dst]
        synaptic = isinstance(s_node, (ir.Dense, ir.Conv2d, ir.SumPool2d))
        port = procs[src].a_out if synaptic else procs[src].s_out
        if isinstance(s_node, (ir.Conv2d, ir.SumPool2d)):
            port = port.transpose([2, 1, 0])  # Lava (W, H, C) -> IR (C, H, W)
        if tuple(s_node.out_shape) != tuple(d_node.in_shape):
            port = port.reshape(tuple(d_node.in_shape))  # one or more Flatten nodes
        if isinstance(d_node, (ir.Conv2d, ir.SumPool2d)):
            port = port.transpose([2, 1, 0])  # IR (C, H, W) -> Lava (W, H, C)
        in_port = procs[dst].a_in if isinstance(d_node, ir.LIFPopulation) else procs[dst].s_in
        port.connect(in_port)
    return procs


def lava_conv_kernel(weight: np.ndarray) -> np.ndarray:
    """IR kernel ``(C_out, C_in/g, kh, kw)`` (cross-correlation) to Lava's ``Conv`` kernel.

    Lava's layout is ``(C_out, kx, ky, C_in/g)`` and Lava flips the spatial
    axes before correlating, so the kernel is transposed and flipped here.
    """
    w = np.asarray(weight).transpose(0, 3, 2, 1)
    return np.ascontiguousarray(w[:, ::-1, ::-1, :])


def lava_conv_args(node, profile) -> dict:
    """Keyword arguments of Lava's ``Conv`` for a Conv2d or SumPool2d (name excluded).

    The kernel is the IR's effective mantissa shifted left by ``weight_exp``
    (Lava's fixed_pt ``Conv`` ignores ``weight_exp`` and ``num_weight_bits``),
    in Lava's layout and flipped (:func:`lava_conv_kernel`); geometry is in
    Lava's ``(X, Y) = (W, H)`` order.  SumPool2d is a grouped Conv with unit
    weights.  A negative ``weight_exp`` raises :class:`ValidationError`.
    """
    c, h, w = node.input_shape
    if isinstance(node, ir.SumPool2d):
        kernel = np.ones((c, 1) + tuple(node.kernel_size), np.int64)
        groups, stride, padding, dilation, bits = c, node.stride, node.padding, (1, 1), 0
    else:
        if node.weight_exp < 0:
            raise ValidationError(
                f"node '{node.name}': weight_exp={node.weight_exp} is negative; Lava's Conv "
                f"ignores weight_exp, so only exponents 0..{profile.range_of('weight_exp')[1]} "
                f"can be folded into its kernel"
            )
        kernel = effective_weights(node.weight, node.sign_mode, node.num_weight_bits,
                                   profile.weight_bits) << node.weight_exp
        groups, stride, padding, dilation = node.groups, node.stride, node.padding, node.dilation
        bits = node.num_message_bits
    return dict(
        weight=lava_conv_kernel(kernel).astype(np.int32),
        input_shape=(int(w), int(h), int(c)),
        stride=tuple(int(v) for v in stride[::-1]),
        padding=tuple(int(v) for v in padding[::-1]),
        dilation=tuple(int(v) for v in dilation[::-1]),
        groups=int(groups),
        num_message_bits=int(bits),
    )


def _lava_conv(node, profile):
    from lava.proc.conv.process import Conv

    return Conv(name=node.name, **lava_conv_args(node, profile))


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
