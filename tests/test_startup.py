"""The first photo as fast as the hundredth: commands import only what they need, networks
are compiled once per machine, a daemon warms up in the background, and results do not
depend on whether the compiled kernels were ready."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from tests.helpers import REPO, loopback_endpoint, plugin_client, start_daemon

HEAVY = ("onnxruntime", "numba", "openvino", "scipy")


def imported_by(*argv: str) -> set[str]:
    """The heavy modules a CLI command imports (it runs in a child process)."""
    program = (
        "import sys\n"
        "from colorize_backend.tools import cli\n"
        "try:\n"
        f"    cli.main({list(argv)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    return set(lines[-1].split()) if lines else set()


@pytest.mark.parametrize("argv", [["--help"], ["models"], ["models", "--json"], ["doctor"]])
def test_light_commands_load_no_runtime_and_no_compiler(argv):
    heavy = imported_by(*argv)
    assert not heavy & {"numba", "openvino"}, heavy
    if argv[0] != "doctor":  # doctor lists the runtimes, so it asks onnxruntime
        assert "onnxruntime" not in heavy, heavy


def test_models_without_loading_says_not_yet_checked_and_verify_loads(test_manifest):
    def models(*extra: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "colorize_backend.tools.cli", "--manifest", str(test_manifest),
             "models", *extra],
            capture_output=True, text=True, timeout=300,
        ).stdout  # fmt: skip

    assert "not yet checked" in models()
    assert "CPUExecutionProvider" in models("--verify")


def test_the_optimised_graph_is_kept_and_reused_across_processes(test_manifest, tmp_path):
    photo = tmp_path / "grey.png"
    Image.fromarray(np.tile(np.arange(256, dtype=np.uint8), (64, 1))).save(photo)
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))

    def colorize(target: str) -> np.ndarray:
        done = subprocess.run(
            [sys.executable, "-m", "colorize_backend.tools.cli", "--manifest", str(test_manifest),
             "colorize", str(photo), "-o", str(tmp_path / target), "--runtime", "onnxruntime"],
            capture_output=True, text=True, timeout=300, env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return np.asarray(Image.open(tmp_path / target))

    first = colorize("first.png")
    cached = list((tmp_path / "cache/gimp-colorize/compiled").glob("linear-*.onnx"))
    assert len(cached) == 1 and not list(cached[0].parent.glob("*.partial"))
    stamp = cached[0].stat().st_mtime_ns
    assert np.array_equal(colorize("second.png"), first)
    assert cached[0].stat().st_mtime_ns == stamp  # read, not written again
    cached[0].write_bytes(b"damaged")
    assert np.array_equal(colorize("third.png"), first)  # a damaged entry is replaced
    assert cached[0].stat().st_size > 100


def test_a_daemon_answers_at_once_and_warms_up_in_the_background(test_manifest, tmp_path):
    log = tmp_path / "daemon.log"
    daemon = start_daemon(loopback_endpoint(), test_manifest, "--log-file", str(log))
    try:
        deadline = time.monotonic() + 60
        while "compiled kernels ready" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        text = log.read_text()
        assert "compiled kernels ready" in text and "model linear loaded" in text
        client = plugin_client(daemon.endpoint)
        client.hello()
        reply, _ = client.colorize(64, 48, "gray", bytes(64 * 48))
        assert reply["ok"]
    finally:
        daemon.stop()


def test_the_numpy_path_matches_the_compiled_kernels(colorizer):
    """A photo colorized while the kernels still load takes the numpy path: the same colour
    within one level."""
    from colorize_backend.core import compiled, planes

    rng = np.random.default_rng(8)
    pixels = rng.integers(0, 256, (97, 131, 3), dtype=np.uint8)
    ab = rng.normal(0, 25, (2, 25, 33)).astype(np.float32)
    assert compiled.kernels() is not None
    fast = planes.compose(pixels, ab, 1.3)
    slow = np.empty_like(fast)
    planes.compose_banded(pixels, ab, 1.3, None, slow)
    assert np.abs(fast.astype(int) - slow).max() <= 1
    small_fast = planes.network_lightness(pixels, 64, 32)
    small_slow = planes.reduce_plane(planes.full_lightness(pixels), *small_fast.shape[:1:-1])
    assert np.abs(small_fast - small_slow[None, None]).max() < 0.05  # L units


def test_the_plugin_client_imports_nothing_heavy():
    program = (
        f"import sys; sys.path.insert(0, {str(REPO / 'plugin' / 'colorize')!r})\n"
        "import colorize_client\n"
        "print(' '.join(m for m in ('numpy', 'onnxruntime', 'numba') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert done.stdout.strip() == ""
