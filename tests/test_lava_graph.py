"""One Lava graph builder, per-neuron decays and thresholds in Lava, and profiles Lava refuses.

Per-neuron ``du``/``dv``/``vth`` are drawn over their whole ranges and run in
real Lava (``run_lava``), in the exported standalone script (a subprocess
that cannot import neurohw) and through the real netx loader; every run is
compared with the emulator integer for integer.  Each test also checks that
the per-neuron values matter (collapsing them to one value changes the
emulator's result), so a backend that silently used one value would fail.
"""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neurohw as nh
from neurohw import ir
from neurohw.backends.lava import _builder, run_lava
from neurohw.backends.lava.graph import LAVA_DATAPATH, check_lava_profile, standalone_source
from neurohw.cli import main
from neurohw.emulate.engine import run as emulate
from neurohw.errors import ValidationError
from neurohw.export import export_lava_script, export_netx
from neurohw.testing import random_network

from test_export_lava import assert_bit_exact, random_input, run_script, spiking_network
from test_export_netx import draw_exportable, run_netx

pytestmark = [pytest.mark.lava,
              pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning")]

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------
# per-neuron du, dv, vth
# ---------------------------------------------------------------------------
def per_neuron(net: nh.Network, rng, vth_hi: int = 64) -> nh.Network:
    """``net`` with every population's du, dv (full 12-bit range) and vth (0..vth_hi-1,
    low enough to spike) drawn per neuron, all three non-uniform."""
    nodes = {}
    for name, node in net.nodes.items():
        if isinstance(node, ir.LIFPopulation) and node.size > 1:
            shape = node.shape
            draws = {}
            for p, hi in (("du", 4096), ("dv", 4096), ("vth", vth_hi)):
                arr = rng.integers(0, hi, shape)
                arr.flat[0], arr.flat[1] = 0, hi - 1  # never uniform
                draws[p] = arr
            node = dataclasses.replace(node, **draws)
        nodes[name] = node
    return nh.Network(nodes, net.edges, net.profile, net.dt_s)


def collapsed(net: nh.Network) -> nh.Network:
    """Each population's du/dv/vth replaced by its first neuron's value."""
    nodes = {k: (dataclasses.replace(n, du=int(n.du.flat[0]), dv=int(n.dv.flat[0]),
                                     vth=int(n.vth.flat[0]))
                 if isinstance(n, ir.LIFPopulation) else n) for k, n in net.nodes.items()}
    return nh.Network(nodes, net.edges, net.profile, net.dt_s)


def _varies(net: nh.Network) -> bool:
    return any(n.uniform(p) is None for n in net.populations.values() for p in ("du", "dv", "vth"))


def assert_lava_matches_emulator(net: nh.Network, x: np.ndarray, matters: bool = True) -> None:
    lava = run_lava(net, x, record=("spikes", "v", "u"))
    emu = emulate(net, x, record=("spikes", "v", "u"))
    for name in net.populations:
        for var in ("spikes", "v", "u"):
            np.testing.assert_array_equal(getattr(lava, var)[name], getattr(emu, var)[name][0],
                                          err_msg=f"{name}.{var}")
    if not matters:  # a random network may never move v (e.g. all-zero effective weights)
        return
    other = emulate(collapsed(net), x, record=("v",))
    assert any(not np.array_equal(other.v[k], emu.v[k]) for k in net.populations), \
        "per-neuron values made no difference: the test would not catch a backend ignoring them"


@pytest.mark.parametrize("seed, conv", [(1, False), (5, True)])
def test_per_neuron_parameters_run_in_lava(seed, conv):
    rng = np.random.default_rng(seed)
    for _ in range(50):  # a conv front end is drawn with probability 1/2
        net = spiking_network(int(rng.integers(1 << 30)), conv=conv)
        if not conv or "conv" in net.nodes:
            break
    net = per_neuron(net, rng)
    assert _varies(net)
    assert_lava_matches_emulator(net, random_input(net, rng, (25,)))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10))
def test_per_neuron_parameters_run_in_lava_sweep(seed):
    rng = np.random.default_rng(500 + seed)
    net = per_neuron(spiking_network(500 + seed, conv=seed % 2 == 0), rng,
                     vth_hi=int(2 ** rng.uniform(2, 17)))
    assert_lava_matches_emulator(net, random_input(net, rng, (30,)), matters=False)


