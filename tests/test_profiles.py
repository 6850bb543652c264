import dataclasses

import pytest

import neurohw as nh
from neurohw.profiles import LOIHI1, LOIHI2, PROFILES, HardwareProfile, generic, get_profile


def test_lava_fixed_point_widths():
    # the widths Lava's PyLifModelBitAcc and Dense bit-accurate models use
    for p in (LOIHI1, LOIHI2):
        assert p.range_of("du") == (0, 4095)
        assert p.range_of("dv") == (0, 4095)
        assert p.range_of("vth") == (0, 2**17 - 1)
        assert p.range_of("bias_mant") == (-4096, 4095)
        assert p.range_of("u") == (-(2**23 - 1), 2**23 - 1)
        assert p.vth_shift == 6 and p.act_shift == 6
        assert p.weight_range("mixed") == (-256, 255)
        assert p.weight_range("excitatory") == (0, 255)
        assert p.weight_range("inhibitory") == (-255, 0)
        assert p.range_of("delay") == (0, 62)


def test_loihi_resources_differ():
    assert LOIHI1.graded_spike_bits == 0
    assert LOIHI2.graded_spike_bits > 0
    assert LOIHI1.neurons_per_core == 1024 and LOIHI1.cores_per_chip == 128
    assert LOIHI2.neurons_per_core == 8192
    assert LOIHI1.max_neurons == 131072


def test_every_figure_has_a_source():
    skip = {"name", "energy_pj", "latency_ns", "sources"}
    for p in (LOIHI1, LOIHI2):
        for f in dataclasses.fields(p):
            if f.name in skip:
                continue
            assert f.name in p.sources, f"{p.name}.{f.name} has no source"
            assert len(p.sources[f.name]) > 10


def test_generic_overrides_and_roundtrip():
    g = generic(weight_bits=6, state_bits=16, name="tiny")
    assert g.weight_range("mixed") == (-64, 63)
    assert g.range_of("v") == (-(2**15 - 1), 2**15 - 1)
    assert g.range_of("bias_exp") == (-8, 7)
    assert HardwareProfile.from_dict(g.to_dict()) == g


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"weight_bits": 0}, "weight_bits=0"),
        ({"state_bits": 40}, "state_bits=40"),
        ({"weight_exp_min": 3, "weight_exp_max": 1}, "weight_exp_min=3"),
        ({"nonsense": 1}, "nonsense"),
        ({"graded_spike_bits": -1}, "graded_spike_bits=-1"),
    ],
)
def test_generic_rejects_bad_widths(kwargs, fragment):
    with pytest.raises(nh.ValidationError, match=fragment):
        generic(**kwargs)


def test_get_profile():
    assert get_profile("LOIHI2") is LOIHI2
    assert set(PROFILES) == {"loihi1", "loihi2", "generic"}
    with pytest.raises(nh.ValidationError, match="unknown profile 'loihi9'"):
        get_profile("loihi9")
    with pytest.raises(nh.ValidationError, match="sign_mode"):
        LOIHI2.weight_range("positive")
