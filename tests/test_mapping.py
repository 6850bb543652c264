"""neurohw.mapping / `neurohw map`: synapse encoding against nengo-loihi, placement limits,
fit refusals, exact event counts (recounted here independently), cost, metrics, reports."""

import dataclasses
import json
import warnings
from pathlib import Path
from html.parser import HTMLParser

import numpy as np
import pytest

import neurohw as nh
from neurohw import ir
from neurohw.cli import main
from neurohw.mapping import RESOURCES, place, plan
from neurohw.mapping.place import projections_of
from neurohw.mapping.synapse import dense_list_bits, sparse_list_bits

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- networks
def mlp(rng, sizes=(40, 300, 1500, 10), density=0.5, profile="loihi1"):
    nodes = {"in": ir.InputNode("in", (sizes[0],))}
    edges, prev = [], "in"
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = rng.integers(-255, 256, (b, a)) * (rng.random((b, a)) < density)
        nodes[f"d{i}"] = ir.Dense(f"d{i}", weight=w)
        nodes[f"p{i}"] = ir.LIFPopulation(f"p{i}", (b,), du=rng.integers(0, 4096, b),
                                          dv=300, vth=rng.integers(50, 400, b),
                                          bias_mant=rng.integers(-50, 200, b), bias_exp=1)
        edges += [(prev, f"d{i}"), (f"d{i}", f"p{i}")]
        prev = f"p{i}"
    nodes["out"] = ir.OutputNode("out", (sizes[-1],))
    edges.append((prev, "out"))
    return nh.Network(nodes, edges, profile)


def convnet(rng, c0=2, c=8, hw=12, profile="loihi1", pool=False, stride=1, head=True):
    nodes = {"in": ir.InputNode("in", (c0, hw, hw)),
             "c1": ir.Conv2d("c1", weight=rng.integers(-200, 200, (c, c0, 3, 3))
                             * (rng.random((c, c0, 3, 3)) < 0.8),
                             input_shape=(c0, hw, hw), padding=(1, 1), stride=stride)}
    h1 = nodes["c1"].out_shape
    nodes["p1"] = ir.LIFPopulation("p1", h1, du=200, dv=100, vth=150, bias_mant=20, bias_exp=2)
    edges = [("in", "c1"), ("c1", "p1")]
    src = "p1"
    if pool:
        nodes["sp"] = ir.SumPool2d("sp", input_shape=h1, kernel_size=(2, 2), stride=(2, 2))
        nodes["q"] = ir.LIFPopulation("q", nodes["sp"].out_shape, du=100, dv=100, vth=2)
        edges += [("p1", "sp"), ("sp", "q")]
        src = "q"
    shp = nodes[src].shape
    nodes["c2"] = ir.Conv2d("c2", weight=rng.integers(-200, 200, (c, shp[0], 3, 3)),
                            input_shape=shp, padding=(1, 1))
    nodes["p2"] = ir.LIFPopulation("p2", shp[:0] + (c,) + shp[1:], du=200, dv=100, vth=300)
    n2 = int(np.prod(nodes["p2"].shape))
    if not head:
        nodes["out"] = ir.OutputNode("out", nodes["p2"].shape)
        edges += [(src, "c2"), ("c2", "p2"), ("p2", "out")]
        return nh.Network(nodes, edges, profile)
    nodes["f"] = ir.Flatten("f", input_shape=nodes["p2"].shape)
    nodes["d"] = ir.Dense("d", weight=rng.integers(-100, 100, (10, n2)))
    nodes["p3"] = ir.LIFPopulation("p3", (10,), du=100, dv=100, vth=500)
    nodes["out"] = ir.OutputNode("out", (10,))
    edges += [(src, "c2"), ("c2", "p2"), ("p2", "f"), ("f", "d"), ("d", "p3"), ("p3", "out")]
    return nh.Network(nodes, edges, profile)


def brute_conv_mask(conv):
    """(n_out, n_in) non-zero connectivity of a conv by plain loops over output and taps."""
    c, h, w = conv.input_shape
    co, cig, kh, kw = conv.weight.shape
    _, oh, ow = conv.out_shape
    cog = co // conv.groups
    m = np.zeros((co * oh * ow, c * h * w), bool)
    for o in range(co):
        g = o // cog
        for y in range(oh):
            for x in range(ow):
                for ci in range(cig):
                    for ky in range(kh):
                        for kx in range(kw):
                            iy = y * conv.stride[0] - conv.padding[0] + ky * conv.dilation[0]
                            ix = x * conv.stride[1] - conv.padding[1] + kx * conv.dilation[1]
                            if 0 <= iy < h and 0 <= ix < w and conv.weight[o, ci, ky, kx]:
                                m[(o * oh + y) * ow + x, ((g * cig + ci) * h + iy) * w + ix] = True
    return m


