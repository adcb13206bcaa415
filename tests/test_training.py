"""Every architecture trains a few steps, exports to ONNX by the contract, and runs in the engine.

Needs the `train` extra (PyTorch, EfficientNet-Lite0); skipped without it.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")

from backend.engine import Engine  # noqa: E402
from backend.guidance import Reference  # noqa: E402
from backend.manifest import Manifest  # noqa: E402
from models import export, train  # noqa: E402
from models.arch import ARCHITECTURES  # noqa: E402
from tests.conftest import REPO  # noqa: E402


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A dozen real training photos in two folders."""
    root = tmp_path_factory.mktemp("photos")
    for folder in ("lfw", "scenes"):
        (root / folder).mkdir()
        for source in sorted((REPO.parent / "shared/datasets/train" / folder).iterdir())[:6]:
            shutil.copy(source, root / folder / source.name)
    return root


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_architecture_trains_exports_and_colorizes(name, photos, tmp_path, photo):
    out = tmp_path / "run"
    args = [
        "--arch",
        name,
        "--data",
        str(photos),
        "--val",
        str(photos),
        "--out",
        str(out),
        "--cache",
        str(tmp_path / "cache"),
        "--cache-size",
        "64",
        "--crop",
        "64",
        "--batch",
        "4",
        "--epochs",
        "1",
        "--val-limit",
        "8",
        "--threads",
        "2",
    ]
    checkpoint = train.train(train.parse_args(args))
    record = json.loads((out / "history.jsonl").read_text().splitlines()[-1])
    assert record["step"] == 3 and np.isfinite(record["val_loss"])

    manifest = tmp_path / "models" / "manifest.json"
    manifest.parent.mkdir()
    export.main([str(checkpoint), "--name", name, "--manifest", str(manifest)])
    entry = json.loads(manifest.read_text())["models"][0]
    assert entry["kind"] == ARCHITECTURES[name].kind and len(entry["sha256"]) == 64

    engine = Engine(Manifest.load(manifest), providers=["CPUExecutionProvider"], threads=2)
    grey = photo[..., :1]
    reference = {"auto": None, "exemplar": Reference(photo[::-1].copy(), "exemplar")}.get(
        entry["kind"], Reference(np.dstack([np.repeat(grey, 3, 2), grey]), "hints")
    )
    if entry["kind"] == "auto":
        result = engine.colorize(grey, model=name)
    else:
        result = engine.colorize(grey, reference=reference)
    assert result.model == name and result.pixels.shape == grey.shape[:2] + (3,)