def test_per_neuron_parameters_in_exported_script(tmp_path):
    rng = np.random.default_rng(21)
    net = per_neuron(spiking_network(21, recurrent=True), rng)
    out = export_lava_script(net, tmp_path / "exp")
    with np.load(out / "weights.npz", allow_pickle=False) as w:
        assert any(w[k].ndim > 0 for k in w.files if k.endswith((".du", ".dv", ".vth")))
    x = random_input(net, rng, (2, 25))
    assert assert_bit_exact(net, x, run_script(out, x, tmp_path)) > 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_per_neuron_parameters_in_exported_script_sweep(tmp_path, seed):
    rng = np.random.default_rng(700 + seed)
    for _ in range(50):  # even seeds: a network with a conv front end
        net = spiking_network(int(rng.integers(1 << 30)), conv=seed % 2 == 0)
        if seed % 2 or "conv" in net.nodes:
            break
    net = per_neuron(net, rng, vth_hi=int(2 ** rng.uniform(2, 17)))
    out = export_lava_script(net, tmp_path / "exp")
    x = random_input(net, rng, (2, 20))
    assert_bit_exact(net, x, run_script(out, x, tmp_path))


def test_per_neuron_parameters_in_netx(tmp_path):
    check_netx_per_neuron(tmp_path, 3)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(40, 46))
def test_per_neuron_parameters_in_netx_sweep(tmp_path, seed):
    check_netx_per_neuron(tmp_path, seed)


def check_netx_per_neuron(tmp_path, seed):
    """Per-neuron du/dv/vth written to netx, loaded by the real netx, same spikes."""
    import h5py

    rng = np.random.default_rng(seed)
    for _ in range(30):  # until the per-neuron values change the spikes netx is compared on
        net, _ = draw_exportable(rng, tmp_path, max_layers=2, max_width=8)
        net = per_neuron(net, rng, vth_hi=256)
        x = (rng.random((40, net.nodes["input"].shape[0])) < 0.5).astype(np.int64)
        emu = emulate(net, x)
        if _varies(net) and any(not np.array_equal(emu.spikes[k], v) for k, v in
                                emulate(collapsed(net), x).spikes.items()):
            break
    else:
        pytest.fail("no draw where per-neuron values change the spikes")
    report = export_netx(net, tmp_path / "pn.net")
    with h5py.File(tmp_path / "pn.net", "r") as f:
        pop = report.populations[0]
        neuron = f["layer/1/neuron"]
        size = net.nodes[pop].size
        if size > 1:
            np.testing.assert_array_equal(neuron["iDecay"][()], net.nodes[pop].du + 1)
            np.testing.assert_array_equal(neuron["vThMant"][()], net.nodes[pop].vth)
    got = run_netx(tmp_path / "pn.net", x, report)
    for name in report.populations:
        np.testing.assert_array_equal(got[name], emu.spikes[name][0], err_msg=name)
    assert sum(int(v.sum()) for v in got.values()) > 0


# ---------------------------------------------------------------------------
# one builder, one sign-mode table
# ---------------------------------------------------------------------------
def test_script_embeds_the_backend_builder(tmp_path):
    net = spiking_network(2)
    out = export_lava_script(net, tmp_path / "exp")
    text = (out / "run_lava.py").read_text()
    shared = standalone_source()
    assert shared in text
    for fn in (_builder.build_lava_graph, _builder.attach_monitors, _builder.read_monitors,
               _builder.run_fixed_pt):
        assert inspect.getsource(fn) in shared, fn.__name__


