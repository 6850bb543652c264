"""Placement: split populations into core-sized blocks and allocate them to cores and chips.

Algorithm (``docs/deployment.md``):

1. **Projections.**  Every Dense, Conv2d and SumPool2d whose spikes land on a
   LIF population becomes a :class:`Projection` (source, target, connectivity).
   A SumPool2d is a grouped convolution with unit 1-bit weights.
2. **Splitting.**  A ``(C, H, W)`` population fed only by convolutions is cut
   into boxes of ``c x h x w`` neurons (channels and space); candidate box
   shapes (powers of two and whole dimensions) are tried in order of the number
   of cores they need and the first whose every box fits all four per-core
   limits wins.  Any other population is cut into ``k`` equal contiguous
   ranges, ``k`` starting at the lower bound set by the totals and growing until
   every block fits.  A single neuron that cannot fit is refused
   (:class:`FitError` naming node, resource, need and limit).
3. **Output axons** (one per source neuron and destination core) are counted
   after all targets are split; a population whose blocks exceed the limit is
   split further and the loop repeats.
4. **Allocation** is greedy and traffic-aware (after nengo-loihi's
   ``GreedyInterchip``): cores of a chip are filled one at a time with the
   unplaced block that sends or receives the most axons to or from the blocks
   already on that chip (ties and cold starts in network order); a new chip starts
   from the traffic of the previous one.  Cores lie on a 2-D mesh of tiles
   (``MESH``), chips side by side along x, so hop counts are Manhattan distances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import ir
from ..errors import ValidationError
from .synapse import (axon_bits, delay_field_bits, dense_list_bits, index_field_bits,
                      weight_field_bits)

__all__ = ["RESOURCES", "FitError", "Projection", "Block", "Placement", "projections_of",
           "place", "MESH"]

RESOURCES = ("compartments", "synapse_bits", "in_axons", "out_axons")
"""The four per-core resources checked, in report order."""

MESH = {
    "loihi1": {"cores_per_tile": 4, "tiles_x": 8, "tiles_y": 4,
               "source": "Davies 2018 (4 cores per tile, inferred from 32 tiles x 4 cores); "
                         "SANA-FE arch/loihi.yaml: 8 x 4 mesh of 4-core tiles"},
}
_MESH_ASSUMED = {"cores_per_tile": 4, "tiles_x": 8, "tiles_y": 4,
                 "source": "assumed: Loihi 1 mesh geometry (no published layout for this profile)"}


class FitError(ValidationError):
    """The network cannot be placed: names node, resource, need and limit."""


def mesh_of(profile) -> dict:
    """Tile mesh geometry of ``profile`` (cores per tile, tiles in x and y, source)."""
    m = dict(MESH.get(profile.name, _MESH_ASSUMED))
    per_chip = m["tiles_x"] * m["tiles_y"] * m["cores_per_tile"]
    if per_chip < profile.cores_per_chip:  # widen the mesh for larger chips
        m["tiles_y"] = -(-profile.cores_per_chip // (m["tiles_x"] * m["cores_per_tile"]))
    return m


# --------------------------------------------------------------------------
# projections
# --------------------------------------------------------------------------
@dataclass
class Projection:
    """One weighted path from a spike source to a LIF population.

    ``kind`` is ``"dense"`` (``weight`` is ``(n_dst, n_src)``) or ``"conv"``
    (``conv`` is an :class:`~neurohw.ir.Conv2d`; a SumPool2d becomes one with
    unit weights).  ``src`` is an Input or LIF population, ``dst`` a LIF population.
    """

    name: str
    kind: str
    src: str
    dst: str
    n_src: int
    n_dst: int
    num_weight_bits: int
    delay_bits: int = 0
    weight: Optional[np.ndarray] = None
    conv: Optional[ir.Conv2d] = None
    src_on_chip: bool = True
    _nz: Optional[np.ndarray] = field(default=None, repr=False)

    @property
    def nz_kernel(self) -> np.ndarray:
        """Non-zero mask of the conv kernel ``(C_out, C_in/groups, kh, kw)``."""
        return self.conv.weight != 0

    def dense_nz(self) -> np.ndarray:
        """Non-zero mask ``(n_dst, n_src)`` (a conv is materialized once and cached)."""
        if self.kind == "dense":
            return self.weight != 0
        if self._nz is None:
            self._nz = conv_dense_mask(self.conv)
        return self._nz

    def num_synapses(self) -> int:
        """Non-zero connections (padding excluded)."""
        if self.kind == "dense":
            return int(np.count_nonzero(self.weight))
        return int(self.conv.num_synapses)

    def fanout(self) -> np.ndarray:
        """Non-zero fan-out per source neuron, ``(n_src,)`` int64."""
        if self.kind == "dense":
            return np.count_nonzero(self.weight, axis=0).astype(np.int64)
        return conv_transpose_count(self.conv, np.ones(self.conv.out_shape, np.int64))

    def fanin_sum(self, spikes: np.ndarray) -> np.ndarray:
        """Synaptic operations landing on each target neuron for source activity
        ``spikes`` (``(..., n_src)`` 0/1 or counts): ``spikes @ nz(W).T``, int64, exact."""
        s = np.asarray(spikes)
        if self.kind == "dense":
            nz = (self.weight != 0).astype(np.float64)
            out = s.astype(np.float64) @ nz.T  # exact: every partial sum < 2**53
            return np.rint(out).astype(np.int64)
        return conv_count(self.conv, s)


def _as_conv(node) -> ir.Conv2d:
    if isinstance(node, ir.Conv2d):
        return node
    c = node.input_shape[0]
    kh, kw = node.kernel_size
    return ir.Conv2d(name=node.name, weight=np.ones((c, 1, kh, kw), np.int32), weight_exp=0,
                     num_weight_bits=1, sign_mode="excitatory", input_shape=node.input_shape,
                     stride=node.stride, padding=node.padding, groups=c)


def _forward_targets(net: ir.Network, name: str) -> List[str]:
    out, todo = [], list(net.successors(name))
    while todo:
        cur = todo.pop(0)
        node = net.nodes[cur]
        if isinstance(node, ir.Flatten):
            todo.extend(net.successors(cur))
        elif isinstance(node, ir.LIFPopulation):
            out.append(cur)
    return out


SPARSE_MAP_LIMIT = 1 << 24
"""Largest ``n_out * n_in`` of a Sparse projection the mapper takes (as a dense matrix)."""


def projections_of(net: ir.Network) -> List[Projection]:
    """Every on-chip projection of ``net`` (those ending on a LIF population).

    A Sparse projection (``ir.Sparse``) is placed as the Dense with the same matrix
    (the synapse encoding is then chosen as for any Dense); one beyond
    :data:`SPARSE_MAP_LIMIT` matrix entries is refused."""
    for name, node in net.of_type(ir.Sparse).items():
        n_out, n_in = node.weight.shape
        if n_out * n_in > SPARSE_MAP_LIMIT:
            raise ValidationError(
                f"node '{name}': a {n_out}x{n_in} Sparse projection is beyond the mapper's "
                f"{SPARSE_MAP_LIMIT}-entry limit (it counts synapses on the dense matrix)")
    out = []
    for name, node in net.of_type((ir.Dense, ir.Sparse, ir.Conv2d, ir.SumPool2d)).items():
        if isinstance(node, ir.Sparse):
            node = ir.Dense(name, weight=node.dense_weight(), weight_exp=node.weight_exp,
                            num_weight_bits=node.num_weight_bits, sign_mode=node.sign_mode,
                            num_message_bits=node.num_message_bits, delay=node.dense_delay())
        src = net.spike_source(name)
        n_src = int(np.prod(net.nodes[src].out_shape))
        for dst in _forward_targets(net, name):
            n_dst = net.nodes[dst].size
            on_chip = isinstance(net.nodes[src], ir.LIFPopulation)
            if isinstance(node, ir.Dense):
                dbits = delay_field_bits(int(node.delay.max())) if node.delay is not None else 0
                out.append(Projection(name, "dense", src, dst, n_src, n_dst,
                                      int(node.num_weight_bits), dbits,
                                      weight=np.asarray(node.weight), src_on_chip=on_chip))
            else:
                conv = _as_conv(node)
                out.append(Projection(name, "conv", src, dst, n_src, n_dst,
                                      int(conv.num_weight_bits), 0, conv=conv,
                                      src_on_chip=on_chip))
    return out


# --------------------------------------------------------------------------
# convolution helpers (exact integer counting)
# --------------------------------------------------------------------------
def _tap_ranges(n_in, n_out, k, s, p, d):
    """For each tap j: output indices o and input indices i = o*s - p + j*d inside [0, n_in)."""
    o = np.arange(n_out)
    res = []
    for j in range(k):
        i = o * s - p + j * d
        ok = (i >= 0) & (i < n_in)
        res.append((o[ok], i[ok]))
    return res


def conv_count(conv: ir.Conv2d, spikes: np.ndarray) -> np.ndarray:
    """Per output neuron, the number of (spiking input, non-zero tap) pairs:
    a convolution of ``spikes`` (``(..., C*H*W)``) with the kernel's non-zero mask.
    Integer (``int64``) arithmetic throughout."""
    s = np.asarray(spikes)
    lead = s.shape[:-1]
    c, h, w = conv.input_shape
    co, cig, kh, kw = conv.weight.shape
    _, oh, ow = conv.out_shape
    g = conv.groups
    x = s.reshape(-1, c, h, w).astype(np.int64)
    nz = (conv.weight != 0).astype(np.int64)
    out = np.zeros((x.shape[0], co, oh, ow), np.int64)
    rows = _tap_ranges(h, oh, kh, conv.stride[0], conv.padding[0], conv.dilation[0])
    cols = _tap_ranges(w, ow, kw, conv.stride[1], conv.padding[1], conv.dilation[1])
    cog = co // g
    for gi in range(g):
        xs = x[:, gi * cig:(gi + 1) * cig]
        for ky, (oy, iy) in enumerate(rows):
            for kx, (ox, ix) in enumerate(cols):
                if oy.size == 0 or ox.size == 0:
                    continue
                k = nz[gi * cog:(gi + 1) * cog, :, ky, kx]  # (cog, cig)
                if not k.any():
                    continue
                patch = xs[:, :, iy][:, :, :, ix]  # (B, cig, |oy|, |ox|)
                out[:, gi * cog:(gi + 1) * cog, oy[:, None], ox[None, :]] += \
                    np.einsum("oc,bcyx->boyx", k, patch)
    return out.reshape(lead + (co * oh * ow,))


def conv_transpose_count(conv: ir.Conv2d, out_weights: np.ndarray) -> np.ndarray:
    """Per input neuron, Σ over the output neurons it reaches through a non-zero tap of
    ``out_weights[output]`` (``(C_out, OH, OW)``): with ones, the non-zero fan-out."""
    c, h, w = conv.input_shape
    co, cig, kh, kw = conv.weight.shape
    g = conv.groups
    cog = co // g
    y = np.asarray(out_weights, np.int64).reshape(conv.out_shape)
    nz = (conv.weight != 0).astype(np.int64)
    res = np.zeros((c, h, w), np.int64)
    _, oh, ow = conv.out_shape
    rows = _tap_ranges(h, oh, kh, conv.stride[0], conv.padding[0], conv.dilation[0])
    cols = _tap_ranges(w, ow, kw, conv.stride[1], conv.padding[1], conv.dilation[1])
    for gi in range(g):
        ys = y[gi * cog:(gi + 1) * cog]
        for ky, (oy, iy) in enumerate(rows):
            for kx, (ox, ix) in enumerate(cols):
                if oy.size == 0 or ox.size == 0:
                    continue
                k = nz[gi * cog:(gi + 1) * cog, :, ky, kx]  # (cog, cig)
                contrib = np.einsum("oc,oyx->cyx", k, ys[:, oy][:, :, ox])
                res[gi * cig:(gi + 1) * cig, iy[:, None], ix[None, :]] += contrib
    return res.reshape(-1)


_MAX_MASK = 200_000_000


def conv_dense_mask(conv: ir.Conv2d) -> np.ndarray:
    """The conv's non-zero connectivity as a dense bool matrix ``(n_out, n_in)``.

    Built tap by tap from index arithmetic; refused (:class:`ValidationError`) above
    2e8 entries -- a convolution feeding a flattened population that large should keep
    its ``(C, H, W)`` shape so it can be tiled."""
    c, h, w = conv.input_shape
    co, cig, kh, kw = conv.weight.shape
    _, oh, ow = conv.out_shape
    n_in, n_out = c * h * w, co * oh * ow
    if n_in * n_out > _MAX_MASK:
        raise ValidationError(
            f"node '{conv.name}': a {n_out}x{n_in} convolution feeding a flat population is too "
            f"large to map as a matrix (> {_MAX_MASK} entries); keep the population (C, H, W)")
    m = np.zeros((n_out, n_in), bool)
    rows = _tap_ranges(h, oh, kh, conv.stride[0], conv.padding[0], conv.dilation[0])
    cols = _tap_ranges(w, ow, kw, conv.stride[1], conv.padding[1], conv.dilation[1])
    cog = co // conv.groups
    for o in range(co):
        g = o // cog
        for ci in range(cig):
            cin = g * cig + ci
            for ky, (oy, iy) in enumerate(rows):
                for kx, (ox, ix) in enumerate(cols):
                    if conv.weight[o, ci, ky, kx] == 0 or oy.size == 0 or ox.size == 0:
                        continue
                    out_idx = (o * oh + oy[:, None]) * ow + ox[None, :]
                    in_idx = (cin * h + iy[:, None]) * w + ix[None, :]
                    m[out_idx.reshape(-1), in_idx.reshape(-1)] = True
    return m


def _axis_patterns(n_in, o0, o1, k, s, p, d):
    """Input indices reaching outputs [o0, o1) along one axis and their tap patterns.

    Returns ``(lo, hi, patterns)``: the input index range hit and the set of distinct
    tuples of kernel taps by which one input index reaches the range."""
    pats = {}
    for i in range(max(0, o0 * s - p), min(n_in, (o1 - 1) * s - p + (k - 1) * d + 1)):
        taps = tuple(j for j in range(k)
                     if (i + p - j * d) % s == 0 and o0 <= (i + p - j * d) // s < o1)
        if taps:
            pats[i] = taps
    if not pats:
        return 0, 0, set()
    return min(pats), max(pats) + 1, set(pats.values())


# --------------------------------------------------------------------------
# blocks
# --------------------------------------------------------------------------
@dataclass
class Block:
    """A piece of one population placed on one core.

    ``index`` holds the flat neuron indices (row-major in the population's shape);
    ``box`` is ``((c0, c1), (y0, y1), (x0, x1))`` for a channel/space tile, else None.
    ``used`` maps each of :data:`RESOURCES` to its count on this core.
    """

    node: str
    index: np.ndarray
    box: Optional[Tuple[Tuple[int, int], ...]] = None
    used: Dict[str, int] = field(default_factory=dict)
    core: int = -1
    chip: int = -1

    @property
    def size(self) -> int:
        return int(self.index.size)

    def neurons(self) -> list:
        """The neuron index range ``[first, last + 1)`` or, for a tile, the box bounds."""
        if self.box is not None:
            return {"channels": list(self.box[0]), "rows": list(self.box[1]),
                    "cols": list(self.box[2])}
        return [int(self.index[0]), int(self.index[-1]) + 1]


def _box_index(shape, box) -> np.ndarray:
    (c0, c1), (y0, y1), (x0, x1) = box
    c, h, w = np.ix_(np.arange(c0, c1), np.arange(y0, y1), np.arange(x0, x1))
    return ((c * shape[1] + h) * shape[2] + w).reshape(-1).astype(np.int64)


def _in_usage(projs: Sequence[Projection], index: np.ndarray, box) -> Tuple[int, int]:
    """(synapse bits, input axons) of a block with target neurons ``index``."""
    bits = axons = 0
    n = int(index.size)
    for p in projs:
        if p.kind == "conv" and box is not None:
            b, a = _conv_box_usage(p.conv, box, n)
        else:
            nz = p.weight[index] != 0 if p.kind == "dense" else p.dense_nz()[index]
            counts = nz.sum(axis=0).astype(np.int64)
            used = counts[counts > 0]
            a = int(used.size)
            dense = dense_list_bits(a, n, p.num_weight_bits, p.delay_bits)
            bpe = weight_field_bits(p.num_weight_bits) + p.delay_bits + index_field_bits(n)
            b = min(dense, int(axon_bits(used, bpe).sum()))
        bits += b
        axons += a
    return bits, axons


COMPARTMENT_BASE_LIMIT = 256
"""An axon's compartment base (offset) must be below 256 (nengo-loihi ``conv.py``;
``builder/validate.py``): larger offsets need extra copies of a weight list."""


def _axis_map(n_in, o0, o1, k, s, p, d):
    """Per input index reaching outputs ``[o0, o1)`` along one axis: its kernel taps
    (pattern) and the first output (relative to ``o0``) it reaches.  Returns
    ``(lo, hi, pattern_id, first)`` arrays over the input range ``[lo, hi)``."""
    idx, pats, first, span = [], [], [], []
    for i in range(max(0, o0 * s - p), min(n_in, (o1 - 1) * s - p + (k - 1) * d + 1)):
        taps = tuple(j for j in range(k)
                     if (i + p - j * d) % s == 0 and o0 <= (i + p - j * d) // s < o1)
        if taps:
            outs = [(i + p - j * d) // s for j in taps]
            idx.append(i)
            pats.append(taps)
            first.append(min(outs) - o0)
            span.append(max(outs) - min(outs))
    return idx, pats, first, span


def _conv_box_usage(conv: ir.Conv2d, box, n_targets: int) -> Tuple[int, int]:
    """Synapse bits and input axons of a conv into one channel/space tile.

    The population-axon encoding nengo-loihi builds for a convolution
    (``conv2d_loihi_weights``): one input axon per input pixel reaching the tile (the
    channel travels as the axon's atom); pixels that reach the tile through the same
    kernel taps, with compartment bases in the same block of 256, share one weight list
    holding every (input channel, tap, output channel) entry of those taps (zeros
    included, with index fields)."""
    (c0, c1), (y0, y1), (x0, x1) = box
    _, h, w = conv.input_shape
    co, cig, kh, kw = conv.weight.shape
    ri, rp, rf, rs = _axis_map(h, y0, y1, kh, conv.stride[0], conv.padding[0],
                               conv.dilation[0])
    ci, cp, cf, cs = _axis_map(w, x0, x1, kw, conv.stride[1], conv.padding[1],
                               conv.dilation[1])
    if not ri or not ci:
        return 0, 0
    r_ids = {t: n for n, t in enumerate(dict.fromkeys(rp))}
    c_ids = {t: n for n, t in enumerate(dict.fromkeys(cp))}
    r_code = np.array([r_ids[t] for t in rp], np.int64)
    c_code = np.array([c_ids[t] for t in cp], np.int64)
    base = np.array(rf, np.int64)[:, None] * (x1 - x0) + np.array(cf, np.int64)[None, :]
    bucket = base // COMPARTMENT_BASE_LIMIT
    key = (r_code[:, None] * len(c_ids) + c_code[None, :]) * (int(bucket.max()) + 1) + bucket
    # index relative to the axon's compartment base: block of 256, filter, row, column
    tw = x1 - x0
    max_index = int((bucket * COMPARTMENT_BASE_LIMIT + (c1 - c0 - 1) * (y1 - y0) * tw
                     + np.array(rs, np.int64)[:, None] * tw
                     + np.array(cs, np.int64)[None, :]).max())
    bpe = weight_field_bits(conv.num_weight_bits) + index_field_bits(max_index + 1)
    r_len = np.array([len(t) for t in r_ids], np.int64)
    c_len = np.array([len(t) for t in c_ids], np.int64)
    bits = 0
    n_filters = c1 - c0
    for k in np.unique(key):
        rc, b = divmod(int(k), int(bucket.max()) + 1)
        r, c = divmod(rc, len(c_ids))
        entries = cig * int(r_len[r]) * int(c_len[c]) * n_filters
        bits += int(axon_bits(entries, bpe))
    return bits, len(ri) * len(ci)


def _receptive_mask(p: Projection, blk: Block) -> np.ndarray:
    """Source neurons of ``p`` with a connection into ``blk`` (bool, ``(n_src,)``)."""
    if p.kind == "dense":
        return (p.weight[blk.index] != 0).any(axis=0)
    conv = p.conv
    if blk.box is None:
        return p.dense_nz()[blk.index].any(axis=0)
    (c0, c1), (y0, y1), (x0, x1) = blk.box
    c, h, w = conv.input_shape
    co, cig, kh, kw = conv.weight.shape
    ry0, ry1, _ = _axis_patterns(h, y0, y1, kh, conv.stride[0], conv.padding[0], conv.dilation[0])
    rx0, rx1, _ = _axis_patterns(w, x0, x1, kw, conv.stride[1], conv.padding[1], conv.dilation[1])
    cog = co // conv.groups
    g0, g1 = c0 // cog, (c1 - 1) // cog + 1
    mask = np.zeros((c, h, w), bool)
    mask[g0 * cig:g1 * cig, ry0:ry1, rx0:rx1] = True
    return mask.reshape(-1)


# --------------------------------------------------------------------------
# splitting
# --------------------------------------------------------------------------
def _limits(profile) -> Dict[str, int]:
    return {"compartments": profile.neurons_per_core,
            "synapse_bits": profile.synapse_memory_bits_per_core,
            "in_axons": profile.input_axons_per_core,
            "out_axons": profile.output_axons_per_core}


def _check_block(blk: Block, lim: Dict[str, int]) -> Optional[str]:
    """The resource most over its limit (need / limit), or None when the block fits."""
    over = [(blk.used[r] / lim[r], r) for r in ("compartments", "synapse_bits", "in_axons")
            if blk.used[r] > lim[r]]
    return max(over)[1] if over else None


def _make_block(name, index, box, projs) -> Block:
    bits, axons = _in_usage(projs, index, box)
    return Block(name, index, box, {"compartments": int(index.size), "synapse_bits": int(bits),
                                    "in_axons": int(axons), "out_axons": 0})


def _split_ranges(name, pop, projs, lim, min_split) -> List[Block]:
    n = pop.size
    k = max(1, min_split, -(-n // lim["compartments"]))
    while True:
        k = min(k, n)
        edges = np.linspace(0, n, k + 1).round().astype(np.int64)
        blocks = [_make_block(name, np.arange(a, b, dtype=np.int64), None, projs)
                  for a, b in zip(edges[:-1], edges[1:])]
        bad = [(b, _check_block(b, lim)) for b in blocks]
        bad = [(b, r) for b, r in bad if r]
        if not bad:
            return blocks
        if k == n:
            b, r = bad[0]
            raise FitError(
                f"node '{name}': neuron {int(b.index[0])} needs {b.used[r]} {_UNITS[r]} "
                f"but a {lim['profile']} core has {lim[r]}; it cannot be placed on any core")
        worst = max(b.used[r] / lim[r] for b, r in bad)
        k = max(k + 1, int(math.ceil(k * min(worst, 2.0))))


_UNITS = {"compartments": "compartments", "synapse_bits": "synapse-memory bits",
          "in_axons": "input axons", "out_axons": "output axons"}


def _candidates(n, cap):
    vals = {n}
    v = 1
    while v < n:
        vals.add(v)
        v *= 2
    return sorted(x for x in vals if x <= cap)


def _split_boxes(name, pop, projs, lim, max_tile) -> List[Block]:
    C, H, W = pop.shape
    npc = min(lim["compartments"], max_tile)
    cands = []
    for ct in _candidates(C, npc):
        for ht in _candidates(H, npc // ct):
            for wt in _candidates(W, npc // (ct * ht)):
                n_tiles = -(-C // ct) * -(-H // ht) * -(-W // wt)
                cands.append((n_tiles, -(ct * ht * wt), -ct, ct, ht, wt))
    cands.sort()
    for n_tiles, _, _, ct, ht, wt in cands:
        # quick test on two representative tiles before building them all
        probes = [((0, ct), (0, ht), (0, wt)),
                  ((0, ct), (min(ht, H - ht) if H > ht else 0, min(2 * ht, H)),
                   (min(wt, W - wt) if W > wt else 0, min(2 * wt, W)))]
        if any(_check_block(_make_block(name, _box_index(pop.shape, b), b, projs), lim)
               for b in probes):
            continue
        blocks = []
        ok = True
        for c0 in range(0, C, ct):
            for y0 in range(0, H, ht):
                for x0 in range(0, W, wt):
                    box = ((c0, min(C, c0 + ct)), (y0, min(H, y0 + ht)), (x0, min(W, x0 + wt)))
                    blk = _make_block(name, _box_index(pop.shape, box), box, projs)
                    if _check_block(blk, lim):
                        ok = False
                        break
                    blocks.append(blk)
                if not ok:
                    break
            if not ok:
                break
        if ok:
            return blocks
    blk = _make_block(name, np.zeros(1, np.int64), ((0, 1), (0, 1), (0, 1)), projs)
    r = _check_block(blk, lim) or "compartments"
    raise FitError(f"node '{name}': one neuron needs {blk.used[r]} {_UNITS[r]} but a "
                   f"{lim['profile']} core has {lim[r]}; it cannot be placed on any core")


# --------------------------------------------------------------------------
# placement
# --------------------------------------------------------------------------
@dataclass
class Placement:
    """Blocks with their cores, the mesh, and per-projection reach."""

    profile: object
    blocks: List[Block]
    projections: List[Projection]
    mesh: dict
    limits: Dict[str, int]
    traffic: Dict[Tuple[int, int], int] = field(default_factory=dict)

    @property
    def cores_used(self) -> int:
        return len(self.blocks)

    @property
    def chips_used(self) -> int:
        return 1 + max((b.chip for b in self.blocks), default=-1)

    def blocks_of(self, node: str) -> List[int]:
        return [i for i, b in enumerate(self.blocks) if b.node == node]

    def core_xy(self, i: int) -> Tuple[int, int]:
        """Mesh coordinates (tile x, tile y) of block ``i``'s core; chips side by side in x."""
        b = self.blocks[i]
        m = self.mesh
        tile = b.core // m["cores_per_tile"]
        return (b.chip * m["tiles_x"] + tile % m["tiles_x"], tile // m["tiles_x"])

    def labels(self, node: str, n: int) -> np.ndarray:
        """Block number (index into ``blocks``) of every neuron of population ``node``."""
        lab = np.full(n, -1, np.int64)
        for i in self.blocks_of(node):
            lab[self.blocks[i].index] = i
        return lab


def place(net: ir.Network, profile=None, max_iter: int = 8) -> Placement:
    """Split and allocate ``net`` on ``profile`` (default: the network's own).

    Raises :class:`FitError` when a single neuron exceeds a per-core limit.
    """
    from ..profiles import get_profile

    profile = net.profile if profile is None else get_profile(profile)
    lim = _limits(profile)
    lim_named = dict(lim, profile=profile.name)
    projs = projections_of(net)
    incoming: Dict[str, List[Projection]] = {}
    for p in projs:
        incoming.setdefault(p.dst, []).append(p)
    pops = net.populations
    min_split = {k: 1 for k in pops}
    max_tile = {k: lim["compartments"] for k in pops}
    for _ in range(max_iter):
        blocks: List[Block] = []
        for name, pop in pops.items():
            ins = incoming.get(name, [])
            boxable = (len(pop.shape) == 3 and ins and all(
                p.kind == "conv" and tuple(p.conv.out_shape) == tuple(pop.shape) for p in ins))
            if boxable and min_split[name] == 1:
                blocks.extend(_split_boxes(name, pop, ins, lim_named, max_tile[name]))
            else:
                blocks.extend(_split_ranges(name, pop, ins, lim_named, min_split[name]))
        pl = Placement(profile, blocks, projs, mesh_of(profile), lim)
        over = _count_out_axons(pl, pops)
        if not over:
            break
        for name, need in over.items():
            if boxable_tile_shrink(pops[name], incoming.get(name, [])):
                max_tile[name] = max(1, max_tile[name] // 2)
            else:
                min_split[name] = max(min_split[name] + 1, need)
    else:
        name = next(iter(over))
        raise FitError(f"node '{name}': output axons exceed {lim['out_axons']} per core even "
                       f"after splitting {max_iter} times")
    _allocate(pl)
    return pl


def boxable_tile_shrink(pop, ins) -> bool:
    return len(pop.shape) == 3 and bool(ins) and all(p.kind == "conv" for p in ins)


def _count_out_axons(pl: Placement, pops) -> Dict[str, int]:
    """Fill ``out_axons`` and the block traffic; return populations over the limit
    with the smallest split count that could fix them."""
    lab = {k: pl.labels(k, p.size) for k, p in pops.items()}
    traffic: Dict[Tuple[int, int], int] = {}
    out = np.zeros(len(pl.blocks), np.int64)
    single = {}
    for p in pl.projections:
        if not p.src_on_chip:
            continue
        src_lab = lab[p.src]
        per_neuron = np.zeros(p.n_src, np.int64)
        for j in pl.blocks_of(p.dst):
            m = _receptive_mask(p, pl.blocks[j])
            per_neuron += m
            counts = np.bincount(src_lab[m], minlength=len(pl.blocks))
            for i in np.flatnonzero(counts):
                traffic[(int(i), j)] = traffic.get((int(i), j), 0) + int(counts[i])
                out[i] += counts[i]
        single[p.src] = max(single.get(p.src, 0), int(per_neuron.max(initial=0)))
    for i, b in enumerate(pl.blocks):
        b.used["out_axons"] = int(out[i])
    pl.traffic = traffic
    over = {}
    limit = pl.limits["out_axons"]
    for i, b in enumerate(pl.blocks):
        if b.used["out_axons"] > limit:
            if b.size == 1 or single.get(b.node, 0) > limit:
                raise FitError(
                    f"node '{b.node}': one neuron sends to {single.get(b.node, 0)} cores "
                    f"({_UNITS['out_axons']}) but a {pl.profile.name} core has {limit}")
            total = sum(pl.blocks[k].used["out_axons"] for k in pl.blocks_of(b.node))
            over[b.node] = max(over.get(b.node, 0), -(-total // limit) + 1)
    return over


def _allocate(pl: Placement) -> None:
    n = len(pl.blocks)
    per_chip = pl.profile.cores_per_chip
    nbr: List[Dict[int, int]] = [dict() for _ in range(n)]
    for (a, b), w in pl.traffic.items():
        if a != b:
            nbr[a][b] = nbr[a].get(b, 0) + w
            nbr[b][a] = nbr[b].get(a, 0) + w
    placed = np.zeros(n, bool)
    score = np.zeros(n, np.float64)
    order = 0
    chip = core = 0
    prev_chip: List[int] = []
    cur_chip: List[int] = []
    for _ in range(n):
        cand = np.where(placed, -1.0, score)
        i = int(np.argmax(cand))
        if cand[i] <= 0:  # no traffic to this chip: next block in network order
            while placed[order]:
                order += 1
            i = order
        placed[i] = True
        pl.blocks[i].chip, pl.blocks[i].core = chip, core
        cur_chip.append(i)
        for j, w in nbr[i].items():
            score[j] += w
        core += 1
        if core == per_chip:
            chip, core = chip + 1, 0
            prev_chip, cur_chip = cur_chip, []
            score[:] = 0
            for a in prev_chip:  # the next chip starts from the traffic of this one
                for j, w in nbr[a].items():
                    score[j] += w
    # report blocks in chip/core order; the traffic keys (old block numbers) are now stale
    pl.blocks.sort(key=lambda b: (b.chip, b.core))
    pl.traffic = {}
