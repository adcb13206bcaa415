"""The shipped models: listed, intact, and following the ONNX contract."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from colorize_backend.core.contract import OPTIONAL_INPUTS, ModelKind, ReferenceMode, example_inputs
from colorize_backend.core.engine import Engine
from colorize_backend.core.manifest import MANIFEST_PATH, Manifest
from colorize_backend.core.options import ColorizeOptions
from colorize_backend.core.pipeline import Colorizer
from colorize_backend.core.reference import Reference

from training.metrics import psnr
from training.photos import grey_version

MANIFEST = Manifest.load(MANIFEST_PATH)


def test_manifest_has_a_default_auto_model_and_files_match_their_sha256():
    assert MANIFEST.default and MANIFEST.entries[MANIFEST.default].kind is ModelKind.AUTO
    assert MANIFEST.verify() == []


@pytest.mark.parametrize("name", sorted(MANIFEST.entries))
def test_model_follows_the_contract(name):
    entry = MANIFEST.entries[name]
    assert entry.path.stat().st_size < 40e6
    assert {"training_data", "license", "metrics"} <= set(entry.extra)
    session = ort.InferenceSession(str(entry.path), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    optional = names & set(OPTIONAL_INPUTS)
    assert names - optional == set(entry.kind.inputs)
    assert [o.name for o in session.get_outputs()] == ["ab"]
    for h, w in ((256, 256), (256, 352)):  # dynamic spatial size, as the pipeline needs
        inputs = example_inputs(entry.kind, h, w, lightness=60.0, optional=optional)
        (ab,) = session.run(["ab"], inputs)
        assert ab.shape[:2] == (1, 2) and h % ab.shape[2] == 0 and w % ab.shape[3] == 0
        assert np.isfinite(ab).all() and np.abs(ab).max() < 128


def test_default_model_colors_the_sample(photo):
    colorizer = Colorizer(MANIFEST, Engine(["CPUExecutionProvider"]))
    result = colorizer.colorize(photo[..., :1])
    rgb = result.pixels.astype(int)
    assert np.abs(rgb[..., 0] - rgb[..., 2]).mean() > 3


@pytest.mark.skipif(
    MANIFEST.find_kind(ModelKind.EXEMPLAR) is None, reason="no exemplar model shipped"
)
def test_shipped_exemplar_model_takes_the_colours_of_its_reference(photo):
    """A colour version of the sample, flipped, as the exemplar: the result must come much
    closer to that colour version than the automatic colorization does."""
    y, x = np.mgrid[0 : photo.shape[0], 0 : photo.shape[1]] / max(photo.shape[:2])
    tint = np.stack([0.55 + 0.45 * x, 0.8 - 0.2 * y, 0.45 + 0.5 * y], axis=-1)
    truth = (photo[..., :1] * tint).astype(np.uint8)
    colorizer = Colorizer(MANIFEST, Engine(["CPUExecutionProvider"], threads=2))
    grey = grey_version(truth)
    auto = colorizer.colorize(grey).pixels
    guided = colorizer.colorize(
        grey,
        ColorizeOptions(reference_mode=ReferenceMode.EXEMPLAR),
        Reference(truth[:, ::-1].copy()),
    )
    assert guided.model == MANIFEST.find_kind(ModelKind.EXEMPLAR).name
    assert psnr(guided.pixels, truth) > psnr(auto, truth) + 2
