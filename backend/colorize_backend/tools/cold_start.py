"""Cold-start rows of the benchmark: what a person waits for, in fresh processes.

Each row is a whole command as a user runs it (`--help`, `models`, one 1-MP photo with the
user's caches warm and with them empty, a daemon started from nothing to its first 1-MP
result through the plug-in's own client), timed as wall time of a new process, the rows
interleaved (A B C … A B C …) and reported as medians.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _cli(manifest: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "colorize_backend.tools.cli", "--manifest", str(manifest), *args]


def _run(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def _fresh_caches(folder: Path, run: int) -> dict[str, str]:
    """Environment with empty user caches: compiled graphs and numba's kernels."""
    cache = folder / f"empty-cache-{run}"
    return dict(os.environ, XDG_CACHE_HOME=str(cache), NUMBA_CACHE_DIR=str(cache / "numba"))


def daemon_to_first_result(manifest: Path, photo: np.ndarray, env: dict[str, str]) -> float:
    """Seconds from starting `colorize-backend serve` to the first result of a 1-MP photo sent
    by the plug-in's client (which waits for the daemon as the plug-in does)."""
    from colorize_backend.tools.bench import PLUGIN_CLIENT

    sys.path.insert(0, str(PLUGIN_CLIENT))
    import colorize_client

    with tempfile.TemporaryDirectory() as folder:
        endpoint = f"ipc://{folder}/cold.sock"
        launcher = _cli(manifest, "serve", "--endpoint", endpoint)
        config = dict(colorize_client.DEFAULTS, endpoint=endpoint, launcher=launcher)
        client = colorize_client.Client(config)
        started = time.perf_counter()
        client.ensure_daemon()
        height, width = photo.shape[:2]
        client.colorize(width, height, "gray", photo.tobytes())
        seconds = time.perf_counter() - started
        client.release()
        subprocess.run(_cli(manifest, "stop", "--endpoint", endpoint), capture_output=True,
                       env=env)  # fmt: skip
    return seconds


def cold_start_rows(manifest: Path, photo: np.ndarray, repeat: int) -> dict[str, Any]:
    """Median wall seconds of each cold-start row, interleaved over `repeat` rounds."""
    from PIL import Image

    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        source = folder / "one.jpg"
        Image.fromarray(photo[..., 0]).save(source, quality=90)
        one_photo = _cli(manifest, "colorize", str(source), "-o", str(folder / "out.png"),
                         "--overwrite")  # fmt: skip
        warm = dict(os.environ)
        _run(one_photo, warm)  # the user's caches as they are after a first photo
        rows: dict[str, Callable[[int], float]] = {
            "help": lambda run: _run(_cli(manifest, "--help"), warm),
            "models": lambda run: _run(_cli(manifest, "models"), warm),
            "one_1MP_photo_caches_warm": lambda run: _run(one_photo, warm),
            "one_1MP_photo_caches_empty": lambda run: _run(one_photo, _fresh_caches(folder, run)),
            "daemon_start_to_first_1MP_result": lambda run: daemon_to_first_result(
                manifest, photo, warm
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in rows}
        for run in range(repeat):
            for name, measure in rows.items():
                times[name].append(measure(run))
    return {
        name: {"median_s": round(statistics.median(v), 3), "runs_s": [round(t, 3) for t in v]}
        for name, v in times.items()
    }
