"""NeuroBench-style metrics of a quantized network (Yik et al., "The NeuroBench
framework for benchmarking neuromorphic computing algorithms and systems",
Nature Communications 16:1545, 2025; definitions as implemented in
``neurobench`` 2.3.0, ``neurobench/metrics``):

* ``footprint_bytes`` -- NeuroBench ``Footprint``: bytes of all parameters and
  buffers.  Here at the quantized widths: per tensor ``ceil(numel x bits / 8)``
  for weights (``num_weight_bits``, zeros included), delays, the five neuron
  parameters (a parameter shared by the whole population is one element) and
  the ``u``/``v`` state buffers (``state_bits`` each, per neuron).
* ``connection_sparsity`` -- ``ConnectionSparsity``: zero weights / all weights
  over the weighted layers (Dense, Conv2d; pooling is not a weighted layer),
  rounded to 4 decimals as NeuroBench does.
* ``activation_sparsity`` -- ``ActivationSparsity``: (neuron outputs - non-zero
  outputs) / neuron outputs over all spiking layers, steps and samples.
* ``synops_dense`` -- ``SynapticOperations["Dense"]``: every input and weight set
  to 1 (connections inside the input, padding excluded), summed over steps, per sample.
* ``synops_effective`` -- ``SynapticOperations["Effective_ACs"]`` for binary
  spikes: non-zero input x non-zero weight pairs, summed over steps, per sample
  (the ``synops`` event count).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import ir

__all__ = ["neurobench_metrics"]


def _bytes(numel: int, bits: int) -> int:
    return -(-int(numel) * int(bits) // 8)


def neurobench_metrics(net: ir.Network, synops_effective: float, steps: int,
                       activation_sparsity: float) -> dict:
    """The five NeuroBench metrics (see module doc) for ``net`` and measured activity."""
    prof = net.profile
    fp = 0
    zeros = total = 0
    dense_per_step = 0
    for name, node in net.of_type((ir.Dense, ir.Sparse, ir.Conv2d, ir.SumPool2d)).items():
        if isinstance(node, ir.Sparse):  # counted as the Dense with the same matrix
            node = ir.Dense(name, weight=node.dense_weight(), num_weight_bits=node.num_weight_bits,
                            delay=node.dense_delay())
        if isinstance(node, ir.SumPool2d):
            c = node.input_shape[0]
            ones = ir.Conv2d(name=name, weight=np.ones((c, 1) + tuple(node.kernel_size), np.int32),
                             input_shape=node.input_shape, stride=node.stride,
                             padding=node.padding, groups=c)
            dense_per_step += ones.num_synapses
            continue
        w = np.asarray(node.weight)
        fp += _bytes(w.size, node.num_weight_bits)
        zeros += int(w.size - np.count_nonzero(w))
        total += int(w.size)
        if isinstance(node, ir.Dense):
            dense_per_step += int(w.size)
            if node.delay is not None:
                fp += _bytes(w.size, int(node.delay.max()).bit_length() or 1)
        else:
            ones = dataclasses.replace(node, weight=np.ones(w.shape, np.int32))
            dense_per_step += ones.num_synapses
    widths = {"du": prof.decay_bits, "dv": prof.decay_bits, "vth": prof.vth_bits,
              "bias_mant": prof.bias_bits,
              "bias_exp": max(1, int(max(abs(prof.bias_exp_min), prof.bias_exp_max)).bit_length()
                              + (prof.bias_exp_min < 0))}
    for pop in net.populations.values():
        for p, bits in widths.items():
            fp += _bytes(1 if pop.uniform(p) is not None else pop.size, bits)
        fp += 2 * _bytes(pop.size, prof.state_bits)
    sparsity = round(zeros / total, 4) if total else 0.0
    return {
        "footprint_bytes": int(fp),
        "connection_sparsity": sparsity,
        "activation_sparsity": None if activation_sparsity is None
        else float(activation_sparsity),
        "synops_dense": float(dense_per_step) * steps,
        "synops_effective": float(synops_effective),
        "definitions": "NeuroBench 2.3.0 (Yik et al., Nat. Commun. 16:1545, 2025): Footprint, "
                       "ConnectionSparsity, ActivationSparsity, SynapticOperations Dense and "
                       "Effective_ACs; widths are the quantized ones",
    }


