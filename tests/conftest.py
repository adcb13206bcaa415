"""Shared fixtures: a generated test model, a colorizer, and a live daemon on loopback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from colorize_backend.core.engine import Engine
from colorize_backend.core.manifest import Manifest
from colorize_backend.core.pipeline import Colorizer
from colorize_backend.daemon.front import Daemon, DaemonConfig
from colorize_backend.daemon.protocol import Limits

from tests.helpers import REPO, SlowColorizer, loopback_endpoint
from tests.onnx_models import write_manifest


@pytest.fixture(scope="session")
def test_manifest(tmp_path_factory) -> Path:
    return write_manifest(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def colorizer(test_manifest) -> Colorizer:
    return Colorizer(Manifest.load(test_manifest), Engine(["CPUExecutionProvider"], threads=1))


@pytest.fixture
def daemon(colorizer):
    """A real daemon on a free loopback port; yields its endpoint."""
    endpoint = loopback_endpoint()
    server = Daemon(
        colorizer,
        DaemonConfig(
            endpoint=endpoint,
            workers=2,
            limits=Limits(max_pixels=4_000_000, queue_size=4),
            progress_after_s=0.0,  # every stage reported, however quick
        ),
    )
    server.start()
    yield endpoint
    server.stop()


@pytest.fixture
def make_daemon(colorizer):
    """Start daemons with given settings; all are stopped at the end of the test."""
    started = []

    def make(slow: bool = False, **settings) -> str:
        endpoint = loopback_endpoint()
        used = SlowColorizer(colorizer.manifest, colorizer.engine) if slow else colorizer
        server = Daemon(used, DaemonConfig(endpoint=endpoint, **settings))
        server.start()
        started.append(server)
        return endpoint

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def photo() -> np.ndarray:
    """The bundled black-and-white sample photograph, as the CLI reads it: [H, W, 1] u8."""
    from colorize_backend.tools.images import read_photo

    return read_photo(REPO / "samples" / "sample.jpg").pixels