def test_sign_mode_table_is_lavas_and_unique():
    from neurohw.backends.lava import import_lava

    import_lava()
    from lava.utils.weightutils import SignMode

    for name, value in _builder.LAVA_SIGN_MODE.items():
        assert SignMode(value).name.lower() == name
    assert set(_builder.LAVA_SIGN_MODE) == set(ir.SIGN_MODES)
    # one home (neurohw/signmode.py, no Lava import), which the builder and nirio import
    from neurohw import nirio, signmode

    assert _builder.LAVA_SIGN_MODE is signmode.LAVA_SIGN_MODE
    assert nirio.LAVA_SIGN_MODE_NAME is signmode.LAVA_SIGN_MODE_NAME
    assert {c: n for n, c in signmode.LAVA_SIGN_MODE.items()} == signmode.LAVA_SIGN_MODE_NAME
    holders = [p for p in (REPO / "neurohw").rglob("*.py")
               if any(t in p.read_text(encoding="utf-8") for t in ('"excitatory": 2', '2: "excitatory"'))]
    assert holders == [REPO / "neurohw/signmode.py"]


def test_datapath_table_matches_lava_models():
    from neurohw.backends.lava import import_lava

    import_lava()
    from lava.proc.lif.models import PyLifModelBitAcc

    model = PyLifModelBitAcc({})
    assert LAVA_DATAPATH["decay_bits"][1] == model.decay_shift
    assert 1 << LAVA_DATAPATH["decay_bits"][1] == model.decay_unity
    assert LAVA_DATAPATH["state_bits"][1] == model.uv_bitwidth
    assert LAVA_DATAPATH["act_shift"][1] == model.act_shift
    assert LAVA_DATAPATH["vth_shift"][1] == model.vth_shift
    assert np.iinfo(PyLifModelBitAcc.bias_mant.d_type).bits == LAVA_DATAPATH["bias_bits"][1]


# ---------------------------------------------------------------------------
# profiles Lava cannot run
# ---------------------------------------------------------------------------
BAD_PROFILES = [
    (dict(decay_bits=10), "decay_bits=10", "decay_bits=12"),
    (dict(state_bits=16), "state_bits=16", "state_bits=24"),
    (dict(act_shift=5), "act_shift=5", "act_shift=6"),
    (dict(act_shift=7), "act_shift=7", "act_shift=6"),
    (dict(vth_shift=4), "vth_shift=4", "vth_shift=6"),
    (dict(weight_bits=7), "weight_bits=7", "weight_bits=8"),
    (dict(graded_spike_bits=28), "graded_spike_bits=28", "graded_spike_bits<=24"),
    (dict(bias_bits=18), "bias_bits=18", "bias_bits<=16"),
    (dict(delay_max_steps=64), "delay_max_steps=64", "delay_max_steps<=62"),
    (dict(bias_exp_max=20), "bias_exp_max=20", "bias_exp_max <= 19"),
    (dict(bias_exp_min=-40), "bias_exp_min=-40", "bias_exp_min >= -31"),
]


def _bad_net(widths) -> nh.Network:
    return random_network(np.random.default_rng(4), nh.generic(**widths), conv=False)


@pytest.mark.parametrize("widths, field, lava", BAD_PROFILES)
def test_library_refuses_profiles_lava_cannot_run(tmp_path, widths, field, lava):
    from neurohw.bench import _lava_split_run
    from neurohw.verify import verify_against_lava

    net = _bad_net(widths)
    x = np.zeros((5, net.nodes["input"].shape[0]), np.int64)
    calls = {
        "run_lava": lambda: run_lava(net, x),
        "verify": lambda: verify_against_lava(net, x),
        "export lava": lambda: export_lava_script(net, tmp_path / "exp"),
        "export netx": lambda: export_netx(net, tmp_path / "m.net"),
        "bench": lambda: _lava_split_run(net, x),
    }
    for what, call in calls.items():
        with pytest.raises(ValidationError) as info:
            call()
        msg = str(info.value)
        assert "profile 'generic'" in msg and field in msg and lava in msg, (what, msg)
        assert "\n" not in msg
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("seed", [9, 10, 11])
def test_generic_profile_with_lavas_widths_runs_bit_exact(tmp_path, seed):
    """Lava's datapath widths, plus the fields Lava does not restrict (wider thresholds,
    weight exponents -12..12, whose Dense sums wrap at 32 bits as Lava's do)."""
    rng = np.random.default_rng(seed)
    profile = nh.generic(vth_bits=20, weight_exp_min=-12, weight_exp_max=12)
    check_lava_profile(profile)
    net = random_network(rng, profile, conv=False)
    nodes = {k: (dataclasses.replace(n, vth=np.where(rng.random(n.shape) < 0.8,
                                                     rng.integers(0, 64, n.shape),
                                                     rng.integers(0, 2**20, n.shape)))
                 if isinstance(n, ir.LIFPopulation) else n) for k, n in net.nodes.items()}
    net = nh.Network(nodes, net.edges, profile, net.dt_s)
    x = random_input(net, rng, (20,))
    lava = run_lava(net, x, record=("spikes", "v", "u"))
    emu = emulate(net, x, record=("spikes", "v", "u"))
    for name in net.populations:
        for var in ("spikes", "v", "u"):
            np.testing.assert_array_equal(getattr(lava, var)[name], getattr(emu, var)[name][0],
                                          err_msg=f"{name}.{var}")
    assert sum(int(v.sum()) for v in lava.spikes.values()) > 0


