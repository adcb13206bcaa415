"""The runtimes behind the engine: onnxruntime, and OpenVINO where it is faster."""

from __future__ import annotations

import numpy as np
import pytest
from colorize_backend.core.contract import ModelKind, example_inputs
from colorize_backend.core.engine import OPENVINO, Engine, OpenVinoRunner, OrtRunner
from colorize_backend.core.manifest import MANIFEST_PATH, Manifest

SHIPPED = Manifest.load(MANIFEST_PATH)


@pytest.mark.parametrize("name", sorted(SHIPPED.entries))
def test_openvino_matches_onnxruntime_on_the_shipped_models(name):
    pytest.importorskip("openvino")
    entry = SHIPPED.entries[name]
    onnxruntime = OrtRunner(entry, ["CPUExecutionProvider"], 2)
    inputs = example_inputs(entry.kind, 256, 352, optional=onnxruntime.input_names)
    inputs["L"][:] = np.linspace(0, 100, inputs["L"].size, dtype=np.float32).reshape(1, 1, 256, 352)
    reference = onnxruntime.run(inputs)
    openvino = OpenVinoRunner(entry, 2).run(inputs)
    assert openvino.shape == reference.shape
    assert np.abs(openvino - reference).max() < 0.01


def test_the_engine_uses_the_runtime_it_was_told_to():
    entry = SHIPPED.resolve(None, ModelKind.AUTO)
    off = Engine(["CPUExecutionProvider"], threads=2, openvino="off")
    assert off.provider_of(entry) == "CPUExecutionProvider"
    if pytest.importorskip("openvino"):
        on = Engine(["CPUExecutionProvider"], threads=2, openvino="on")
        assert on.provider_of(entry) == OPENVINO
        auto = Engine(["CPUExecutionProvider"], threads=2)
        assert auto.provider_of(entry) in (OPENVINO, "CPUExecutionProvider")  # the faster one