def connectivity(net, structural=False):
    """Independent (dst, src) non-zero masks of every on-chip projection; ``structural``:
    a conv's connections by geometry alone (every tap, zero weights included), the cores
    its population axons reach."""
    out = []
    for name, node in net.of_type((ir.Dense, ir.Conv2d, ir.SumPool2d)).items():
        src = net.spike_source(name)
        dst = [d for d in net.successors(name)]
        while dst and isinstance(net.nodes[dst[0]], ir.Flatten):
            dst = net.successors(dst[0])
        if not dst or not isinstance(net.nodes[dst[0]], ir.LIFPopulation):
            continue
        if isinstance(node, ir.Dense):
            m = node.weight != 0
        elif isinstance(node, ir.Conv2d):
            m = brute_conv_mask(dataclasses.replace(node, weight=np.ones_like(node.weight))
                                if structural else node)
        else:
            c = node.input_shape[0]
            m = brute_conv_mask(ir.Conv2d(name, weight=np.ones((c, 1) + node.kernel_size, np.int32),
                                          input_shape=node.input_shape, stride=node.stride,
                                          padding=node.padding, groups=c))
        out.append((src, dst[0], m))
    return out


# ---------------------------------------------------------------- synapse memory
def test_synapse_bits_equal_nengo_loihi(rng):
    warnings.filterwarnings("ignore", module="nengo_loihi")
    block = pytest.importorskip("nengo_loihi.block")
    for _ in range(12):
        n_in, n_out = int(rng.integers(1, 300)), int(rng.integers(1, 1100))
        w = rng.integers(-256, 256, (n_in, n_out))
        w[w == 0] = 1
        syn = block.Synapse(n_in)
        syn.set_weights(w)  # dense: compression 3, 8-bit weights
        assert syn.bits() == dense_list_bits(n_in, n_out, 8)
        delay = int(rng.integers(1, 7))
        syn.format(delay_bits=delay)
        assert syn.bits() == dense_list_bits(n_in, n_out, 8, delay)
        sparse = w * (rng.random(w.shape) < rng.uniform(0.02, 0.6))
        ws, ix = [], []
        for row in sparse:
            nz = np.flatnonzero(row)
            ws.append(row[nz][None, :])
            ix.append(nz[None, :])
        syn = block.Synapse(n_in)
        syn.set_population_weights(ws, ix, None, np.zeros(n_in, int), pop_type=0)
        top = max((int(i.max()) for i in ix if i.size), default=0) + 1
        assert syn.bits() == sparse_list_bits((sparse != 0).sum(1), top, 8)


# ---------------------------------------------------------------- placement
def _check_placement(net, pl):
    lim = pl.limits
    masks = connectivity(net)
    for name, pop in net.populations.items():
        seen = np.concatenate([b.index for b in pl.blocks if b.node == name])
        assert np.array_equal(np.sort(seen), np.arange(pop.size)), name  # each neuron once
    cores = {(b.chip, b.core) for b in pl.blocks}
    assert len(cores) == len(pl.blocks)  # one block per core
    assert all(0 <= b.core < net.profile.cores_per_chip for b in pl.blocks)
    block_of = {}
    for i, b in enumerate(pl.blocks):
        for r in RESOURCES:
            assert b.used[r] <= lim[r], (b.node, r)
        assert b.used["compartments"] == b.size
        block_of.setdefault(b.node, np.full(net.nodes[b.node].size, -1))[b.index] = i
    # input axons: sources with a non-zero synapse into the block (dense), pixels (conv);
    # output axons: per source neuron, the destination blocks it reaches
    out_axons = np.zeros(len(pl.blocks), int)
    for src, dst, m in masks:
        for i, b in enumerate(pl.blocks):
            if b.node != dst:
                continue
            reach = m[b.index].any(axis=0)
            if src in block_of:
                np.add.at(out_axons, block_of[src][reach], 1)
    for i, b in enumerate(pl.blocks):
        if all(isinstance(net.nodes[p.name], ir.Dense) for p in projections_of(net)
               if p.dst == b.node):
            want = sum(int(m[b.index].any(axis=0).sum()) for s, d, m in masks if d == b.node)
            assert b.used["in_axons"] == want
    # conv out-axons use the receptive box (a superset of the non-zero reach)
    assert np.all(np.array([b.used["out_axons"] for b in pl.blocks]) >= out_axons)
    dense_only = [i for i, b in enumerate(pl.blocks) if b.node in net.populations and all(
        p.kind == "dense" for p in projections_of(net) if p.src == b.node)]
    for i in dense_only:
        assert pl.blocks[i].used["out_axons"] == out_axons[i]