@pytest.mark.parametrize("widths, field", [(dict(act_shift=5), "act_shift=5"),
                                           (dict(decay_bits=10), "decay_bits=10"),
                                           (dict(state_bits=16), "state_bits=16")])
def test_cli_refuses_profiles_lava_cannot_run(tmp_path, capsys, widths, field):
    net = _bad_net(widths)
    model = tmp_path / "m.q.nir"
    nh.write_network(net, model)
    np.save(tmp_path / "x.npy", np.zeros((4, net.nodes["input"].shape[0]), np.int64))
    before = sorted(p.name for p in tmp_path.iterdir())
    for argv in (["export", str(model), "--to", "lava", "-o", str(tmp_path / "new" / "lava_out")],
                 ["export", str(model), "--to", "netx", "-o", str(tmp_path / "new" / "m.net")],
                 ["verify", str(model), "--input", str(tmp_path / "x.npy")]):
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert str(model) in err and "profile 'generic'" in err and field in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_standalone_script_runs_without_neurohw_source_in_reach(tmp_path):
    """The shared code really is self-contained: the script compiles and its builder
    names resolve with neither neurohw nor the repository on the path."""
    net = spiking_network(6, recurrent=False)
    out = export_lava_script(net, tmp_path / "exp")
    code = ("import runpy, sys; g = runpy.run_path(sys.argv[1]); "
            "print(all(n in g for n in ('build_lava_graph', 'attach_monitors', "
            "'run_fixed_pt', 'install_var_model_patch', 'LAVA_SIGN_MODE')))")
    proc = subprocess.run([sys.executable, "-I", "-c", code, str(out / "run_lava.py")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "True"


def _conv_net(profile="loihi2", **conv) -> nh.Network:
    c = ir.Conv2d("c", **conv)
    nodes = {"in": ir.InputNode("in", c.in_shape), "c": c,
             "l": ir.LIFPopulation("l", c.out_shape, vth=1)}
    return nh.Network(nodes, [("in", "c"), ("c", "l")], profile)


def test_conv_parameters_lava_cannot_hold_are_refused_naming_the_node(tmp_path):
    from neurohw.backends.lava import lava_graph_spec

    big = _conv_net(nh.generic(weight_exp_max=30), weight=np.full((1, 1, 1, 1), 255),
                    weight_exp=25, num_weight_bits=8, sign_mode="excitatory",
                    input_shape=(1, 2, 2))
    with pytest.raises(ValidationError, match=r"node 'c': weight_exp=25 folds kernel values "
                                              r"up to 255 into 8556380160, beyond Lava's int32"):
        lava_graph_spec(big)
    wide = _conv_net(weight=np.ones((1, 1, 1, 1), int), input_shape=(1, 2, 400), stride=(1, 200))
    with pytest.raises(ValidationError, match=r"node 'c': stride=\(1, 200\) exceeds 127"):
        export_lava_script(wide, tmp_path / "exp")
    assert list(tmp_path.iterdir()) == []
    # the largest values that fit are accepted
    lava_graph_spec(_conv_net(nh.generic(weight_exp_max=30), weight=np.full((1, 1, 1, 1), 255),
                              weight_exp=23, num_weight_bits=8, sign_mode="excitatory",
                              input_shape=(1, 2, 2)))
    lava_graph_spec(_conv_net(weight=np.ones((1, 1, 1, 1), int), input_shape=(1, 2, 400),
                              stride=(1, 127)))
