"""Bring-your-own models: graphs shaped like DDColor's and DeOldify's ONNX exports are
detected from their inputs and outputs and run like contract models."""

from __future__ import annotations

import numpy as np
import pytest
from colorize_backend.core.adapters import AdapterKind
from colorize_backend.core.color import rgb_to_lab
from colorize_backend.core.engine import Engine
from colorize_backend.core.errors import ColorizeError
from colorize_backend.core.manifest import Manifest, user_model
from colorize_backend.core.options import ColorizeOptions
from colorize_backend.core.pipeline import Colorizer

from tests.onnx_models import (
    write_linear_auto_model,
    write_manifest,
    write_rgb_to_ab_model,
    write_rgb_to_rgb_model,
)


@pytest.fixture
def colorizer(tmp_path):
    manifest = Manifest.load(write_manifest(tmp_path))
    return Colorizer(manifest, Engine(["CPUExecutionProvider"], threads=1))


def ramp() -> np.ndarray:
    return np.repeat(np.linspace(30, 230, 192).astype(np.uint8)[None, :, None], 128, axis=0)


@pytest.mark.parametrize("size", [None, 64])
def test_an_rgb_to_ab_graph_is_adapted(colorizer, tmp_path, size):
    path = write_rgb_to_ab_model(tmp_path / "ddcolor-like.onnx", size)
    entry = user_model(path)
    assert entry.adapter is not None and entry.adapter.kind is AdapterKind.RGB_TO_AB
    assert entry.adapter.size == ((size, size) if size else None)
    result = colorizer.colorize(ramp(), ColorizeOptions(model=str(path)))
    lab = rgb_to_lab(result.pixels.astype(np.float32) / 255)
    dark, light = lab[64, 10], lab[64, -10]
    assert dark[1] < -5 and dark[2] > 5  # shadows: green-blue side of a*, b* up
    assert light[1] > 5 and light[2] < -3  # lights: a* up, b* down


def test_an_rgb_to_rgb_graph_is_adapted(colorizer, tmp_path):
    path = write_rgb_to_rgb_model(tmp_path / "deoldify-like.onnx")
    assert user_model(path).adapter.kind is AdapterKind.RGB_TO_RGB
    result = colorizer.colorize(ramp(), ColorizeOptions(model=str(path))).pixels.astype(int)
    assert (result[..., 0] - result[..., 2])[:, 40:].mean() > 10  # warmer than grey


def test_a_contract_model_needs_no_adapter_and_others_are_explained(tmp_path):
    assert user_model(write_linear_auto_model(tmp_path / "l.onnx")).adapter is None
    not_onnx = tmp_path / "notes.onnx"
    not_onnx.write_text("not a graph")
    with pytest.raises(ColorizeError, match="cannot be loaded as an ONNX model"):
        user_model(not_onnx)
