"""Deployment planning: place a quantized network on chip cores, check every
per-core limit, count events and estimate energy and latency (``neurohw map``).

See ``docs/deployment.md`` for the model, its constants and its error bounds.
"""

from .place import RESOURCES, Block, FitError, Placement, Projection, place, projections_of
from .plan import DeploymentPlan, plan
from .synapse import dense_list_bits, sparse_list_bits

__all__ = ["plan", "DeploymentPlan", "place", "Placement", "Block", "Projection", "FitError",
           "RESOURCES", "projections_of", "dense_list_bits", "sparse_list_bits"]
