"""A yardstick for speed targets: a network shaped like Zhang et al.'s ECCV 2016 colorizer.

The speed targets are ratios to one pass of that classic network on the same machine in the
same run, so that a faster or slower machine (or a busy moment) moves both alike. The
network is built here from the paper's layer table (VGG-style 3x3 convolutions 64 → 512
with strides and dilations, a transposed convolution back to 1/4 size, 313 colour bins, the
bin-to-a*b* projection), batch norm folded into the convolutions as runtimes do, with
random weights: its speed, not its colour, is what is measured. It needs the `onnx`
package (a development dependency).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# (input channels, output channels, stride, dilation) of every 3x3 convolution, in order
ECCV16_CONVOLUTIONS = (
    [(1, 64, 1, 1), (64, 64, 2, 1)]
    + [(64, 128, 1, 1), (128, 128, 2, 1)]
    + [(128, 256, 1, 1), (256, 256, 1, 1), (256, 256, 2, 1)]
    + [(256, 512, 1, 1), (512, 512, 1, 1), (512, 512, 1, 1)]
    + [(512, 512, 1, 2)] * 3
    + [(512, 512, 1, 2)] * 3
    + [(512, 512, 1, 1)] * 3
)
BINS = 313


def write_eccv16_like(path: Path, seed: int = 0) -> Path:
    """The ECCV16-shaped network as ONNX: L [N, 1, H, W] → ab [N, 2, H/4, W/4]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, weights = [], []

    def tensor(name: str, shape: tuple[int, ...]) -> str:
        fan_in = int(np.prod(shape[1:])) or 1
        values = rng.normal(0, (2 / fan_in) ** 0.5, shape).astype(np.float32)
        weights.append(numpy_helper.from_array(values, name))
        return name

    x = "L"
    for i, (cin, cout, stride, dilation) in enumerate(ECCV16_CONVOLUTIONS):
        w, b = tensor(f"w{i}", (cout, cin, 3, 3)), tensor(f"b{i}", (cout,))
        nodes.append(helper.make_node(
            "Conv", [x, w, b], [f"c{i}"], strides=[stride] * 2, dilations=[dilation] * 2,
            pads=[dilation] * 4,
        ))  # fmt: skip
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        x = f"r{i}"
    up_w, up_b = tensor("up_w", (512, 256, 4, 4)), tensor("up_b", (256,))
    nodes.append(helper.make_node("ConvTranspose", [x, up_w, up_b], ["up"], strides=[2, 2],
                                  pads=[1, 1, 1, 1]))  # fmt: skip
    nodes.append(helper.make_node("Relu", ["up"], ["up_r"]))
    x = "up_r"
    for i in range(2):
        w, b = tensor(f"u{i}_w", (256, 256, 3, 3)), tensor(f"u{i}_b", (256,))
        nodes.append(helper.make_node("Conv", [x, w, b], [f"u{i}"], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"u{i}"], [f"u{i}_r"]))
        x = f"u{i}_r"
    bins_w, bins_b = tensor("bins_w", (BINS, 256, 1, 1)), tensor("bins_b", (BINS,))
    nodes.append(helper.make_node("Conv", [x, bins_w, bins_b], ["bins"]))
    nodes.append(helper.make_node("Softmax", ["bins"], ["p"], axis=1))
    nodes.append(helper.make_node("Conv", ["p", tensor("ab_w", (2, BINS, 1, 1))], ["ab"]))
    graph = helper.make_graph(
        nodes, "eccv16_like",
        [helper.make_tensor_value_info("L", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("ab", TensorProto.FLOAT, ["N", 2, "h", "w"])],
        weights,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
