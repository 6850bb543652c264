"""Synapse-memory encoding: how many bits a projection costs on one core.

The model is Loihi 1's synapse memory as Davies et al. 2018 describe it and
as nengo-loihi encodes it (``docs/deployment.md`` gives the derivation):

* each input axon of a core owns a list of synapse entries; an entry holds
  a weight field (``num_weight_bits`` rounded up to the nearest width the
  chip offers: 0, 1, 2, 3, 4, 5, 6 or 8 bits), an optional delay field and,
  for *sparse* (indexed) lists, a target-compartment index field (6..12 bits,
  enough to address the block's compartments);
* *dense* lists hold one entry per compartment of the target block (zeros
  included) and no index field;
* entries are grouped in runs of at most 64; each run adds 4 + 6 header bits
  and is rounded up to whole 64-bit memory words.

Every function here is pure integer arithmetic on ``np.int64`` (no float);
all sizes are in bits.
"""

from __future__ import annotations

import numpy as np

from ..errors import ValidationError

__all__ = [
    "WEIGHT_FIELD_BITS", "INDEX_FIELD_BITS", "RUN_LENGTH", "RUN_HEADER_BITS", "WORD_BITS",
    "weight_field_bits", "index_field_bits", "delay_field_bits", "axon_bits",
    "dense_list_bits", "sparse_list_bits",
]

WEIGHT_FIELD_BITS = (0, 1, 2, 3, 4, 5, 6, 8)
"""Weight-field widths the synapse format offers (Davies 2018 Table 1; nengo-loihi
``SynapseConfig.WEIGHT_BITS_MAP``)."""
INDEX_FIELD_BITS = (0, 6, 7, 8, 9, 10, 11, 12)
"""Index-field widths of sparse synapse lists (nengo-loihi ``INDEX_BITS_MAP``)."""
RUN_LENGTH = 64
"""Synapse entries per run (a 6-bit count field: ``n_synapses + 1 = 64``)."""
RUN_HEADER_BITS = 4 + 6
"""Per-run header: 4-bit synapse-format index plus 6-bit entry count."""
WORD_BITS = 64
"""Synapse memory word (Davies 2018: N_syn x 64 b)."""


def weight_field_bits(num_weight_bits: int) -> int:
    """Bits one weight occupies: the smallest offered width >= ``num_weight_bits``
    (values above 8 are stored in 8 bits plus a shared exponent; 9-bit Loihi weights
    are an 8-bit field with the sign from the format)."""
    n = int(num_weight_bits)
    if n < 1:
        raise ValidationError(f"num_weight_bits={n} must be >= 1")
    for width in WEIGHT_FIELD_BITS:
        if width >= n:
            return width
    return WEIGHT_FIELD_BITS[-1]


def index_field_bits(n_targets: int) -> int:
    """Index bits of a sparse entry addressing ``n_targets`` compartments (indices
    ``0..n_targets-1``): ``ceil(log2(n_targets))`` rounded up to an offered width.

    Loihi 1 offers at most 12 bits (4,096 compartments, more than a 1,024-compartment
    core needs).  For larger cores (Loihi 2's 8,192 neurons) the field is *assumed* to
    widen to ``ceil(log2(n_targets))`` bits: no published figure."""
    n = max(int(n_targets), 1)
    need = int(n - 1).bit_length()
    for width in INDEX_FIELD_BITS:
        if width >= need:
            return width
    return need


def delay_field_bits(max_delay: int) -> int:
    """Delay bits for delays ``0..max_delay`` steps (0 when there are no delays)."""
    return int(max(int(max_delay), 0)).bit_length()


def axon_bits(n_entries, bits_per_entry: int) -> np.ndarray:
    """Synapse memory of one axon's list of ``n_entries`` entries, in bits.

    ``n_entries`` may be an integer array (one value per axon); the result has
    the same shape (``np.int64``).  Runs of 64 entries, 10 header bits each,
    each run rounded up to whole 64-bit words; an empty list costs 0.
    """
    n = np.asarray(n_entries, dtype=np.int64)
    b = int(bits_per_entry)

    def words(k):  # bits of one run of k entries, rounded up to 64-bit words
        return -WORD_BITS * (-(k * b + RUN_HEADER_BITS) // WORD_BITS)

    full, rem = np.divmod(n, RUN_LENGTH)
    return full * words(np.int64(RUN_LENGTH)) + np.where(rem > 0, words(rem), 0)


def dense_list_bits(n_axons: int, n_targets: int, num_weight_bits: int,
                    delay_bits: int = 0) -> int:
    """Bits of a dense projection: ``n_axons`` lists of ``n_targets`` entries each
    (zeros stored), weight and delay fields only."""
    per = axon_bits(int(n_targets), weight_field_bits(num_weight_bits) + int(delay_bits))
    return int(per) * int(n_axons)


def sparse_list_bits(nnz_per_axon, n_targets: int, num_weight_bits: int,
                     delay_bits: int = 0) -> int:
    """Bits of a sparse (indexed) projection: axon ``i`` lists its ``nnz_per_axon[i]``
    non-zero synapses, each with weight, delay and index fields; ``n_targets`` is the
    size of the target block (sets the index width)."""
    bpe = weight_field_bits(num_weight_bits) + int(delay_bits) + index_field_bits(n_targets)
    return int(axon_bits(np.asarray(nnz_per_axon, np.int64), bpe).sum())
