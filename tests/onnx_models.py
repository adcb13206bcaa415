"""Small generated ONNX colorizers following the model contract, for real-onnxruntime tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from colorize_backend.core.manifest import sha256_of
from onnx import TensorProto, helper, numpy_helper

# ab = (A_GAIN * L + A_BIAS, B_GAIN * L + B_BIAS) averaged over 4x4 cells.
A_GAIN, A_BIAS, B_GAIN, B_BIAS = 0.4, -20.0, -0.3, 30.0


def _save(nodes, name: str, inputs, path: Path, initializers=()) -> Path:
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n, shape in inputs],
        [helper.make_tensor_value_info("ab", TensorProto.FLOAT, ["N", 2, "h", "w"])],
        list(initializers),
    )
    return _save_graph(graph, path)


def _const(name: str, values, dtype=np.float32):
    return numpy_helper.from_array(np.array(values, dtype), name)


def _pool4(source: str, target: str):
    return helper.make_node("AveragePool", [source], [target], kernel_shape=[4, 4], strides=[4, 4])


def write_linear_auto_model(path: Path) -> Path:
    """`auto`: L → AveragePool(4) → 1x1 conv → ab at 1/4 size: a known, analysable colorizer."""
    nodes = [_pool4("L", "pooled"), helper.make_node("Conv", ["pooled", "weight", "bias"], ["ab"])]
    weights = [_const("weight", [[[[A_GAIN]]], [[[B_GAIN]]]]), _const("bias", [A_BIAS, B_BIAS])]
    return _save(nodes, "linear_auto", [("L", ["N", 1, "H", "W"])], path, weights)


def write_nan_auto_model(path: Path) -> Path:
    """`auto`, broken: the linear colorizer plus log(L - 50): NaN wherever the photo is darker
    than L 50, -Inf where it is exactly 50."""
    nodes = [
        _pool4("L", "pooled"),
        helper.make_node("Conv", ["pooled", "weight", "bias"], ["linear"]),
        helper.make_node("Sub", ["pooled", "fifty"], ["shifted"]),
        helper.make_node("Log", ["shifted"], ["broken"]),
        helper.make_node("Add", ["linear", "broken"], ["ab"]),
    ]
    weights = [
        _const("weight", [[[[A_GAIN]]], [[[B_GAIN]]]]),
        _const("bias", [A_BIAS, B_BIAS]),
        _const("fifty", [50.0]),
    ]
    return _save(nodes, "nan_auto", [("L", ["N", 1, "H", "W"])], path, weights)


def write_endless_auto_model(path: Path, iterations: int = 10**9) -> Path:
    """`auto`, never finishing in practice: the linear colorizer, then a Loop that adds zero
    to its output `iterations` times (onnxruntime runs each turn; nothing can interrupt it)."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["carried", "nothing"], ["carried_out"]),
        ],
        "add_zero",
        [
            helper.make_tensor_value_info("turn", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("carried", TensorProto.FLOAT, None),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("carried_out", TensorProto.FLOAT, None),
        ],
        [_const("nothing", [0.0])],
    )
    nodes = [
        _pool4("L", "pooled"),
        helper.make_node("Conv", ["pooled", "weight", "bias"], ["linear"]),
        helper.make_node("Loop", ["turns", "keep_going", "linear"], ["ab"], body=body),
    ]
    weights = [
        _const("weight", [[[[A_GAIN]]], [[[B_GAIN]]]]),
        _const("bias", [A_BIAS, B_BIAS]),
        _const("turns", iterations, np.int64),
        _const("keep_going", True, np.bool_),
    ]
    return _save(nodes, "endless_auto", [("L", ["N", 1, "H", "W"])], path, weights)


def write_misshapen_auto_model(path: Path) -> Path:
    """`auto` by its inputs, but its output is [N, 5, 7, 3], not [N, 2, h, w]."""
    nodes = [
        helper.make_node("ReduceMean", ["L"], ["mean"], keepdims=1),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["nothing", "block"], ["ab"]),
    ]
    weights = [_const("zero", [0.0]), _const("block", np.ones((1, 5, 7, 3)))]
    return _save(nodes, "misshapen_auto", [("L", ["N", 1, "H", "W"])], path, weights)


def write_hint_model(path: Path) -> Path:
    """`hint`: ab = the hint colours averaged over 4x4 cells (zero where none)."""
    nodes = [
        helper.make_node("Mul", ["hint_ab", "hint_mask"], ["masked"]),
        _pool4("masked", "pooled"),
        _pool4("L", "l_pooled"),
        helper.make_node("Mul", ["l_pooled", "zero"], ["l_zero"]),
        helper.make_node("Add", ["pooled", "l_zero"], ["ab"]),
    ]
    inputs = [
        ("L", ["N", 1, "H", "W"]),
        ("hint_ab", ["N", 2, "H", "W"]),
        ("hint_mask", ["N", 1, "H", "W"]),
    ]
    return _save(nodes, "hint_test", inputs, path, [_const("zero", [0.0])])


