import numpy as np
import pytest

import neurohw as nh
from neurohw.fixedpoint import (as_int_array, clip_signed, effective_weights, scaled_bias,
                                shift_round_toward_zero, wrap_signed)


def _wrap_reference(x: int, bits: int) -> int:
    m = 1 << bits
    r = x % m
    return r - m if r >= m // 2 else r


@pytest.mark.parametrize("bits", [2, 8, 13, 24, 32])
def test_wrap_signed_matches_modular_reference(bits, rng):
    x = rng.integers(-(2**40), 2**40, size=500)
    x = np.concatenate([x, [2 ** (bits - 1), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1, 0, -1]])
    got, over = wrap_signed(x, bits)
    want = np.array([_wrap_reference(int(v), bits) for v in x])
    assert np.array_equal(got, want)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    assert np.array_equal(over, (x < lo) | (x > hi))


def test_clip_signed_symmetric():
    got, sat = clip_signed(np.array([2**23, -(2**23), 5]), 24, symmetric=True)
    assert got.tolist() == [2**23 - 1, -(2**23 - 1), 5]
    assert sat.tolist() == [True, True, False]


def test_shift_round_toward_zero():
    x = np.array([7, -7, 4095 * 4095, -(4095 * 4095), 0])
    assert shift_round_toward_zero(x, 2).tolist() == [1, -1, (4095 * 4095) >> 2, -((4095 * 4095) >> 2), 0]


def test_scaled_bias_floor_for_negative_exponent():
    assert scaled_bias(np.array([-5, 5, -4096]), np.array([-1, -1, 7])).tolist() == [-3, 2, -4096 * 128]


def test_as_int_array_errors_name_everything():
    with pytest.raises(nh.ValidationError, match=r"node 'x': vth\[1\]=200 above allowed range \[0, 100\] \(7-bit\)"):
        as_int_array([1, 200], "node 'x'", "vth", 0, 100, "7-bit")
    with pytest.raises(nh.ValidationError, match="is not finite"):
        as_int_array([1.0, np.nan], "node 'x'", "bias_mant")
    with pytest.raises(nh.ValidationError, match="is not an integer"):
        as_int_array([1.5], "node 'x'", "bias_mant")
    with pytest.raises(nh.ValidationError, match="non-numeric"):
        as_int_array(["a"], "node 'x'", "bias_mant")
    with pytest.raises(nh.ValidationError, match="shape"):
        as_int_array([1, 2], "node 'x'", "bias_mant", shape=(3,))
    assert as_int_array(3, "n", "p", shape=(2, 2)).tolist() == [[3, 3], [3, 3]]


@pytest.mark.lava
@pytest.mark.parametrize("sign_mode", ["mixed", "excitatory", "inhibitory"])
def test_effective_weights_match_lava(sign_mode, rng):
    from neurohw.backends.lava import import_lava

    import_lava()
    from lava.utils.weightutils import SignMode, clip_weights, truncate_weights

    mode = {"mixed": SignMode.MIXED, "excitatory": SignMode.EXCITATORY,
            "inhibitory": SignMode.INHIBITORY}[sign_mode]
    w = rng.integers(-400, 400, size=(20, 30))
    for bits in range(1, 9):
        want = truncate_weights(clip_weights(w, mode, num_bits=8), mode, bits)
        got = effective_weights(w, sign_mode, bits)
        assert np.array_equal(got, want), bits