def test_placement_respects_every_limit_and_recounts(rng):
    for seed in range(3):
        r = np.random.default_rng(seed)
        net = mlp(r, sizes=(int(r.integers(20, 60)), int(r.integers(200, 1500)),
                            int(r.integers(900, 2600)), 10), density=r.uniform(0.05, 0.9))
        pl = place(net)
        _check_placement(net, pl)
    net = convnet(rng, pool=True)
    _check_placement(net, place(net))


def test_splitting_is_driven_by_synapse_memory():
    # 200 dense 8-bit inputs into 1000 neurons: one axon costs 16 runs of 576 bits, so
    # 200 axons need 1,843,200 bits > 1,048,576: synapse memory sets two or more cores
    rng = np.random.default_rng(1)
    net = mlp(rng, sizes=(200, 1000), density=1.0)
    pl = place(net)
    assert len(pl.blocks) >= 2
    assert pl.blocks[0].used["synapse_bits"] <= 1_048_576
    p = plan(net)
    assert p.binding_limit == "synapse_bits"


def test_fit_refusal_names_node_resource_need_and_limit(tmp_path, capsys):
    rng = np.random.default_rng(2)
    nodes = {"in": ir.InputNode("in", (5000,)),
             "d": ir.Dense("d", weight=rng.integers(1, 255, (1, 5000))),
             "big": ir.LIFPopulation("big", (1,), du=1, dv=1, vth=10),
             "out": ir.OutputNode("out", (1,))}
    net = nh.Network(nodes, [("in", "d"), ("d", "big"), ("big", "out")], "loihi1")
    p = plan(net)
    assert not p.fits
    assert "'big'" in p.refusal and "5000 input axons" in p.refusal and "4096" in p.refusal
    d = p.to_dict()
    assert d["fits"] is False and d["cores_used"] is None
    path = nh.write_network(net, tmp_path / "big.q.nir")
    js = tmp_path / "p.json"
    assert main(["map", str(path), "--json", str(js)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "5000 input axons" in err and "4096" in err
    assert json.loads(js.read_text())["fits"] is False
    # the same neuron fits a generic profile with 8192 input axons per core
    assert plan(net, profile="generic(input_axons_per_core=8192)").fits


# ---------------------------------------------------------------- events
def _recount(net, pl, x):
    """Events recounted from an emulator run with plain loops over spikes and blocks."""
    from neurohw.emulate import run

    res = run(net, x, record=("spikes", "v", "u"), engine="numpy")
    xb = np.asarray(x).reshape((-1,) + np.asarray(x).shape[-2:])
    spikes = {k: np.asarray(v) for k, v in res.spikes.items()}
    spikes.update({k: (xb != 0).astype(np.int8) for k in net.of_type(ir.InputNode)})
    B = xb.shape[0]
    syn = 0
    msgs = hops = 0
    core_of = {}
    for i, b in enumerate(pl.blocks):
        for n in b.index:
            core_of[(b.node, int(n))] = i
    for src, dst, m in connectivity(net, structural=True):
        blocks = [i for i, b in enumerate(pl.blocks) if b.node == dst]
        for n in range(m.shape[1]):
            cnt = int(spikes[src][..., n].sum())
            if not cnt:
                continue
            for j in blocks:
                if m[pl.blocks[j].index, n].any():
                    msgs += cnt
                    if src in net.populations:
                        (ax, ay), (bx, by) = pl.core_xy(core_of[(src, n)]), pl.core_xy(j)
                        hops += cnt * (abs(ax - bx) + abs(ay - by))
    for src, dst, m in connectivity(net):
        syn += int((spikes[src].sum(axis=(0, 1)) * m.sum(axis=0)).sum())
    act = idle = nspk = 0
    for k in net.populations:
        u, v, s = res.u[k], res.v[k], res.spikes[k]
        for bi in range(B):
            pu = np.zeros(u.shape[2], int)
            pv = np.zeros(u.shape[2], int)
            for t in range(u.shape[1]):
                a = (u[bi, t] != 0) | (v[bi, t] != 0) | (pu != 0) | (pv != 0) | (s[bi, t] != 0)
                act += int(a.sum())
                idle += int((~a).sum())
                pu, pv = u[bi, t], v[bi, t]
        nspk += int(s.sum())
    return {"synops": syn / B, "neuron_updates_active": act / B,
            "neuron_updates_idle": idle / B, "spikes": nspk / B, "messages": msgs / B,
            "hops": hops / B}


def test_event_counts_are_exact(rng):
    net = mlp(rng, sizes=(30, 200, 1300, 10), density=0.3)
    x = (rng.random((2, 12, 30)) < 0.3).astype(np.int64)
    p = plan(net, x)
    ev = p.to_dict()["events"]
    want = _recount(net, p.placement, x)
    for k in ("synops", "neuron_updates_active", "neuron_updates_idle", "spikes"):
        assert ev[k] == pytest.approx(want[k], abs=1e-9), k
    assert ev["spike_messages"] == pytest.approx(want["messages"], abs=1e-9)
    assert ev["spike_hops"] == pytest.approx(want["hops"], abs=1e-9)
    assert ev["neuron_updates_active"] + ev["neuron_updates_idle"] == 12 * net.num_neurons
    assert 0 < ev["synops"] and ev["spikes"] > 0


def test_event_counts_exact_on_conv_and_pool(rng):
    net = convnet(rng, pool=True)
    x = (rng.random((1, 6, 2 * 12 * 12)) < 0.4).astype(np.int64)
    p = plan(net, x)
    ev = p.to_dict()["events"]
    want = _recount(net, p.placement, x)
    for k in ("synops", "neuron_updates_active", "neuron_updates_idle", "spikes"):
        assert ev[k] == want[k], k
    assert ev["spike_messages"] == want["messages"] and ev["spike_hops"] == want["hops"]
    assert p.metrics["synops_effective"] == want["synops"]


def test_worst_case_without_input(rng):
    net = mlp(rng, sizes=(30, 200, 10))
    d = plan(net, steps=4).to_dict()
    ev = d["events"]
    assert ev["worst_case"] and d["input"] is None and ev["steps"] == 4
    assert ev["synops"] == 4 * net.num_synapses
    assert ev["spikes"] == 4 * net.num_neurons and ev["neuron_updates_idle"] == 0


# ---------------------------------------------------------------- cost, metrics, outputs
def test_energy_latency_from_events_and_constants(rng):
    net = mlp(rng, sizes=(30, 200, 1300, 10), density=0.3)
    x = (rng.random((1, 10, 30)) < 0.3).astype(np.int64)
    d = plan(net, x).to_dict()
    ev, c = d["events"], d["constants"]
    cv = {k: v["value"] for k, v in c.items()}
    br = d["energy_j"]["breakdown"]
    assert br["synops"] == pytest.approx(ev["synops"] * cv["davies2018.synop_energy"])
    assert br["neuron_updates_active"] == pytest.approx(
        ev["neuron_updates_active"] * cv["davies2018.update_active_energy"])
    assert d["energy_j"]["total"] == pytest.approx(sum(br.values()))
    assert d["edp_js"] == pytest.approx(d["energy_j"]["total"] * d["latency_s"]["per_inference"])
    assert d["latency_s"]["per_inference"] == pytest.approx(10 * d["latency_s"]["per_step"])
    # latency per step >= barrier + the busiest core's synaptic work in the busiest step
    assert d["latency_s"]["per_step"] > d["latency_s"]["barrier"]
    for k, v in c.items():
        assert set(v) == {"value", "unit", "source"} and v["unit"] in ("J", "s") and v["source"]
    # loihi2: every constant marked assumed
    d2 = plan(mlp(rng, sizes=(30, 200, 10), profile="loihi2")).to_dict()
    assert all("assumed" in v["source"] for v in d2["constants"].values())


def test_neurobench_metrics(rng):
    net = mlp(rng, sizes=(30, 200, 10), density=0.3)
    x = (rng.random((3, 8, 30)) < 0.3).astype(np.int64)
    m = plan(net, x).metrics
    w = [n.weight for n in net.projections.values()]
    assert m["connection_sparsity"] == round(sum(int((a == 0).sum()) for a in w)
                                             / sum(a.size for a in w), 4)
    assert m["synops_dense"] == 8 * sum(a.size for a in w)
    from neurohw.emulate import run

    res = run(net, x)
    tot = sum(s.size for s in res.spikes.values())
    nz = sum(int(s.sum()) for s in res.spikes.values())
    assert m["activation_sparsity"] == pytest.approx((tot - nz) / tot)
    # footprint: 8-bit weights, per-neuron du/vth/bias in their widths, shared dv/bias_exp
    fp = sum(a.size for a in w)  # 8 bits each
    for pop in net.populations.values():
        n = pop.size
        fp += -(-n * 12 // 8) + 2 + -(-n * 17 // 8) + -(-n * 13 // 8) + 1 + 2 * (-(-n * 24 // 8))
    assert m["footprint_bytes"] == fp


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.tags, self.rects, self.rows, self.links = set(), [], 0, 0, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "rect" and a.get("class") == "bar":
            self.rects += 1
        if tag == "tr":
            self.rows += 1
        for k in ("src", "href"):
            if k in a:
                self.links.append(a[k])


def test_cli_map_json_and_html(tmp_path, capsys, rng):
    net = convnet(rng)
    path = nh.write_network(net, tmp_path / "m.q.nir")
    x = (rng.random((4, 2 * 12 * 12)) < 0.3).astype(np.int64)
    np.save(tmp_path / "x.npy", x)
    js, ht = tmp_path / "p.json", tmp_path / "p.html"
    assert main(["map", str(path), "--input", str(tmp_path / "x.npy"), "--json", str(js),
                 "--html", str(ht)]) == 0
    out = capsys.readouterr().out
    assert "cores on" in out and "energy per inference" in out
    d = json.loads(js.read_text())
    for key in ("profile", "dt", "input", "cores_used", "chips_used", "fits", "binding_limit",
                "blocks", "events", "energy_j", "latency_s", "edp_js", "metrics", "constants"):
        assert key in d, key
    assert d["input"]["shape"] == [1, 4, 288]  # (B, T, n) as every command loads it
    for b in d["blocks"]:
        assert {"node", "neurons", "core", "chip"} <= set(b)
        for r in RESOURCES:
            assert set(b[r]) == {"used", "limit"}
    for k in ("synops", "neuron_updates_active", "neuron_updates_idle", "spikes", "spike_hops"):
        assert k in d["events"]
    for k in ("footprint_bytes", "connection_sparsity", "activation_sparsity", "synops_dense",
              "synops_effective"):
        assert k in d["metrics"]
    p = _Collect()
    p.feed(ht.read_text())
    assert {"core-utilization", "energy-breakdown", "per-step-activity", "constants",
            "blocks", "verdict"} <= p.ids
    assert p.rects == 4 * d["cores_used"]
    assert not p.links and "script" not in p.tags  # self-contained
    # bad input: one line, exit 2
    assert main(["map", str(tmp_path / "nope.nir")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["map", str(path), "--steps", "0"]) == 2


def test_conv_plan_scales_fast(rng):
    net = convnet(rng, c0=2, c=32, hw=48, head=False)
    d = plan(net).to_dict()
    assert d["fits"] and d["cores_used"] >= 2 * 32 * 48 * 48 // 1024
    assert all(b[r]["used"] <= b[r]["limit"] for b in d["blocks"] for r in RESOURCES)
    # the same layers with a dense read-out of all 73,728 neurons into one neuron cannot fit
    bad = plan(convnet(rng, c0=2, c=32, hw=48))
    assert not bad.fits and "'p3'" in bad.refusal and "input axons" in bad.refusal


@pytest.mark.slow
def test_one_million_neuron_conv_plan_under_a_minute():
    import time

    rng = np.random.default_rng(0)
    nodes = {"in": ir.InputNode("in", (2, 128, 128)),
             "c1": ir.Conv2d("c1", weight=rng.integers(-100, 100, (32, 2, 3, 3)),
                             input_shape=(2, 128, 128), padding=(1, 1)),
             "p1": ir.LIFPopulation("p1", (32, 128, 128), du=100, dv=100, vth=1000),
             "c2": ir.Conv2d("c2", weight=rng.integers(-100, 100, (32, 32, 3, 3)),
                             input_shape=(32, 128, 128), padding=(1, 1)),
             "p2": ir.LIFPopulation("p2", (32, 128, 128), du=100, dv=100, vth=1000),
             "out": ir.OutputNode("out", (32, 128, 128))}
    edges = [("in", "c1"), ("c1", "p1"), ("p1", "c2"), ("c2", "p2"), ("p2", "out")]
    net = ir.Network(nodes, edges, "loihi1")
    t0 = time.perf_counter()
    d = plan(net).to_dict()
    assert time.perf_counter() - t0 < 60
    assert d["fits"] and d["cores_used"] >= 1024 and d["chips_used"] >= 8


def test_conv_mask_matches_brute_force(rng):
    from neurohw.mapping.place import conv_dense_mask

    for stride, pad, dil, groups in [(1, 1, 1, 1), (2, 0, 1, 2), (1, 2, 2, 1), (3, 1, 1, 4)]:
        w = rng.integers(-3, 4, (4, 4 // groups, 3, 3))
        conv = ir.Conv2d("c", weight=w, input_shape=(4, 9, 8), stride=stride, padding=pad,
                         dilation=dil, groups=groups)
        assert np.array_equal(conv_dense_mask(conv), brute_conv_mask(conv))
        x = rng.integers(0, 2, (3, 4 * 9 * 8))
        from neurohw.mapping.place import conv_count, conv_transpose_count

        assert np.array_equal(conv_count(conv, x), x @ brute_conv_mask(conv).T.astype(int))
        assert np.array_equal(conv_transpose_count(conv, np.ones(conv.out_shape, int)),
                              brute_conv_mask(conv).sum(axis=0))


def test_conv_into_flat_population_and_recurrence(rng):
    # Conv -> Flatten -> LIF(n) (range split with the conv as a matrix) and a recurrent Dense
    conv = ir.Conv2d("c", weight=rng.integers(-50, 50, (3, 2, 3, 3)), input_shape=(2, 6, 6))
    n = int(np.prod(conv.out_shape))
    nodes = {"in": ir.InputNode("in", (2, 6, 6)), "c": conv,
             "f": ir.Flatten("f", input_shape=conv.out_shape),
             "p": ir.LIFPopulation("p", (n,), du=10, dv=10, vth=20),
             "r": ir.Dense("r", weight=rng.integers(-20, 20, (n, n))),
             "out": ir.OutputNode("out", (n,))}
    edges = [("in", "c"), ("c", "f"), ("f", "p"), ("p", "r"), ("r", "p"), ("p", "out")]
    net = nh.Network(nodes, edges, "loihi1")
    x = (rng.random((2, 10, 72)) < 0.4).astype(np.int64)
    p = plan(net, x)
    assert p.fits
    _check_placement(net, p.placement)
    want = _recount(net, p.placement, x)
    ev = p.to_dict()["events"]
    for k in ("synops", "neuron_updates_active", "spikes"):
        assert ev[k] == want[k], k
    assert plan(net).fits  # worst case too


def test_html_for_a_refused_plan(tmp_path):
    from neurohw.mapping.html import plan_html

    page = plan_html({"fits": False, "profile": "loihi1", "refusal": "node 'x': <too big>"})
    p = _Collect()
    p.feed(page)
    assert "verdict" in p.ids and "&lt;too big&gt;" in page


@pytest.mark.parametrize("C,F,H,W,k,s,pad", [(2, 4, 8, 8, 3, 1, "same"), (3, 5, 10, 9, 3, 2, "valid"),
                                             (4, 6, 16, 16, 3, 1, "same"), (2, 3, 12, 12, 4, 2, "valid"),
                                             (1, 4, 28, 28, 5, 1, "valid"), (3, 8, 20, 20, 3, 1, "same")])
def test_conv_synapse_bits_equal_nengo_loihi(C, F, H, W, k, s, pad):
    """A whole conv layer on one core: neurohw's bits equal nengo-loihi's population-axon
    encoding (conv2d_loihi_weights + Synapse.bits) for 8-bit weights."""
    warnings.filterwarnings("ignore", module="nengo_loihi")
    nengo = pytest.importorskip("nengo")
    conv_mod = pytest.importorskip("nengo_loihi.conv")
    block = pytest.importorskip("nengo_loihi.block")
    from neurohw.mapping.place import _conv_box_usage

    rng = np.random.default_rng(C * 100 + F * 10 + k)
    kern = rng.integers(-100, 100, (k, k, C, F)).astype(float)
    shape = nengo.transforms.ChannelShape((C, H, W), channels_last=False)
    t = nengo.Convolution(F, shape, kernel_size=(k, k), strides=(s, s), padding=pad,
                          channels_last=False, init=kern)
    weights, indices, a2w, offsets = conv_mod.conv2d_loihi_weights(t)
    syn = block.Synapse(H * W)
    syn.set_population_weights(weights, indices, a2w, offsets, pop_type=32)
    assert syn.idx_bits() >= 0  # a valid encoding (index within 12 bits)
    conv = ir.Conv2d("c", weight=np.transpose(kern, (3, 2, 0, 1)).astype(int),
                     input_shape=(C, H, W), stride=s, padding=(k - 1) // 2 if pad == "same" else 0)
    _, oh, ow = conv.out_shape
    assert (oh, ow) == tuple(t.output_shape.spatial_shape)
    bits, axons = _conv_box_usage(conv, ((0, F), (0, oh), (0, ow)), F * oh * ow)
    assert bits == syn.bits()
    used = int(np.count_nonzero(np.asarray(offsets) >= 0))  # nengo also lists unused pixels
    assert axons == used


def test_traffic_aware_allocation_keeps_connected_blocks_on_a_chip(rng):
    """Two chains interleaved in network order on 4-core chips: the greedy allocator puts
    connected blocks together, so fewer axons cross chips than filling cores in order."""
    prof = "generic(neurons_per_core=100,cores_per_chip=4)"
    nodes, edges = {}, []
    for ch in "AB":
        nodes[f"in{ch}"] = ir.InputNode(f"in{ch}", (20,))
    prev = {"A": "inA", "B": "inB"}
    for layer in range(3):
        for ch in "AB":
            d, p = f"d{ch}{layer}", f"{ch}{layer}"
            n_in = int(np.prod(nodes[prev[ch]].out_shape))
            nodes[d] = ir.Dense(d, weight=rng.integers(1, 100, (200, n_in)))
            nodes[p] = ir.LIFPopulation(p, (200,), du=1, dv=1, vth=100)
            edges += [(prev[ch], d), (d, p)]
            prev[ch] = p
    net = nh.Network(nodes, edges, prof)
    pl = place(net)
    rank = {}
    for name in net.populations:  # network order: population order, then neuron index
        for b in sorted((b for b in pl.blocks if b.node == name), key=lambda b: b.index[0]):
            rank[id(b)] = len(rank)

    def crossing(chip_of):
        n = 0
        for src, dst, m in connectivity(net):
            if src not in net.populations:
                continue
            for a in (b for b in pl.blocks if b.node == src):
                for b in (b for b in pl.blocks if b.node == dst):
                    if chip_of(a) != chip_of(b):
                        n += int(m[b.index][:, a.index].any(axis=0).sum())
        return n

    greedy = crossing(lambda b: b.chip)
    in_order = crossing(lambda b: rank[id(b)] // 4)
    assert greedy < in_order, (greedy, in_order)


def test_cli_map_bad_inputs_one_line_exit_2(tmp_path, capsys, rng):
    net = mlp(rng, sizes=(6, 20, 4))
    q = nh.write_network(net, tmp_path / "m.q.nir")
    np.save(tmp_path / "wrong.npy", np.zeros((5, 7), np.int64))  # 7 inputs, model has 6
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "text.nir").write_text("not hdf5")
    cases = [
        ["map", str(q), "--input", str(tmp_path / "wrong.npy")],
        ["map", str(q), "--input", str(tmp_path / "obj.npy")],
        ["map", str(q), "--input", str(tmp_path / "missing.npy")],
        ["map", str(tmp_path / "text.nir")],
        ["map", str(ROOT / "examples" / "models" / "digits.nir")],  # float NIR: quantize first
        ["map", str(q), "--profile", "loihi7"],
        ["map", str(q), "--profile", "generic(neurons_per_core=0)"],
        ["map", str(q), "--json", str(tmp_path / "text.nir" / "p.json")],  # a file in the way
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "error" in err and "Traceback" not in err, argv
    assert not (tmp_path / "no").exists()
