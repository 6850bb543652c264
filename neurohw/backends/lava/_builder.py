"""The one Lava process-graph builder, shared as code by the backend and the exported script.

Everything between the ``standalone`` markers below needs only numpy and
lava-nc (no neurohw import): :mod:`neurohw.export.lava_script` copies that
text verbatim into every ``run_lava.py`` it writes, and the Lava backend
(:mod:`neurohw.backends.lava.runner`), ``neurohw bench`` and the netx runner
import it from here.  So the standalone script and ``run_lava`` build their
process graphs with literally the same code, from the same spec.

The spec (made by :func:`neurohw.backends.lava.graph.lava_graph_spec`) is
plain JSON-able data plus integer arrays:

* ``spec["nodes"]``: a list of ``{"name", "kind", ...}`` with ``kind`` one of
  ``"Input"`` (``shape``), ``"LIF"`` (``shape``), ``"Dense"`` (``sign_mode``,
  ``delays``: bool) or ``"Conv"``; the node's integer parameters are in
  ``params["n<i>.<param>"]`` (``i`` its index in the list):
  LIF ``du``, ``dv``, ``vth`` (0-d when every neuron shares the value, else
  per neuron, int64), ``bias_mant``, ``bias_exp`` (per neuron);
  Dense ``weights``, ``weight_exp``, ``num_weight_bits``,
  ``num_message_bits`` and, with delays, ``delays``; ``"Sparse"`` (``sign_mode``,
  ``delays``: bool, ``shape``: ``[n_out, n_in]``) the CSR arrays ``indptr``,
  ``indices``, ``weights`` (the stored entries) and, with delays, ``delays`` (one per
  stored entry), plus Dense's scalars -- a Lava ``Sparse`` / ``DelaySparse``; Conv the keyword
  arguments of Lava's ``Conv`` (``weight``, ``input_shape``, ``stride``,
  ``padding``, ``dilation``, ``groups``, ``num_message_bits``).
* ``spec["connections"]``: ``{"src", "src_port", "ops", "dst", "dst_port"}``,
  ``ops`` a list of ``["transpose", axes]`` / ``["reshape", shape]`` applied
  to the source port (Lava virtual ports) before connecting.
"""

import numpy as np

from ...signmode import LAVA_SIGN_MODE  # in run_lava.py: signmode.py's standalone region

# ---- standalone: begin (copied verbatim into exported run_lava.py; numpy + lava only) ----

def _node_params(params, index):
    """``{param: array}`` of node ``index`` from the flat ``"n<i>.<param>"`` mapping."""
    prefix = f"n{index}."
    return {k[len(prefix):]: params[k] for k in params if k.startswith(prefix)}


def _neuron_value(arr):
    """A LIF decay/threshold: a Python int when shared by all neurons, else an int64 array."""
    arr = np.asarray(arr)
    return int(arr) if arr.ndim == 0 else arr.astype(np.int64)


