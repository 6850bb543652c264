"""Size limits on what neurohw reads, checked before anything is allocated.

A NIR file or an input array declares its sizes up front (HDF5 dataset
shapes, ``.npy`` headers, ``Input`` shapes); a file that declares a billion
neurons or a terabyte array is refused from those declarations, naming the
file (and node or archive member) and the size, before any data is read.

Every limit has a documented default and can be raised (or lowered) with an
environment variable (see ``docs/limits.md``):

========================  ===========================  ===============================
field                     environment variable         default
========================  ===========================  ===============================
``max_elements``          ``NEUROHW_MAX_ELEMENTS``     100,000,000 elements per array
``max_total_elements``    ``NEUROHW_MAX_TOTAL_ELEMENTS`` 400,000,000 elements per NIR file
``max_neurons``           ``NEUROHW_MAX_NEURONS``      10,000,000 per node (population)
``max_total_neurons``     ``NEUROHW_MAX_TOTAL_NEURONS`` 100,000,000 per network
``max_input_bytes``       ``NEUROHW_MAX_INPUT_BYTES``  4 GiB per input array (.npy/.npz)
========================  ===========================  ===============================
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Mapping, Optional

from .errors import ValidationError

__all__ = ["Limits", "get_limits", "ENV_VARS"]

ENV_VARS = {
    "max_elements": "NEUROHW_MAX_ELEMENTS",
    "max_total_elements": "NEUROHW_MAX_TOTAL_ELEMENTS",
    "max_neurons": "NEUROHW_MAX_NEURONS",
    "max_total_neurons": "NEUROHW_MAX_TOTAL_NEURONS",
    "max_input_bytes": "NEUROHW_MAX_INPUT_BYTES",
}
"""The environment variable that overrides each :class:`Limits` field."""


@dataclass(frozen=True)
class Limits:
    """Upper bounds on declared sizes (all counts are ``int``, inclusive).

    * ``max_elements``: elements of any one array in a NIR file (a weight
      matrix, a parameter array, an edge list) -- 10^8 float64 is 800 MB;
    * ``max_total_elements``: elements of all arrays of one NIR file together;
    * ``max_neurons``: elements of one node's shape (a neuron population, an
      ``Input``, a convolution's output);
    * ``max_total_neurons``: neurons of all neuron nodes of one network;
    * ``max_input_bytes``: bytes of one input array (``.npy`` or one ``.npz``
      member) as its header declares them.
    """

    max_elements: int = 100_000_000
    max_total_elements: int = 400_000_000
    max_neurons: int = 10_000_000
    max_total_neurons: int = 100_000_000
    max_input_bytes: int = 4 * 2**30

    def env_name(self, field: str) -> str:
        """The environment variable that raises ``field`` (for error messages)."""
        return ENV_VARS[field]


def get_limits(environ: Optional[Mapping[str, str]] = None) -> Limits:
    """The defaults, overridden by any ``NEUROHW_MAX_*`` variable set in ``environ``
    (default ``os.environ``); a value that is not a positive integer is refused."""
    env = os.environ if environ is None else environ
    values = {}
    for f in fields(Limits):
        var = ENV_VARS[f.name]
        text = env.get(var)
        if text is None or not text.strip():
            continue
        try:
            value = int(text.strip().replace("_", ""))
        except ValueError:
            raise ValidationError(f"{var}={text!r} is not an integer") from None
        if value < 1:
            raise ValidationError(f"{var}={value} must be >= 1")
        values[f.name] = value
    return Limits(**values)
