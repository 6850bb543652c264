"""Export a network as a standalone Lava script: ``run_lava.py`` + ``weights.npz``.

The directory written by :func:`export_lava_script` runs anywhere lava-nc
0.10 and numpy are installed -- it does not import neurohw::

    python OUT_DIR/run_lava.py --input X.npy --out RUN.npz [--record v,u]

The script builds its Lava process graph with the code of
:func:`neurohw.backends.lava._builder.build_lava_graph` -- the builder the
Lava backend itself uses, copied into the script as text -- from the same
spec (:func:`neurohw.backends.lava.graph.lava_graph_spec`): the spec's node
list and connections are the script's ``NETWORK`` literal and its integer
arrays are ``weights.npz``.  It runs on ``Loihi2SimCfg(select_tag="fixed_pt")``
one sample at a time and writes the ``neurohw emulate`` output layout, so
the two outputs compare directly (bit-exact, per-neuron decays and
thresholds included; tested in ``tests/test_export_lava.py``).

``weights.npz`` holds only integer arrays (keys ``n<i>.<param>``, ``i`` the
node's index in ``NETWORK["nodes"]``); the script reads it with
``np.load(allow_pickle=False)``.  The script text comes from the template
module :mod:`neurohw.export._lava_script_template` (a Python file kept
lintable; it is read as text, never imported by the exporter) with the
spec and the shared builder code filled in.

A profile Lava's fixed_pt models do not compute is refused before anything
is written (:func:`neurohw.backends.lava.graph.check_lava_profile`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Mapping, Union

import numpy as np

from .. import __version__, ir
from ..fileio import output_mode
from ..errors import FileFormatError, ValidationError

__all__ = ["export_lava_script", "lava_processes", "SCRIPT_NAME", "WEIGHTS_NAME"]

SCRIPT_NAME = "run_lava.py"
WEIGHTS_NAME = "weights.npz"
_TEMPLATE = Path(__file__).with_name("_lava_script_template.py")

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


def _script_spec(net: ir.Network):
    """(NETWORK literal for the script, integer arrays for weights.npz): the Lava graph
    spec plus what the script's command line needs (the one input, the populations)."""
    from ..backends.lava.graph import lava_graph_spec
    from ..emulate.engine import input_payload_bits

    spec, arrays = lava_graph_spec(net)  # refuses profiles and nodes Lava cannot run
    inputs = list(net.of_type(ir.InputNode))
    if len(inputs) != 1:
        raise ValidationError(
            f"network has {len(inputs)} Input nodes; the Lava script takes one --input "
            f"array, as 'neurohw emulate' does")
    in_name = inputs[0]
    bits = input_payload_bits(net, in_name)
    spec = {
        "neurohw_version": __version__,
        "profile": net.profile.name,
        "dt_s": net.dt_s,
        "input": {"name": in_name, "shape": list(net.nodes[in_name].shape),
                  "max_value": 1 if bits == 0 else 2**bits - 1},
        "populations": list(net.populations),
        "sizes": {k: list(p.shape) for k, p in net.populations.items()},
        **spec,
    }
    return spec, arrays


_SHARED = "# __SHARED_LAVA_CODE__\n"


def render_script(spec: Mapping[str, Any]) -> str:
    """The text of ``run_lava.py`` for a ``NETWORK`` spec (see :func:`export_lava_script`):
    the template with the spec and the shared Lava code
    (:func:`neurohw.backends.lava.graph.standalone_source`) filled in."""
    from ..backends.lava.graph import standalone_source

    text = _TEMPLATE.read_text(encoding="utf-8")
    literal = json.dumps(spec, indent=1, ensure_ascii=True, sort_keys=False)
    if '"""' in literal or literal.endswith("\\"):
        raise ValidationError("node names cannot be written into the script literal "
                              "(they contain '\"\"\"' or end in a backslash)")
    for placeholder in ("__NETWORK_JSON__", "__NEUROHW_VERSION__", _SHARED):
        if text.count(placeholder) != 1:  # pragma: no cover - template integrity
            raise RuntimeError(f"template {_TEMPLATE.name}: placeholder {placeholder} missing")
    text = text.replace("__NEUROHW_VERSION__", __version__)
    text = text.replace(_SHARED, standalone_source())
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
    spec, arrays = _script_spec(net)
    script = render_script(spec)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
    try:
        (tmp / SCRIPT_NAME).write_text(script, encoding="utf-8")
        os.chmod(tmp / SCRIPT_NAME, output_mode(executable=True))  # 0755 under umask 022
        with open(tmp / WEIGHTS_NAME, "wb") as f:  # a file object: no ".npz" appended
            np.savez(f, **arrays)
        os.chmod(tmp, output_mode(executable=True))  # mkdtemp made it 0700
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
