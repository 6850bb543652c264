"""Summarize a NIR file: nodes, types, shapes, neurons, synapses, and for a
quantized file the profile, dt and bits used per layer against the profile."""

from __future__ import annotations

import json

from ..nirgraph import load_nir
from ..nirio import is_quantized
from ..validate import validate_float_graph
from ..summary import format_summary, summarize

HELP = "summarize a NIR file (float or quantized)"


def add_args(p) -> None:
    p.add_argument("file", metavar="FILE.nir", help="a NIR (HDF5) file")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args) -> int:
    graph = load_nir(args.file)
    if not is_quantized(graph):  # a float file: every check quantize makes, before the summary
        validate_float_graph(graph, str(args.file), chip=True)
    summary = summarize(graph, source=str(args.file))
    if args.json:
        print(json.dumps(summary, indent=2, default=_jsonable))
    else:
        print(format_summary(summary))
    return 0


def _jsonable(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
