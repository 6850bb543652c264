"""NeuroBench 2.3.0 cross-check of neurohw's metric definitions on a float snnTorch model.

The snnTorch model has integer-valued weights, so the neurohw network with the same
integers has the same structure; NeuroBench's Benchmark harness measures the snnTorch
model, and neurohw computes its metrics from the same spikes (input and every layer's
output, recorded from the same snnTorch run)."""

import numpy as np
import pytest

import neurohw as nh
from neurohw import ir
from neurohw.mapping import place
from neurohw.mapping.events import events_from_spikes
from neurohw.mapping.metrics import neurobench_metrics

pytest.importorskip("neurobench")
torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")


def test_metrics_match_neurobench():
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import SNNTorchModel

    rng = np.random.default_rng(3)
    w1 = rng.integers(-3, 4, (20, 30)) * (rng.random((20, 30)) < 0.5)
    w2 = rng.integers(-3, 4, (10, 20)) * (rng.random((10, 20)) < 0.5)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = nn.Linear(30, 20, bias=False)
            self.n1 = snn.Leaky(beta=0.9, init_hidden=True)
            self.l2 = nn.Linear(20, 10, bias=False)
            self.n2 = snn.Leaky(beta=0.9, init_hidden=True, output=True)

        def forward(self, x):
            return self.n2(self.l2(self.n1(self.l1(x))))

    model = Net()
    with torch.no_grad():
        model.l1.weight.copy_(torch.tensor(w1, dtype=torch.float32))
        model.l2.weight.copy_(torch.tensor(w2, dtype=torch.float32))
    B, T = 4, 12
    x = (rng.random((B, T, 30)) < 0.3).astype(np.float32)
    bench = Benchmark(SNNTorchModel(model), DataLoader(TensorDataset(torch.tensor(x),
                                                                   torch.zeros(B)), batch_size=B),
                      [], [], [[ConnectionSparsity], [SynapticOperations, ActivationSparsity]])
    nb = bench.run(quiet=True)
    # the same run, recorded: every layer's spikes per step
    snn.utils.reset(model)
    h1, h2 = [], []
    with torch.no_grad():
        for t in range(T):
            s1 = model.n1(model.l1(torch.tensor(x[:, t])))
            s2 = model.n2(model.l2(s1))[0]
            h1.append(s1.numpy())
            h2.append(s2.numpy())
    spikes = {"in": x.astype(np.int8), "p1": np.stack(h1, 1).astype(np.int8),
              "p2": np.stack(h2, 1).astype(np.int8)}
    assert spikes["p1"].any() and spikes["p2"].any()
    nodes = {"in": ir.InputNode("in", (30,)), "d1": ir.Dense("d1", weight=w1),
             "p1": ir.LIFPopulation("p1", (20,), du=0, dv=400, vth=100),
             "d2": ir.Dense("d2", weight=w2),
             "p2": ir.LIFPopulation("p2", (10,), du=0, dv=400, vth=100),
             "out": ir.OutputNode("out", (10,))}
    net = nh.Network(nodes, [("in", "d1"), ("d1", "p1"), ("p1", "d2"), ("d2", "p2"),
                             ("p2", "out")], "loihi1")
    ev = events_from_spikes(place(net), net, spikes)
    m = neurobench_metrics(net, ev.totals["synops"], T, ev.activation_sparsity)
    assert m["connection_sparsity"] == nb["ConnectionSparsity"]
    assert m["synops_dense"] == nb["SynapticOperations"]["Dense"]
    assert m["synops_effective"] == nb["SynapticOperations"]["Effective_ACs"]
    assert nb["SynapticOperations"]["Effective_MACs"] == 0  # binary spikes: all ACs
    assert m["activation_sparsity"] == pytest.approx(nb["ActivationSparsity"])
