"""Float views of integer parameters: the dequantized values neurohw writes
into NIR float fields, and the quantizer's view of what a chip weight means."""

from __future__ import annotations

from typing import Dict

import numpy as np

from . import ir
from .fixedpoint import effective_weights, scaled_bias
from .profiles import HardwareProfile

__all__ = ["float_view_lif", "float_view_weight"]

_TINY_DECAY = 2.0**-24  # stands in for dv = 0 (no leak): below one LSB of 24-bit state


def float_view_lif(pop: ir.LIFPopulation, dt_s: float) -> Dict[str, np.ndarray]:
    """Dequantized CubaLIF parameters of an integer population.

    With ``alpha_u = (du + 1) / 4096``, ``alpha_v = dv / 4096`` and state in
    units of ``2**-6`` of the integer state (``I = u / 64``, ``V = v / 64``),
    forward-Euler NIR CubaLIF reproduces the integer recursion up to rounding:
    ``tau_syn = dt / alpha_u``, ``tau_mem = dt / alpha_v``, ``w_in = tau_syn / dt``,
    ``r = tau_mem / dt``, ``v_leak = bias / (64 alpha_v)``,
    ``v_threshold = vth``, ``v_reset = 0``.  ``dv = 0`` (no leak) uses
    ``alpha_v = 2**-24``.
    """
    shape = pop.shape
    a_u = (pop.du + 1) / 4096.0
    a_v = pop.dv / 4096.0 if pop.dv > 0 else _TINY_DECAY
    ones = np.ones(shape, dtype=np.float64)
    bias = scaled_bias(pop.bias_mant, pop.bias_exp).astype(np.float64)
    return {
        "tau_syn": ones * (dt_s / a_u),
        "tau_mem": ones * (dt_s / a_v),
        "r": ones * (1.0 / a_v),
        "w_in": ones * (1.0 / a_u),
        "v_leak": bias / (64.0 * a_v),
        "v_threshold": ones * float(pop.vth),
        "v_reset": np.zeros(shape, dtype=np.float64),
    }


def float_view_weight(proj: ir._Weighted, profile: HardwareProfile) -> np.ndarray:
    """Dequantized weights: Lava's effective mantissa times ``2**weight_exp``."""
    eff = effective_weights(proj.weight, proj.sign_mode, proj.num_weight_bits, profile.weight_bits)
    return eff.astype(np.float64) * (2.0 ** proj.weight_exp)
