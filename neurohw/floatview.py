"""Float views of integer parameters: the dequantized values neurohw writes
into NIR float fields, and the quantizer's view of what a chip weight means."""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from . import ir
from .fixedpoint import effective_weights, scaled_bias
from .profiles import HardwareProfile

__all__ = ["float_view_lif", "float_view_weight"]

_TINY_DECAY = 2.0**-24  # stands in for dv = 0 (no leak): below one LSB of 24-bit state


def float_view_lif(pop: ir.LIFPopulation, dt_s: float,
                   profile: Optional[HardwareProfile] = None) -> Dict[str, np.ndarray]:
    """Dequantized CubaLIF parameters of an integer population, per neuron.

    With ``D = profile.decay_bits`` (12), ``S = profile.vth_shift`` (6) and
    ``A = profile.act_shift`` (6): ``alpha_u = (du + 1) / 2**D``,
    ``alpha_v = dv / 2**D`` and state in units of ``2**-S`` of the integer
    state (``I = u / 2**S``, ``V = v / 2**S``), forward-Euler NIR CubaLIF
    reproduces the integer recursion up to rounding:
    ``tau_syn = dt / alpha_u``, ``tau_mem = dt / alpha_v`` (seconds),
    ``w_in = 2**(A - S) / alpha_u``, ``r = 1 / alpha_v``,
    ``v_leak = bias / (2**S alpha_v)``, ``v_threshold = vth``, ``v_reset = 0``.
    ``dv = 0`` (no leak) uses ``alpha_v = 2**-24``.  ``du``, ``dv``, ``vth``
    and the bias may differ per neuron; every array has shape ``pop.shape``.
    Without ``profile`` the Loihi widths (12, 6, 6) are used.
    """
    decay_bits = 12 if profile is None else profile.decay_bits
    vth_shift = 6 if profile is None else profile.vth_shift
    act_shift = 6 if profile is None else profile.act_shift
    unity = float(2**decay_bits)
    a_u = (pop.du.astype(np.float64) + 1.0) / unity
    dv = pop.dv.astype(np.float64)
    a_v = np.where(dv > 0, dv / unity, _TINY_DECAY)
    bias = scaled_bias(pop.bias_mant, pop.bias_exp).astype(np.float64)
    return {
        "tau_syn": dt_s / a_u,
        "tau_mem": dt_s / a_v,
        "r": 1.0 / a_v,
        "w_in": 2.0 ** (act_shift - vth_shift) / a_u,
        "v_leak": bias / (2.0**vth_shift * a_v),
        "v_threshold": pop.vth.astype(np.float64),
        "v_reset": np.zeros(pop.shape, dtype=np.float64),
    }


def float_view_weight(proj: ir._Weighted, profile: HardwareProfile) -> np.ndarray:
    """Dequantized weights: Lava's effective mantissa times ``2**weight_exp``
    (a Sparse projection's as the dense ``(n_out, n_in)`` matrix)."""
    weight = proj.dense_weight() if isinstance(proj, ir.Sparse) else proj.weight
    eff = effective_weights(weight, proj.sign_mode, proj.num_weight_bits, profile.weight_bits)
    return eff.astype(np.float64) * (2.0 ** proj.weight_exp)
