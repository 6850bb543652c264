"""Spike codes: rate, time to first spike, inter-spike interval."""

import numpy as np
import pytest

from neurohw import coding
from neurohw.errors import ValidationError


def test_regular_rate_code_round_trips_within_one_spike():
    rng = np.random.default_rng(0)
    x = rng.random((4, 30))
    for T in (1, 7, 50, 200):
        s = coding.rate_encode(x, T, method="regular")
        assert s.shape == (4, T, 30) and s.dtype == np.int8
        np.testing.assert_array_less(np.abs(coding.rate_decode(s) - x), 1.0 / T + 1e-9)
    # exact multiples of 1/T are exact, and evenly spaced
    s = coding.rate_encode(np.array([0.0, 0.25, 0.5, 1.0]), 8, method="regular")
    np.testing.assert_array_equal(s.sum(axis=0), [0, 2, 4, 8])
    np.testing.assert_array_equal(np.nonzero(s[:, 1])[0], [3, 7])


def test_bernoulli_rate_code_is_seeded_and_unbiased():
    x = np.linspace(0, 1, 11)
    a = coding.rate_encode(x, 4000, max_rate=0.5, rng=np.random.default_rng(3))
    b = coding.rate_encode(x, 4000, max_rate=0.5, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    est = coding.rate_decode(a, max_rate=0.5)
    # binomial standard error of the mean at p <= 0.5 over 4000 steps: <= 0.008 (x units: /0.5)
    np.testing.assert_allclose(est, x, atol=5 * 0.008 / 0.5 * 0.5)
    assert est[0] == 0 and a[:, -1].sum() == pytest.approx(2000, abs=5 * np.sqrt(1000))


def test_ttfs_round_trip_and_ordering():
    rng = np.random.default_rng(1)
    x = rng.random((3, 50))
    T = 33
    s = coding.ttfs_encode(x, T)
    assert s.sum(axis=1).max() == 1  # at most one spike per neuron
    np.testing.assert_array_less(np.abs(coding.ttfs_decode(s) - x), 0.5 / (T - 1) + 1e-12)
    first = s.argmax(axis=1)
    order = np.argsort(-x[0], kind="stable")
    assert np.all(np.diff(first[0][order]) >= 0)  # larger values fire no later
    s = coding.ttfs_encode(np.array([0.0, 0.05, 1.0]), 10, x_min=0.1)
    np.testing.assert_array_equal(s.sum(axis=0), [0, 0, 1])
    assert s[0, 2] == 1


def test_isi_round_trip():
    x = np.linspace(0.0, 1.0, 21)[1:]
    s = coding.isi_encode(x, 200, isi_min=2, isi_max=12)
    d = np.rint(12 - x * 10)
    for i in range(x.size):
        t = np.nonzero(s[:, i])[0]
        assert t[0] == 0 and np.all(np.diff(t) == d[i])
    np.testing.assert_array_less(np.abs(coding.isi_decode(s, 2, 12) - x), 0.5 / 10 + 1e-12)
    assert coding.isi_encode(np.array([0.0]), 10).sum() == 0
    assert coding.isi_decode(np.zeros((10, 1), np.int8))[0] == 0


@pytest.mark.parametrize("call, msg", [
    (lambda: coding.rate_encode([0.5, np.nan], 5), r"x\[1\]=nan is not finite"),
    (lambda: coding.rate_encode([0.5, 1.5], 5), r"x\[1\]=1.5 is outside \[0, 1\]"),
    (lambda: coding.rate_encode([0.5], 0), r"num_steps=0 must be an integer >= 1"),
    (lambda: coding.rate_encode([0.5], 5, method="poisson"), "method='poisson'"),
    (lambda: coding.ttfs_encode([0.5], 1), r"num_steps=1 must be an integer >= 2"),
    (lambda: coding.isi_encode([0.5], 5, isi_min=4, isi_max=3), "isi_max=3 must exceed isi_min=4"),
    (lambda: coding.rate_decode(np.full((3, 2), 2)), "values must be 0 or 1"),
])
def test_bad_input_is_one_clear_error(call, msg):
    with pytest.raises(ValidationError, match=msg):
        call()


def test_codes_feed_the_emulator():
    import neurohw as nh
    from neurohw import ir
    from neurohw.emulate import run

    x = np.random.default_rng(2).random((5, 6))
    spikes = coding.ttfs_encode(x, 20)  # (B, T, n)
    spikes = np.concatenate([spikes, np.zeros((5, 1, 6), np.int8)], axis=1)  # Dense latency
    net = nh.Network({"in": ir.InputNode("in", (6,)),
                      "d": ir.Dense("d", weight=np.full((2, 6), 100)),
                      "l": ir.LIFPopulation("l", (2,), du=4095, dv=0, vth=10_000)},
                     [("in", "d"), ("d", "l")], "loihi2")
    out = run(net, spikes, record=("u",))
    # every input spikes exactly once: the integrator's total drive equals 6 spikes of weight 100
    assert out.u["l"].shape == (5, 21, 2)
    np.testing.assert_array_equal((out.u["l"].sum(axis=1) >> 6)[:, 0], np.full(5, 600))
