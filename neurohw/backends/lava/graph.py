"""A :class:`~neurohw.ir.Network` as a Lava graph spec, and the profiles Lava can run.

:func:`lava_graph_spec` turns a network into the plain spec that
:func:`neurohw.backends.lava._builder.build_lava_graph` builds Lava processes
from (JSON-able node list and connections plus integer arrays); the Lava
backend, ``neurohw bench`` and the exported standalone script all go
through it, so a Lava process graph is described in exactly one place.

Lava's ``Conv`` differs from the IR in three ways, all handled here:

* layout: Lava tensors are ``(X, Y, C) = (W, H, C)`` and kernels
  ``(C_out, kx, ky, C_in/groups)``; the IR is ``(C, H, W)`` and
  ``(C_out, C_in/groups, kh, kw)``.  Connections carry Lava virtual
  ``transpose`` ports, so populations keep their IR shape.
* Lava computes a true convolution (it flips the kernel before calling
  PyTorch's cross-correlation); the IR, like NIR and PyTorch, is a
  cross-correlation, so the kernel handed to Lava is flipped once more.
* Lava's fixed_pt ``Conv`` ignores ``weight_exp`` and ``num_weight_bits``;
  the kernel handed to Lava is the IR's effective mantissa shifted left by
  ``weight_exp``, which gives the same integers.  A negative ``weight_exp``
  (a floor shift of the *sum*) cannot be expressed this way and is refused.

:func:`check_lava_profile` refuses a hardware profile whose datapath
differs from the one Lava 0.10's fixed_pt models hard-code
(:data:`LAVA_DATAPATH`, documented in ``docs/export-lava.md``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np

from ... import ir
from ...errors import ValidationError
from ...fixedpoint import effective_weights

__all__ = ["LAVA_DATAPATH", "check_lava_profile", "check_lava_lif", "lava_graph_spec",
           "lava_conv_args",
           "lava_conv_kernel", "standalone_source"]

#: Profile fields Lava 0.10's fixed_pt models fix, with the value they use and where.
#: ``"eq"`` fields must equal the value; ``"max"`` fields may not exceed it.
LAVA_DATAPATH: Dict[str, Tuple[str, int, str]] = {
    "decay_bits": ("eq", 12, "lif/models.py AbstractPyLifModelFixed: decay_shift = 12, "
                             "decay_unity = 4096"),
    "state_bits": ("eq", 24, "lif/models.py AbstractPyLifModelFixed: uv_bitwidth = 24"),
    "act_shift": ("eq", 6, "lif/models.py AbstractPyLifModelFixed: act_shift = 6"),
    "vth_shift": ("eq", 6, "lif/models.py AbstractPyLifModelFixed: vth_shift = 6"),
    "weight_bits": ("eq", 8, "dense/models.py PyDenseModelBitAcc: clip_weights(num_bits=8)"),
    "graded_spike_bits": ("max", 24, "lif/conv models: spike ports declared precision=24"),
    "bias_bits": ("max", 16, "lif/models.py: bias_mant held as np.int16"),
    "delay_max_steps": ("max", 62, "dense/models.py PyDelayDenseModelBitAcc: 6-bit delays, "
                                   "0 to 62 steps; a delay of 64 hangs Lava 0.10's simulator"),
}
_INT32_BITS = 31  # Lava's scale_bias shifts an int32 copy of bias_mant


def check_lava_profile(profile) -> None:
    """Raise :class:`ValidationError` unless Lava's fixed_pt models compute ``profile``'s datapath.

    One line naming the profile, the field, its value and the value Lava's
    fixed_pt models use (:data:`LAVA_DATAPATH`), plus the bias range: the
    largest bias ``bias_mant << bias_exp_max`` must fit Lava's int32
    (``bias_bits - 1 + bias_exp_max <= 31``) and ``bias_exp_min >= -31``.
    ``loihi2`` and any ``generic(...)`` profile with these widths pass;
    ``loihi1`` (Loihi 1 rules, ``semantics='loihi1'``) does not.
    """
    if getattr(profile, "semantics", "lava") != "lava" or getattr(profile, "dendrite_bits", 32) != 32:
        raise ValidationError(
            f"profile '{profile.name}': semantics={profile.semantics!r}, dendrite_bits="
            f"{profile.dendrite_bits}; Lava's fixed_pt models compute semantics='lava' with a "
            f"32-bit input (docs/loihi1.md); use loihi2 or generic(...) to run in Lava")
    for name, (rule, value, where) in LAVA_DATAPATH.items():
        got = getattr(profile, name)
        if (rule == "eq" and got != value) or (rule == "max" and got > value):
            need = f"{name}={value}" if rule == "eq" else f"{name}<={value}"
            raise ValidationError(
                f"profile '{profile.name}': {name}={got}; Lava's fixed_pt models use {need} "
                f"({where}); use a profile with Lava's widths (loihi2, generic) to run in Lava")
    top = profile.bias_bits - 1 + profile.bias_exp_max
    if top > _INT32_BITS:
        raise ValidationError(
            f"profile '{profile.name}': bias_exp_max={profile.bias_exp_max} with "
            f"bias_bits={profile.bias_bits} makes biases up to 2^{top}; Lava computes "
            f"bias_mant << bias_exp in int32 (bias_exp_max <= {_INT32_BITS + 1 - profile.bias_bits})")
    if profile.bias_exp_min < -_INT32_BITS:
        raise ValidationError(
            f"profile '{profile.name}': bias_exp_min={profile.bias_exp_min}; Lava shifts an "
            f"int32 bias right by at most {_INT32_BITS} (bias_exp_min >= -{_INT32_BITS})")


def check_lava_lif(pop: ir.LIFPopulation, profile) -> None:
    """Refuse what Lava 0.10's fixed_pt LIF cannot compute: refractory delays (its only
    refractory LIF is floating point) and [vmin, vmax] other than +-(2**23 - 1)."""
    if getattr(pop, "is_elif", False):
        raise ValidationError(
            f"node '{pop.name}': ELIF (an exponential table added to v, docs/neuron-models.md); "
            f"Lava 0.10 has no matching fixed_pt process")
    if pop.has_refractory:
        raise ValidationError(
            f"node '{pop.name}': refract_delay={int(pop.refract_delay.max())} > 1; Lava 0.10 has "
            f"no fixed_pt refractory LIF (LIFRefractory is floating point only)")
    full = (1 << (profile.state_bits - 1)) - 1
    if pop.v_limits(profile) != (-full, full):
        raise ValidationError(
            f"node '{pop.name}': vmin={pop.vmin}, vmax={pop.vmax}; Lava's fixed_pt LIF clips v "
            f"to [-{full}, {full}] only")


def _int(value) -> np.ndarray:
    return np.asarray(value, dtype=np.int64)


def _neuron_array(pop: ir.LIFPopulation, param: str) -> np.ndarray:
    """0-d int64 when every neuron shares the value (Lava gets a scalar), else per neuron."""
    single = pop.uniform(param)
    if single is not None:
        return _int(single)
    return np.asarray(getattr(pop, param), dtype=np.int64)


def lava_graph_spec(net: ir.Network) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    """``(spec, params)`` of ``net`` for :func:`~._builder.build_lava_graph`.

    Checks the profile first (:func:`check_lava_profile`).  ``spec`` holds
    ``nodes`` and ``connections`` (JSON-able); ``params`` the integer arrays
    keyed ``"n<i>.<param>"``.  Flatten and Output nodes make no process.
    Raises :class:`ValidationError` for what Lava cannot run.
    """
    check_lava_profile(net.profile)
    nodes: List[Dict[str, Any]] = []
    params: Dict[str, np.ndarray] = {}
    for name, node in net.nodes.items():
        key = f"n{len(nodes)}."
        if isinstance(node, ir.InputNode):
            nodes.append({"name": name, "kind": "Input", "shape": list(node.shape)})
        elif isinstance(node, ir.LIFPopulation):
            check_lava_lif(node, net.profile)
            nodes.append({"name": name, "kind": "LIF", "shape": list(node.shape)})
            for p in ("du", "dv", "vth"):
                params[key + p] = _neuron_array(node, p)
            for p in ("bias_mant", "bias_exp"):
                params[key + p] = np.asarray(getattr(node, p), dtype=np.int32)  # per neuron
        elif isinstance(node, ir.Dense):
            nodes.append({"name": name, "kind": "Dense", "sign_mode": node.sign_mode,
                          "delays": node.delay is not None})
            params[key + "weights"] = np.asarray(node.weight, np.int32)
            for p in ("weight_exp", "num_weight_bits", "num_message_bits"):
                params[key + p] = _int(getattr(node, p))
            if node.delay is not None:
                params[key + "delays"] = np.asarray(node.delay, np.int32)
        elif isinstance(node, ir.Sparse):
            nodes.append({"name": name, "kind": "Sparse", "sign_mode": node.sign_mode,
                          "delays": node.delay is not None, "shape": list(node.weight.shape)})
            params[key + "indptr"] = np.asarray(node.weight.indptr, np.int64)
            params[key + "indices"] = np.asarray(node.weight.indices, np.int64)
            params[key + "weights"] = np.asarray(node.weight.data, np.int32)
            for p in ("weight_exp", "num_weight_bits", "num_message_bits"):
                params[key + p] = _int(getattr(node, p))
            if node.delay is not None:
                params[key + "delays"] = np.asarray(node.delay.data, np.int32)  # per entry
        elif isinstance(node, (ir.Conv2d, ir.SumPool2d)):
            nodes.append({"name": name, "kind": "Conv"})
            args = lava_conv_args(node, net.profile)
            params.update({key + k: (v if k == "weight" else _int(v)) for k, v in args.items()})
        elif isinstance(node, (ir.Flatten, ir.OutputNode)):
            continue  # a reshape of a port / a readout: no process
        else:
            raise ValidationError(
                f"node '{name}': {node.kind} is not supported by the Lava backend yet")
    procs = {n["name"] for n in nodes}
    return {"nodes": nodes, "connections": _connections(net, procs)}, params


def _connections(net: ir.Network, procs) -> List[Dict[str, Any]]:
    """Port connections with their virtual-port ops (transpose for Conv layouts, reshape
    for Flatten)."""
    conns = []
    for src, dst in net.edges:
        if dst not in procs:
            continue  # Output reads the population it watches; Flatten is a port reshape
        while isinstance(net.nodes[src], ir.Flatten):
            (src,) = net.predecessors(src)
        s_node, d_node = net.nodes[src], net.nodes[dst]
        conv_src = isinstance(s_node, (ir.Conv2d, ir.SumPool2d))
        synaptic = conv_src or isinstance(s_node, (ir.Dense, ir.Sparse))
        ops: List[list] = []
        if conv_src:
            ops.append(["transpose", [2, 1, 0]])  # Lava (W, H, C) -> IR (C, H, W)
        if tuple(s_node.out_shape) != tuple(d_node.in_shape):
            ops.append(["reshape", list(d_node.in_shape)])  # one or more Flatten nodes
        if isinstance(d_node, (ir.Conv2d, ir.SumPool2d)):
            ops.append(["transpose", [2, 1, 0]])  # IR (C, H, W) -> Lava (W, H, C)
        conns.append({
            "src": src, "src_port": "a_out" if synaptic else "s_out", "ops": ops,
            "dst": dst, "dst_port": "a_in" if isinstance(d_node, ir.LIFPopulation) else "s_in",
        })
    return conns


def lava_conv_kernel(weight: np.ndarray) -> np.ndarray:
    """IR kernel ``(C_out, C_in/g, kh, kw)`` (cross-correlation) to Lava's ``Conv`` kernel.

    Lava's layout is ``(C_out, kx, ky, C_in/g)`` and Lava flips the spatial
    axes before correlating, so the kernel is transposed and flipped here.
    """
    w = np.asarray(weight).transpose(0, 3, 2, 1)
    return np.ascontiguousarray(w[:, ::-1, ::-1, :])


_INT8_MAX = 127  # Lava's Conv model holds stride, padding, dilation, groups as np.int8


def lava_conv_args(node, profile) -> dict:
    """Keyword arguments of Lava's ``Conv`` for a Conv2d or SumPool2d (name excluded).

    The kernel is the IR's effective mantissa shifted left by ``weight_exp``
    (Lava's fixed_pt ``Conv`` ignores ``weight_exp`` and ``num_weight_bits``),
    in Lava's layout and flipped (:func:`lava_conv_kernel`); geometry is in
    Lava's ``(X, Y) = (W, H)`` order.  SumPool2d is a grouped Conv with unit
    weights.  Raises :class:`ValidationError` for a negative ``weight_exp``,
    a shifted kernel beyond Lava's int32 and geometry beyond its int8 fields.
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
                f"can be folded into its kernel")
        kernel = effective_weights(node.weight, node.sign_mode, node.num_weight_bits,
                                   profile.weight_bits)
        top = int(np.abs(kernel).max(initial=0))
        if top and top.bit_length() + int(node.weight_exp) > 31:
            raise ValidationError(
                f"node '{node.name}': weight_exp={node.weight_exp} folds kernel values up to "
                f"{top} into {top << int(node.weight_exp)}, beyond Lava's int32 Conv kernel")
        kernel = kernel << np.int64(node.weight_exp)
        groups, stride, padding, dilation = node.groups, node.stride, node.padding, node.dilation
        bits = node.num_message_bits
    for param, value in (("stride", stride), ("padding", padding), ("dilation", dilation),
                         ("groups", (groups,))):
        if max(int(v) for v in value) > _INT8_MAX:
            raise ValidationError(
                f"node '{node.name}': {param}={tuple(int(v) for v in value)} exceeds "
                f"{_INT8_MAX}, the largest value Lava's Conv holds (np.int8)")
    return dict(
        weight=lava_conv_kernel(kernel).astype(np.int32),
        input_shape=(int(w), int(h), int(c)),
        stride=tuple(int(v) for v in stride[::-1]),
        padding=tuple(int(v) for v in padding[::-1]),
        dilation=tuple(int(v) for v in dilation[::-1]),
        groups=int(groups),
        num_message_bits=int(bits),
    )


_REGION = re.compile(r"^# ---- standalone: begin.*?$\n(.*?)^# ---- standalone: end ----$",
                     re.S | re.M)


def standalone_source() -> str:
    """The numpy/lava-only code shared with exported scripts: the Python 3.11 import fix
    of :mod:`._compat`, the sign-mode table of :mod:`neurohw.signmode` and the builder
    of :mod:`._builder`, as source text."""
    parts = []
    here = Path(__file__).parent
    for path in (here / "_compat.py", here.parents[1] / "signmode.py", here / "_builder.py"):
        module = path.name
        text = path.read_text(encoding="utf-8")
        found = _REGION.findall(text)
        if len(found) != 1:  # pragma: no cover - source integrity
            raise RuntimeError(f"{module}: expected one standalone region, found {len(found)}")
        parts.append(found[0].strip("\n"))
    return "\n\n\n".join(parts) + "\n"
