"""GPU execution (CUDA provider); skipped cleanly on machines without one."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from colorize_backend.core.engine import Engine
from colorize_backend.core.manifest import MANIFEST_PATH, Manifest
from colorize_backend.core.pipeline import Colorizer

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        "CUDAExecutionProvider" not in ort.get_available_providers(),
        reason="needs onnxruntime-gpu and an NVIDIA GPU",
    ),
]


def test_cuda_provider_runs_the_default_model_like_the_cpu(photo):
    manifest = Manifest.load(MANIFEST_PATH)
    gpu = Colorizer(manifest, Engine()).colorize(photo[..., :1])
    cpu = Colorizer(manifest, Engine(["CPUExecutionProvider"])).colorize(photo[..., :1])
    assert gpu.provider == "CUDAExecutionProvider"
    assert np.abs(gpu.pixels.astype(int) - cpu.pixels.astype(int)).mean() < 1.0