def write_exemplar_model(path: Path) -> Path:
    """`exemplar`: ab = the reference's mean a*b*, everywhere."""
    nodes = [
        helper.make_node("Slice", ["ref_lab", "starts", "ends", "axes"], ["ref_ab"]),
        helper.make_node("ReduceMean", ["ref_ab"], ["mean_ab"], axes=[2, 3], keepdims=1),
        _pool4("L", "l_pooled"),
        helper.make_node("Mul", ["l_pooled", "zero"], ["l_zero"]),
        helper.make_node("Add", ["mean_ab", "l_zero"], ["ab"]),
    ]
    constants = [
        _const("starts", [1], np.int64),
        _const("ends", [3], np.int64),
        _const("axes", [1], np.int64),
        _const("zero", [0.0]),
    ]
    inputs = [("L", ["N", 1, "H", "W"]), ("ref_lab", ["N", 3, "Hr", "Wr"])]
    return _save(nodes, "exemplar_test", inputs, path, constants)


def write_falling_back_exemplar_model(path: Path) -> Path:
    """`exemplar` reading the optional `auto_ab`: ab = auto_ab (nothing ever matches)."""
    nodes = [
        helper.make_node("ReduceMean", ["ref_lab"], ["ref_mean"], axes=[1, 2, 3], keepdims=1),
        _pool4("L", "l_pooled"),
        helper.make_node("Add", ["l_pooled", "ref_mean"], ["ignored"]),
        helper.make_node("Mul", ["ignored", "zero"], ["nothing"]),
        helper.make_node("Add", ["auto_ab", "nothing"], ["ab"]),
    ]
    inputs = [
        ("L", ["N", 1, "H", "W"]),
        ("ref_lab", ["N", 3, "Hr", "Wr"]),
        ("auto_ab", ["N", 2, "h", "w"]),
    ]
    return _save(nodes, "fallback_exemplar_test", inputs, path, [_const("zero", [0.0])])


def write_manifest(folder: Path, guided: bool = False) -> Path:
    """A manifest in folder: the linear auto model (default), plus hint/exemplar test models."""
    models = [(write_linear_auto_model(folder / "linear.onnx"), "auto")]
    if guided:
        models += [
            (write_hint_model(folder / "hint.onnx"), "hint"),
            (write_exemplar_model(folder / "exemplar.onnx"), "exemplar"),
        ]
    manifest = folder / "manifest.json"
    entries = [
        {
            "name": path.stem,
            "file": path.name,
            "sha256": sha256_of(path),
            "kind": kind,
            "input_size": 64,
            "multiple": 4,
            "description": "test model",
        }
        for path, kind in models
    ]
    manifest.write_text(json.dumps({"version": 1, "default": "linear", "models": entries}))
    return manifest


def write_rgb_to_ab_model(path: Path, size: int | None = None) -> Path:
    """Shaped like DDColor's export: `input` [N, 3, H, W] RGB in 0..1 → `output` [N, 2, H, W].
    a* = 60·(mean - 0.5), b* = -40·(mean - 0.5): warm lights, blue shadows."""
    dims = ["N", 3, size or "H", size or "W"]
    nodes = [helper.make_node("Conv", ["input", "weight", "bias"], ["output"])]
    weights = [
        _const("weight", [[[[20.0]], [[20.0]], [[20.0]]], [[[-40 / 3]], [[-40 / 3]], [[-40 / 3]]]]),
        _const("bias", [-30.0, 20.0]),
    ]
    graph = helper.make_graph(
        nodes, "rgb_to_ab", [helper.make_tensor_value_info("input", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 2, size or "H",
                                                                       size or "W"])],
        weights,
    )  # fmt: skip
    return _save_graph(graph, path)


def write_rgb_to_rgb_model(path: Path) -> Path:
    """Shaped like DeOldify's export: RGB in → RGB out, here tinted warm (R up, B down)."""
    nodes = [helper.make_node("Mul", ["input", "tint"], ["output"])]
    graph = helper.make_graph(
        nodes, "rgb_to_rgb",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [_const("tint", np.array([1.15, 1.0, 0.75], np.float32).reshape(1, 3, 1, 1))],
    )  # fmt: skip
    return _save_graph(graph, path)


def _save_graph(graph, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
