"""Small generated ONNX colorizers following the model contract, for real-onnxruntime tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from backend.manifest import sha256_of

# ab = (A_GAIN * L + A_BIAS, B_GAIN * L + B_BIAS) averaged over 4x4 cells.
A_GAIN, A_BIAS, B_GAIN, B_BIAS = 0.4, -20.0, -0.3, 30.0


def write_linear_auto_model(path: Path) -> Path:
    """L [N,1,H,W] → AveragePool(4) → 1x1 conv → ab [N,2,H/4,W/4]: a known, analysable colorizer."""
    weight = numpy_helper.from_array(np.array([[[[A_GAIN]]], [[[B_GAIN]]]], np.float32), "weight")
    bias = numpy_helper.from_array(np.array([A_BIAS, B_BIAS], np.float32), "bias")
    nodes = [
        helper.make_node("AveragePool", ["L"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Conv", ["pooled", "weight", "bias"], ["ab"]),
    ]
    graph = helper.make_graph(
        nodes,
        "linear_auto",
        [helper.make_tensor_value_info("L", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("ab", TensorProto.FLOAT, ["N", 2, "h", "w"])],
        [weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_manifest(folder: Path) -> Path:
    """A manifest in folder listing the linear test model as the default auto colorizer."""
    model = write_linear_auto_model(folder / "linear.onnx")
    manifest = folder / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "version": 1,
                "default": "linear",
                "models": [
                    {
                        "name": "linear",
                        "file": model.name,
                        "sha256": sha256_of(model),
                        "kind": "auto",
                        "input_size": 64,
                        "multiple": 4,
                        "description": "test model",
                    }
                ],
            }
        )
    )
    return manifest