def build_lava_graph(spec, params, inputs):
    """Create and connect the Lava processes of a graph spec; returns name -> process.

    ``params`` maps ``"n<i>.<param>"`` to integer arrays; ``inputs`` maps each
    Input node name to a ``(T, n)`` integer array, fed by a ``RingBuffer``
    (row ``t`` is sent at step ``t + 1``).
    """
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.utils.weightutils import SignMode

    procs = {}
    for i, node in enumerate(spec["nodes"]):
        kind, name, p = node["kind"], node["name"], _node_params(params, i)
        if kind == "Input":
            x = np.asarray(inputs[name])
            data = x.reshape((x.shape[0],) + tuple(node["shape"]))  # (T, *shape)
            procs[name] = RingBuffer(data=np.moveaxis(data, 0, -1).astype(np.int32).copy())
        elif kind == "LIF":
            procs[name] = LIF(shape=tuple(node["shape"]), du=_neuron_value(p["du"]),
                              dv=_neuron_value(p["dv"]), vth=_neuron_value(p["vth"]),
                              bias_mant=np.asarray(p["bias_mant"]).astype(np.int32),
                              bias_exp=np.asarray(p["bias_exp"]).astype(np.int32), name=name)
        elif kind == "Dense":
            kwargs = dict(weights=np.asarray(p["weights"]).astype(np.int32),
                          weight_exp=int(p["weight_exp"]),
                          num_weight_bits=int(p["num_weight_bits"]),
                          sign_mode=SignMode(LAVA_SIGN_MODE[node["sign_mode"]]),
                          num_message_bits=int(p["num_message_bits"]), name=name)
            if node["delays"]:
                delays = np.asarray(p["delays"]).astype(int)  # Lava checks dtype == int
                procs[name] = DelayDense(delays=delays, max_delay=int(delays.max()), **kwargs)
            else:
                procs[name] = Dense(**kwargs)
        elif kind == "Sparse":
            from lava.proc.sparse.process import DelaySparse, Sparse
            from scipy.sparse import csr_matrix  # a dependency of lava-nc

            shape = tuple(int(v) for v in node["shape"])
            pattern = (np.asarray(p["indices"]).astype(np.int64),
                       np.asarray(p["indptr"]).astype(np.int64))
            weights = csr_matrix((np.asarray(p["weights"]).astype(np.int32),) + pattern,
                                 shape=shape)
            kwargs = dict(weights=weights, weight_exp=int(p["weight_exp"]),
                          num_weight_bits=int(p["num_weight_bits"]),
                          sign_mode=SignMode(LAVA_SIGN_MODE[node["sign_mode"]]),
                          num_message_bits=int(p["num_message_bits"]), name=name)
            if node["delays"]:
                # Lava checks delays.dtype == int; same structure as the weights
                delays = csr_matrix((np.asarray(p["delays"]).astype(int),) + pattern,
                                    shape=shape)
                top = int(np.max(p["delays"])) if np.size(p["delays"]) else 0
                procs[name] = DelaySparse(delays=delays, max_delay=top, **kwargs)
            else:
                procs[name] = Sparse(**kwargs)
        elif kind == "Conv":
            procs[name] = Conv(weight=np.asarray(p["weight"]).astype(np.int32),
                               input_shape=tuple(int(v) for v in p["input_shape"]),
                               stride=tuple(int(v) for v in p["stride"]),
                               padding=tuple(int(v) for v in p["padding"]),
                               dilation=tuple(int(v) for v in p["dilation"]),
                               groups=int(p["groups"]),
                               num_message_bits=int(p["num_message_bits"]), name=name)
        else:
            raise ValueError(f"node '{name}': unknown kind {kind!r} in the graph spec")
    for conn in spec["connections"]:
        port = getattr(procs[conn["src"]], conn["src_port"])
        for op, arg in conn["ops"]:  # virtual ports: (W,H,C) <-> (C,H,W), Flatten
            port = port.transpose(list(arg)) if op == "transpose" else port.reshape(tuple(arg))
        port.connect(getattr(procs[conn["dst"]], conn["dst_port"]))
    return procs


def attach_monitors(procs, record, num_steps):
    """A Lava ``Monitor`` per (process, variable); ``procs`` maps a name to a LIF-like process.

    ``record`` names any of ``"spikes"`` (``s_out``), ``"v"``, ``"u"``.
    Returns a list of ``(name, var, monitor, probed port or Var)``.
    """
    from lava.proc.monitor.process import Monitor

    monitors = []
    for name, proc in procs.items():
        for var in record:
            target = {"spikes": proc.s_out, "v": getattr(proc, "v", None),
                      "u": getattr(proc, "u", None)}[var]
            mon = Monitor()
            mon.probe(target, num_steps)
            monitors.append((name, var, mon, target))
    return monitors


def read_monitors(monitors, num_steps):
    """``{(name, var): (T, n) array}``: spikes as int8 0/1, v and u as int64."""
    out = {}
    for name, var, mon, target in monitors:
        arr = np.asarray(mon.get_data()[target.process.name][target.name])
        arr = arr.reshape(num_steps, -1)
        out[(name, var)] = ((arr != 0).astype(np.int8) if var == "spikes"
                            else np.rint(arr).astype(np.int64))
    return out


def run_fixed_pt(anchor, monitors, num_steps, select_tag="fixed_pt"):
    """Run the graph of ``anchor`` for ``num_steps`` on ``Loihi2SimCfg``, read, stop."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    try:
        anchor.run(condition=RunSteps(num_steps=num_steps),
                   run_cfg=Loihi2SimCfg(select_tag=select_tag))
        return read_monitors(monitors, num_steps)
    finally:
        anchor.stop()
# ---- standalone: end ----
