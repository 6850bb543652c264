"""Export a network as a standalone Lava script: ``run_lava.py`` + ``weights.npz``.

The directory written by :func:`export_lava_script` runs anywhere lava-nc
0.10 and numpy are installed -- it does not import neurohw::

    python OUT_DIR/run_lava.py --input X.npy --out RUN.npz [--record v,u]

The script builds the same Lava process graph as
:func:`neurohw.backends.lava.build_processes` (``RingBuffer`` source,
``Dense``/``DelayDense``, ``Conv`` with the kernel already flipped and laid
out as Lava wants, ``LIF``; virtual transpose/reshape ports for the
``(C, H, W)`` <-> ``(X, Y, C)`` layouts and Flatten), runs it on
``Loihi2SimCfg(select_tag="fixed_pt")`` one sample at a time, and writes the
``neurohw emulate`` output layout, so the two outputs compare directly
(bit-exact; tested in ``tests/test_export_lava.py``).

``weights.npz`` holds only integer arrays (keys ``n<i>.<param>``, ``i`` the
node's index in the script's ``NETWORK`` literal); the script reads it with
``np.load(allow_pickle=False)``.  The script text comes from the template
module :mod:`neurohw.export._lava_script_template` (a Python file kept
lintable; it is read as text, never imported by the exporter).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Union

import numpy as np

from .. import __version__, ir
from ..errors import FileFormatError, ValidationError

__all__ = ["export_lava_script", "lava_processes", "SCRIPT_NAME", "WEIGHTS_NAME"]

SCRIPT_NAME = "run_lava.py"
WEIGHTS_NAME = "weights.npz"
_TEMPLATE = Path(__file__).with_name("_lava_script_template.py")
_SIGN_MODE_VALUE = {"mixed": 1, "excitatory": 2, "inhibitory": 3}  # Lava SignMode

PathLike = Union[str, "os.PathLike[str]"]


def lava_processes(net: ir.Network, inputs) -> Dict[str, object]:
    """The connected Lava processes of ``net``, fed by ``inputs``; name -> process.

    ``inputs`` is a ``(T, n_in)`` integer array (networks with one Input
    node) or a dict ``{input_name: (T, n)}``; row ``t`` is sent by a Lava
    ``RingBuffer`` at step ``t + 1``.  Populations are Lava ``LIF``
    processes, projections ``Dense``/``DelayDense``/``Conv``; Flatten and
    Output nodes have no process.  Run them with e.g.
    ``procs[pop].run(RunSteps(T), Loihi2SimCfg(select_tag="fixed_pt"))``
    and stop them afterwards.  A thin wrapper over
    :func:`neurohw.backends.lava.build_processes`.
    """
    from ..backends.lava import build_processes

    if not isinstance(inputs, Mapping):
        names = list(net.of_type(ir.InputNode))
        if len(names) != 1:
            raise ValidationError(
                f"network has {len(names)} Input nodes; pass inputs as a dict by name")
        inputs = {names[0]: inputs}
    return build_processes(net, inputs)


def _int(value) -> np.ndarray:
    return np.asarray(value, dtype=np.int64)


def _graph_spec(net: ir.Network):
    """(NETWORK literal for the script, integer arrays for weights.npz)."""
    from ..emulate.engine import input_payload_bits

    inputs = list(net.of_type(ir.InputNode))
    if len(inputs) != 1:
        raise ValidationError(
            f"network has {len(inputs)} Input nodes; the Lava script takes one --input "
            f"array, as 'neurohw emulate' does")
    in_name = inputs[0]
    bits = input_payload_bits(net, in_name)
    nodes: List[Dict[str, Any]] = []
    arrays: Dict[str, np.ndarray] = {}
    for name, node in net.nodes.items():
        key = f"n{len(nodes)}."
        if isinstance(node, ir.InputNode):
            nodes.append({"name": name, "kind": "Input", "shape": list(node.shape)})
        elif isinstance(node, ir.LIFPopulation):
            nodes.append({"name": name, "kind": "LIF", "shape": list(node.shape)})
            for p in ("du", "dv", "vth"):
                arrays[key + p] = _int(getattr(node, p))
            arrays[key + "bias_mant"] = np.asarray(node.bias_mant, np.int32)
            arrays[key + "bias_exp"] = np.asarray(node.bias_exp, np.int32)
        elif isinstance(node, ir.Dense):
            nodes.append({"name": name, "kind": "Dense", "delays": node.delay is not None})
            arrays[key + "weights"] = np.asarray(node.weight, np.int32)
            arrays[key + "weight_exp"] = _int(node.weight_exp)
            arrays[key + "num_weight_bits"] = _int(node.num_weight_bits)
            arrays[key + "sign_mode"] = _int(_SIGN_MODE_VALUE[node.sign_mode])
            arrays[key + "num_message_bits"] = _int(node.num_message_bits)
            if node.delay is not None:
                arrays[key + "delays"] = np.asarray(node.delay, np.int32)
        elif isinstance(node, (ir.Conv2d, ir.SumPool2d)):
            nodes.append({"name": name, "kind": "Conv"})
            arrays.update({key + k: v for k, v in _conv_arrays(node, net.profile).items()})
        elif isinstance(node, (ir.Flatten, ir.OutputNode)):
            continue  # a reshape of a port / a readout: no process
        else:  # pragma: no cover - every IR node type is listed above
            raise ValidationError(f"node '{name}': {node.kind} cannot be exported to Lava")
    procs = {n["name"] for n in nodes}
    spec = {
        "neurohw_version": __version__,
        "profile": net.profile.name,
        "dt_s": net.dt_s,
        "input": {"name": in_name, "shape": list(net.nodes[in_name].shape),
                  "max_value": 1 if bits == 0 else 2**bits - 1},
        "populations": list(net.populations),
        "sizes": {k: list(p.shape) for k, p in net.populations.items()},
        "nodes": nodes,
        "connections": _connections(net, procs),
    }
    return spec, arrays


def _conv_arrays(node, profile) -> Dict[str, np.ndarray]:
    """Lava ``Conv`` arguments for a Conv2d/SumPool2d, exactly as the Lava backend builds them
    (:func:`neurohw.backends.lava.runner.lava_conv_args`), as integer arrays."""
    from ..backends.lava.runner import lava_conv_args

    args = lava_conv_args(node, profile)
    return {k: (v if k == "weight" else _int(v)) for k, v in args.items()}


def _connections(net: ir.Network, procs) -> List[Dict[str, Any]]:
    """Port connections with their virtual-port ops, as ``build_processes`` makes them."""
    conns = []
    for src, dst in net.edges:
        if dst not in procs:
            continue  # Output reads the population it watches; Flatten is a port reshape
        while isinstance(net.nodes[src], ir.Flatten):
            (src,) = net.predecessors(src)
        s_node, d_node = net.nodes[src], net.nodes[dst]
        conv_src = isinstance(s_node, (ir.Conv2d, ir.SumPool2d))
        synaptic = conv_src or isinstance(s_node, ir.Dense)
        ops: List[list] = []
        if conv_src:
            ops.append(["transpose", [2, 1, 0]])  # Lava (W, H, C) -> IR (C, H, W)
        if tuple(s_node.out_shape) != tuple(d_node.in_shape):
            ops.append(["reshape", list(d_node.in_shape)])
        if isinstance(d_node, (ir.Conv2d, ir.SumPool2d)):
            ops.append(["transpose", [2, 1, 0]])  # IR (C, H, W) -> Lava (W, H, C)
        conns.append({
            "src": src, "src_port": "a_out" if synaptic else "s_out", "ops": ops,
            "dst": dst, "dst_port": "a_in" if isinstance(d_node, ir.LIFPopulation) else "s_in",
        })
    return conns


def render_script(spec: Mapping[str, Any]) -> str:
    """The text of ``run_lava.py`` for a ``NETWORK`` spec (see :func:`export_lava_script`)."""
    text = _TEMPLATE.read_text(encoding="utf-8")
    literal = json.dumps(spec, indent=1, ensure_ascii=True, sort_keys=False)
    if '"""' in literal or literal.endswith("\\"):
        raise ValidationError("node names cannot be written into the script literal "
                              "(they contain '\"\"\"' or end in a backslash)")
    for placeholder in ("__NETWORK_JSON__", "__NEUROHW_VERSION__"):
        if text.count(placeholder) != 1:  # pragma: no cover - template integrity
            raise RuntimeError(f"template {_TEMPLATE.name}: placeholder {placeholder} missing")
    text = text.replace("__NEUROHW_VERSION__", __version__)
    return text.replace("__NETWORK_JSON__", literal)


