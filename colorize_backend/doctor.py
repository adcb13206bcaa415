"""`colorize-backend doctor`: what is installed, what runs, and what is wrong."""

from __future__ import annotations

import importlib
import platform
import sys
from pathlib import Path

from colorize_backend import __version__
from colorize_backend.client import DaemonClient
from colorize_backend.engine import available_providers
from colorize_backend.errors import ColorizeError
from colorize_backend.manifest import Manifest, ManifestError
from colorize_backend.protocol import DEFAULT_ENDPOINT, PROTOCOL_VERSION


def _line(ok: bool, text: str) -> None:
    print(f"[{'ok' if ok else '!!'}] {text}")


def probe_daemon(endpoint: str, timeout_s: float = 1.5) -> dict | None:
    """The daemon's hello reply, or None when nothing answers at endpoint."""
    try:
        return DaemonClient(endpoint).hello(timeout_s)
    except ColorizeError:
        return None


def diagnose(manifest_path: Path, endpoint: str = DEFAULT_ENDPOINT) -> list[str]:
    """Print a report; return the problems found."""
    problems: list[str] = []
    print(
        f"colorize-backend {__version__} on Python {sys.version.split()[0]} ({platform.platform()})"
    )
    for module in ("numpy", "PIL", "zmq", "onnxruntime", "scipy"):
        try:
            version = getattr(importlib.import_module(module), "__version__", "?")
            _line(True, f"{module} {version}")
        except ImportError as exc:
            problems.append(f"{module} is not importable: {exc}")
            _line(False, problems[-1])
    providers = available_providers()
    _line(True, f"onnxruntime providers: {', '.join(providers)}")
    if "CUDAExecutionProvider" not in providers:
        print(
            "     (no CUDA provider: models run on the CPU; install onnxruntime-gpu and the "
            "NVIDIA driver for GPU speed)"
        )
    try:
        manifest = Manifest.load(manifest_path)
        _line(
            True,
            f"manifest {manifest_path}: {len(manifest.entries)} model(s), default "
            f"{manifest.default}",
        )
        for problem in manifest.verify():
            problems.append(problem)
            _line(False, problem)
    except ManifestError as exc:
        problems.append(str(exc))
        _line(False, str(exc))
    hello = probe_daemon(endpoint)
    if hello is None:
        _line(True, f"no daemon answering at {endpoint} (the plug-in starts one when needed)")
    elif hello.get("protocol") != PROTOCOL_VERSION:
        problems.append(f"daemon at {endpoint} speaks protocol {hello.get('protocol')}")
        _line(False, problems[-1])
    else:
        _line(
            True,
            f"daemon at {endpoint}: backend {hello.get('backend_version')}, "
            f"providers {hello.get('providers')}",
        )
    print("no problems found" if not problems else f"{len(problems)} problem(s) found")
    return problems
