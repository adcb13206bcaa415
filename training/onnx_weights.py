"""Start training from a shipped ONNX model's weights when no PyTorch checkpoint survives.

The exported graph has every batch norm folded into the convolution before it, so the
weights cannot be copied by name. The graph's convolutions are matched, in execution order,
to the network's (shapes checked), and each folded (weight, bias) is unfolded back into
conv + batch norm: the batch norm gets the per-channel mean and variance of the folded
convolution's output on real photos, so that it reproduces the folded layer exactly in
evaluation mode and closely in training mode.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

LOG = logging.getLogger(__name__)
GRAPH_PREFIX = "network."  # training.export wraps the network under this name


def graph_convolutions(path: Path) -> tuple[list[tuple[np.ndarray, np.ndarray | None]], dict]:
    """(weight, bias) of every Conv node in graph order, and all named initializers."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    named = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    convs = []
    for node in graph.node:
        if node.op_type == "Conv":
            weight = named[node.input[1]]
            bias = named[node.input[2]] if len(node.input) > 2 and node.input[2] else None
            convs.append((weight, bias))
    return convs, named


def conv_bn_pairs(model: nn.Module, inputs: tuple) -> list[tuple[nn.Conv2d, nn.BatchNorm2d | None]]:
    """The network's convolutions in execution order, each with the batch norm that reads its
    output (None where the convolution feeds something else)."""
    order: list[tuple[nn.Module, int, int]] = []

    def record(module, args, output):
        order.append((module, id(args[0]), id(output)))

    hooks = [
        m.register_forward_hook(record)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.BatchNorm2d)
    ]
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    pairs = []
    for i, (module, _, output) in enumerate(order):
        if isinstance(module, nn.Conv2d):
            after = order[i + 1] if i + 1 < len(order) else None
            norm = (
                after[0]
                if after and isinstance(after[0], nn.BatchNorm2d) and after[1] == output
                else None
            )
            pairs.append((module, norm))
    return pairs


def graph_bin_centres(path: Path) -> np.ndarray | None:
    """The ab bin centres [Q, 2] an exported bin classifier decodes with (None for regressors)."""
    centres = graph_convolutions(path)[1].get("decode.centres")
    return None if centres is None else centres.astype(np.float32)


@torch.no_grad()
def load_onnx_weights(
    model: nn.Module, path: Path, example: tuple, calibration: list[tuple]
) -> None:
    """Copy an exported graph's weights into `model` (an untrained instance of the same
    architecture, with as many bins as graph_bin_centres).

    example: one input tuple to trace execution order; calibration: input tuples of real
    photos for the batch-norm statistics.
    """
    convs, named = graph_convolutions(path)
    model.eval()
    pairs = conv_bn_pairs(model, example)
    if len(pairs) != len(convs):
        raise ValueError(f"{path}: {len(convs)} convolutions, the network runs {len(pairs)}")
    state = model.state_dict()
    for name, value in named.items():
        key = name.removeprefix(GRAPH_PREFIX)
        if name.startswith(GRAPH_PREFIX) and key in state and state[key].shape == value.shape:
            state[key].copy_(torch.from_numpy(value))
    for (conv, norm), (weight, bias) in zip(pairs, convs):
        if tuple(conv.weight.shape) != weight.shape:
            raise ValueError(
                f"{path}: convolution shapes differ ({tuple(conv.weight.shape)} vs {weight.shape})"
            )
        conv.weight.copy_(torch.from_numpy(weight))
        if norm is None:
            if conv.bias is not None and bias is not None:
                conv.bias.copy_(torch.from_numpy(bias))
            continue
        folded_bias = torch.from_numpy(bias) if bias is not None else torch.zeros(len(weight))
        # identity batch norm plus the folded bias while the statistics are gathered
        assert norm.running_mean is not None and norm.running_var is not None
        norm.running_mean.zero_()
        norm.running_var.fill_(1.0 - norm.eps)
        norm.weight.fill_(1.0)
        norm.bias.copy_(folded_bias)
    _calibrate(model, [n for _, n in pairs if n is not None], calibration)
    LOG.info("loaded %d convolutions from %s", len(convs), path)


def _calibrate(model: nn.Module, norms: list[nn.BatchNorm2d], calibration: list[tuple]) -> None:
    """Give each batch norm the statistics of its input, keeping its output unchanged."""
    sums: dict[nn.BatchNorm2d, list[torch.Tensor]] = {n: [] for n in norms}

    def gather(module, args, output):
        x = args[0].double()
        sums[module].append(torch.stack([x.mean(dim=(0, 2, 3)), (x * x).mean(dim=(0, 2, 3))]))

    hooks = [n.register_forward_hook(gather) for n in norms]
    try:
        for inputs in calibration:
            model(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    for norm, moments in sums.items():
        mean, square = torch.stack(moments).mean(dim=0)
        var = (square - mean * mean).clamp(min=1e-6)
        # (x - mean) / sqrt(var + eps) * sqrt(var + eps) + bias + mean == x + bias
        assert norm.running_mean is not None and norm.running_var is not None
        norm.bias.add_(mean.float())
        norm.running_mean.copy_(mean.float())
        norm.running_var.copy_(var.float())
        norm.weight.copy_(torch.sqrt(var + norm.eps).float())
