"""Shared fixtures: a generated test model, an engine, and a live daemon on loopback."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from colorize_backend.daemon import Daemon, DaemonConfig
from colorize_backend.engine import Engine
from colorize_backend.manifest import Manifest
from tests.onnx_models import write_manifest

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def test_manifest(tmp_path_factory) -> Path:
    return write_manifest(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def engine(test_manifest) -> Engine:
    return Engine(Manifest.load(test_manifest), providers=["CPUExecutionProvider"], threads=1)


@pytest.fixture
def daemon(engine):
    """A real daemon on a free loopback port; yields its endpoint."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    server = Daemon(
        engine, DaemonConfig(endpoint=endpoint, workers=2, queue_size=4, max_pixels=4_000_000)
    )
    server.start()
    yield endpoint
    server.stop()


@pytest.fixture
def photo() -> np.ndarray:
    """A real colour photograph from the repository's sample folder, as RGB u8."""
    from colorize_backend.images import read_image

    return read_image(REPO / "samples" / "sample.jpg")