def export_lava_script(net: ir.Network, out_dir: PathLike, overwrite: bool = False) -> Path:
    """Write a standalone Lava script directory for ``net``; returns its path.

    ``out_dir`` gets ``run_lava.py`` (needs only lava-nc and numpy) and
    ``weights.npz`` (integer arrays only).  The directory is built under a
    temporary name beside ``out_dir`` and renamed into place, so a failure
    never leaves a half-written directory.  An existing non-empty
    ``out_dir`` is refused unless ``overwrite`` is true (then it is
    replaced as a whole).  Networks must have exactly one Input node.
    Raises :class:`~neurohw.errors.ValidationError` for a network the
    script cannot run and :class:`~neurohw.errors.FileFormatError` for a
    bad ``out_dir``.
    """
    out = Path(out_dir)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise FileFormatError(f"{out}: directory {parent} does not exist")
    if out.exists() and not out.is_dir():
        raise FileFormatError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileFormatError(f"{out}: directory exists and is not empty (use overwrite/--force)")
    spec, arrays = _graph_spec(net)
    script = render_script(spec)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
    try:
        (tmp / SCRIPT_NAME).write_text(script, encoding="utf-8")
        os.chmod(tmp / SCRIPT_NAME, 0o755)
        with open(tmp / WEIGHTS_NAME, "wb") as f:  # a file object: no ".npz" appended
            np.savez(f, **arrays)
        os.chmod(tmp, 0o755)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _replace_dir(new: Path, out: Path) -> None:
    """Move directory ``new`` onto ``out``; an existing ``out`` is swapped out, then removed."""
    if not out.exists():
        os.rename(new, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.rmdir(old)
    os.rename(out, old)
    try:
        os.rename(new, out)
    except BaseException:
        os.rename(old, out)  # put the previous export back
        raise
    shutil.rmtree(old, ignore_errors=True)
