"""Helpers shared by the tests: free loopback endpoints, raw calls, daemon processes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from colorize_backend.core.errors import ColorizeError
from colorize_backend.core.pipeline import Colorizer
from colorize_backend.daemon.client import DaemonClient

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loopback_endpoint() -> str:
    return f"tcp://127.0.0.1:{free_port()}"


def raw_call(endpoint: str, frames: list, timeout_s: float = 20.0) -> tuple[dict, list[bytes]]:
    """Send any frames (well formed or not) and return the reply's header and other frames."""
    reply = DaemonClient(endpoint).call(frames, timeout_s)
    return json.loads(reply[0]), reply[1:]


def colorize_frames(pixels: np.ndarray, **fields) -> list[bytes]:
    """A colorize request for u8 pixels, with any header fields added or overridden."""
    fmt = {1: "gray", 2: "graya", 3: "rgb", 4: "rgba"}[pixels.shape[2]]
    header = {
        "v": 2,
        "op": "colorize",
        "id": fields.pop("id", "t"),
        "image": {"width": pixels.shape[1], "height": pixels.shape[0], "format": fmt},
    }
    header.update(fields)
    return [json.dumps(header).encode(), pixels.tobytes()]


@dataclass
class DaemonProcess:
    """A daemon started as its own process by a test, stopped by its PID."""

    process: subprocess.Popen
    endpoint: str

    def stop(self, timeout_s: float = 20.0) -> str:
        """Terminate it (SIGTERM, then SIGKILL) and return what it logged."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            out, _ = self.process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate(timeout=timeout_s)
        return out or ""


def start_daemon(
    endpoint: str, manifest: Path | None = None, *extra: str, timeout_s: float = 60.0
) -> DaemonProcess:
    """`colorize-backend serve` in a new process; returns once it answers hello."""
    command = [sys.executable, "-m", "colorize_backend.tools.cli"]
    if manifest is not None:
        command += ["--manifest", str(manifest)]
    command += ["serve", "--endpoint", endpoint, *extra]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO
    )
    handle = DaemonProcess(process, endpoint)
    deadline = time.time() + timeout_s
    while True:
        try:
            DaemonClient(endpoint).hello(0.5)
            return handle
        except ColorizeError:
            if process.poll() is not None or time.time() > deadline:
                log = handle.stop()
                raise RuntimeError(f"daemon at {endpoint} did not start:\n{log}") from None


def stop_pid(pid: int, timeout_s: float = 20.0) -> None:
    """Stop a process this test caused to start (e.g. through the plug-in's launcher)."""
    import os

    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our child: reaped
                return
        except ChildProcessError:  # not our child: gone when kill(0) fails
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


class SlowColorizer(Colorizer):
    """The real pipeline, taking half a second per stage: a job slow enough to walk away from."""

    def colorize(self, *args, progress=lambda stage, done: None, **kwargs):
        def slowly(stage, done):
            progress(stage, done)
            time.sleep(0.5)

        return super().colorize(*args, progress=slowly, **kwargs)


def plugin_client(endpoint: str, **extra):
    """The GIMP plug-in's own client (plugin/colorize/colorize_client.py) for an endpoint."""
    if str(REPO / "plugin" / "colorize") not in sys.path:
        sys.path.insert(0, str(REPO / "plugin" / "colorize"))
    from colorize_client import Client, load_config

    return Client(dict(load_config("/nonexistent.json"), endpoint=endpoint, **extra))
