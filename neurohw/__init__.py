"""neurohw: neuromorphic hardware emulation and deployment for spiking networks.

Quantize float NIR graphs to integer LIF networks for a chip profile (Loihi 1,
Loihi 2, generic), emulate them bit-exactly, verify against Lava, export them.

``import neurohw`` needs only numpy, h5py and nir; Lava, PyTorch and the
plotting stack are imported by the features that use them.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import ir, profiles
from .errors import (
    FileFormatError,
    MissingDependencyError,
    NeurohwError,
    OverflowPolicy,
    UnquantizedError,
    ValidationError,
)
from .ir import (
    Conv2d,
    Dense,
    Flatten,
    InputNode,
    LIFPopulation,
    Network,
    OutputNode,
    Sparse,
    SumPool2d,
)
from .nirgraph import load_nir
from .nirio import is_quantized, network_from_nir, network_to_nir, read_network, write_network
from .profiles import LOIHI1, LOIHI2, HardwareProfile, generic, get_profile

__all__ = [
    "__version__",
    "ir",
    "profiles",
    "NeurohwError",
    "ValidationError",
    "FileFormatError",
    "UnquantizedError",
    "MissingDependencyError",
    "OverflowPolicy",
    "HardwareProfile",
    "LOIHI1",
    "LOIHI2",
    "generic",
    "get_profile",
    "Network",
    "InputNode",
    "OutputNode",
    "LIFPopulation",
    "Dense",
    "Sparse",
    "Conv2d",
    "SumPool2d",
    "Flatten",
    "is_quantized",
    "load_nir",
    "network_from_nir",
    "network_to_nir",
    "read_network",
    "write_network",
]
