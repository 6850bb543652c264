"""Random integer networks across the whole parameter range, for tests and demos.

:func:`random_network` draws every integer uniformly from the profile's full
range (decays 0..4095, thresholds up to the profile maximum, negative and
positive exponents, every sign mode and weight precision), so round-trip and
bit-exactness tests exercise extremes, not only hand-picked values.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from . import ir
from .profiles import HardwareProfile, get_profile

__all__ = ["random_population", "random_dense", "random_network"]


def _draw(rng: np.random.Generator, lo: int, hi: int, size=None) -> np.ndarray:
    return rng.integers(lo, hi, size=size, endpoint=True)


def random_population(rng: np.random.Generator, name: str, shape, profile: HardwareProfile,
                      per_neuron: bool = True) -> ir.LIFPopulation:
    """A LIF population with du, dv, vth, bias drawn from the full profile range."""
    shape = tuple(shape)
    size = shape if per_neuron else None
    return ir.LIFPopulation(
        name,
        shape=shape,
        du=int(_draw(rng, *profile.range_of("du"))),
        dv=int(_draw(rng, *profile.range_of("dv"))),
        vth=int(_draw(rng, *profile.range_of("vth"))),
        bias_mant=_draw(rng, *profile.range_of("bias_mant"), size=size),
        bias_exp=_draw(rng, *profile.range_of("bias_exp"), size=size),
    )


def random_dense(rng: np.random.Generator, name: str, n_out: int, n_in: int,
                 profile: HardwareProfile, delays: bool = False,
                 graded: bool = False) -> ir.Dense:
    """A Dense projection with a random sign mode, precision, exponent and weights."""
    sign_mode = str(rng.choice(ir.SIGN_MODES))
    lo, hi = profile.weight_range(sign_mode)
    delay = _draw(rng, *profile.range_of("delay"), size=(n_out, n_in)) if delays else None
    bits = 0
    if graded and profile.graded_spike_bits:
        bits = int(_draw(rng, 1, profile.graded_spike_bits))
    return ir.Dense(
        name,
        weight=_draw(rng, lo, hi, size=(n_out, n_in)),
        weight_exp=int(_draw(rng, *profile.range_of("weight_exp"))),
        num_weight_bits=int(_draw(rng, *profile.range_of("num_weight_bits"))),
        sign_mode=sign_mode,
        delay=delay,
        num_message_bits=bits,
    )


def random_network(rng: np.random.Generator, profile: HardwareProfile | str = "loihi2",
                   max_layers: int = 3, max_width: int = 12, conv: bool = True,
                   recurrent: bool = True, delays: bool = True) -> ir.Network:
    """A random feed-forward stack, optionally with a conv front end and recurrence.

    Layout: Input -> [Conv2d -> LIF -> SumPool2d -> LIF -> Flatten ->] (Dense -> LIF)
    x 1..max_layers -> Output, with random self- or backward recurrent Dense
    projections.  ``dt_s`` is drawn log-uniformly in ``[1e-5, 1e-1]`` seconds.
    """
    profile = get_profile(profile)
    nodes: Dict[str, ir.Node] = {}
    edges: List[Tuple[str, str]] = []
    pops: List[str] = []

    def add(node: ir.Node, src: str | None) -> str:
        nodes[node.name] = node
        if src is not None:
            edges.append((src, node.name))
        return node.name

    if conv and rng.random() < 0.5:
        c_in = int(rng.integers(1, 3))
        h = int(rng.integers(4, 9))
        w = int(rng.integers(4, 9))
        last = add(ir.InputNode("input", (c_in, h, w)), None)
        groups = int(rng.choice([1, c_in])) if c_in > 1 else 1
        c_out = groups * int(rng.integers(1, 3))
        k = int(rng.integers(1, 4))
        sign_mode = str(rng.choice(ir.SIGN_MODES))
        conv_node = ir.Conv2d(
            "conv",
            weight=_draw(rng, *profile.weight_range(sign_mode), size=(c_out, c_in // groups, k, k)),
            weight_exp=int(_draw(rng, *profile.range_of("weight_exp"))),
            num_weight_bits=int(_draw(rng, *profile.range_of("num_weight_bits"))),
            sign_mode=sign_mode,
            input_shape=(c_in, h, w),
            stride=int(rng.integers(1, 3)),
            padding=int(rng.integers(0, k)),
            dilation=1,
            groups=groups,
        )
        last = add(conv_node, last)
        last = add(random_population(rng, "conv_lif", conv_node.out_shape, profile), last)
        pops.append(last)
        c, hh, ww = conv_node.out_shape
        kp = 2 if min(hh, ww) >= 2 else 1
        pool = ir.SumPool2d("pool", input_shape=(c, hh, ww), kernel_size=kp, stride=kp)
        last = add(pool, last)
        last = add(random_population(rng, "pool_lif", pool.out_shape, profile), last)
        pops.append(last)
        last = add(ir.Flatten("flat", input_shape=pool.out_shape), last)
        width = int(np.prod(pool.out_shape))
    else:
        width = int(rng.integers(1, max_width + 1))
        last = add(ir.InputNode("input", (width,)), None)
    for i in range(int(rng.integers(1, max_layers + 1))):
        n = int(rng.integers(1, max_width + 1))
        last = add(random_dense(rng, f"dense{i}", n, width, profile,
                                delays=delays and rng.random() < 0.3), last)
        last = add(random_population(rng, f"lif{i}", (n,), profile), last)
        pops.append(last)
        width = n
    flat_pops = [p for p in pops if len(nodes[p].shape) == 1]
    if recurrent and rng.random() < 0.5 and flat_pops:
        src = flat_pops[-1]
        dst = flat_pops[int(rng.integers(0, len(flat_pops)))]
        n_src = nodes[src].size
        n_dst = nodes[dst].size
        rec = random_dense(rng, "recurrent", n_dst, n_src, profile)
        nodes[rec.name] = rec
        edges.extend([(src, rec.name), (rec.name, dst)])
    add(ir.OutputNode("output", (width,)), last)
    dt_s = float(10 ** rng.uniform(-5, -1))
    return ir.Network(nodes=nodes, edges=tuple(edges), profile=profile, dt_s=dt_s)
