"""The models shipped in models/: listed, intact, and following the ONNX contract."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from backend.engine import Engine
from backend.manifest import MANIFEST_PATH, Manifest

MANIFEST = Manifest.load(MANIFEST_PATH)


def test_manifest_has_a_default_auto_model_and_files_match_their_sha256():
    assert MANIFEST.default and MANIFEST.entries[MANIFEST.default].kind == "auto"
    assert MANIFEST.verify() == []


@pytest.mark.parametrize("name", sorted(MANIFEST.entries))
def test_model_follows_the_contract(name):
    entry = MANIFEST.entries[name]
    assert entry.path.stat().st_size < 40e6
    assert {"training_data", "license", "metrics"} <= set(entry.extra)
    session = ort.InferenceSession(str(entry.path), providers=["CPUExecutionProvider"])
    inputs = {i.name: i for i in session.get_inputs()}
    assert "L" in inputs and [o.name for o in session.get_outputs()] == ["ab"]
    for h, w in ((256, 256), (256, 352)):  # dynamic spatial size, as the pipeline needs
        (ab,) = session.run(["ab"], {"L": np.full((1, 1, h, w), 60.0, np.float32)})
        assert ab.shape[:2] == (1, 2) and h % ab.shape[2] == 0 and w % ab.shape[3] == 0
        assert np.isfinite(ab).all() and np.abs(ab).max() < 128


def test_default_model_colors_the_sample(photo):
    result = Engine(MANIFEST, providers=["CPUExecutionProvider"]).colorize(photo[..., :1])
    rgb = result.pixels.astype(int)
    assert np.abs(rgb[..., 0] - rgb[..., 2]).mean() > 3
