"""A collection on a real Dask cluster (`--cluster`): worker processes on loopback.

Needs the `dask` extra (dask + distributed); skipped without it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import free_port

distributed = pytest.importorskip("distributed")

PHOTOS = 40


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """40 small textured grey photos in two folders."""
    root = tmp_path_factory.mktemp("collection")
    rng = np.random.default_rng(4)
    y, x = np.mgrid[0:150, 0:200]
    for i in range(PHOTOS):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(exist_ok=True)
        grey = 128 + 80 * np.sin(x / (7 + i)) * np.cos(y / 11) + rng.normal(0, 5, x.shape)
        Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8)).save(folder / f"{i:02d}.png")
    return root


def colorize(manifest: Path, source: Path, target: Path, *extra: str, timeout: int = 600):
    return subprocess.run(
        [sys.executable, "-m", "colorize_backend.tools.cli", "--manifest", str(manifest),
         "colorize", str(source), "-o", str(target), "--cpu", *extra],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def results(folder: Path) -> dict[str, np.ndarray]:
    return {
        str(p.relative_to(folder)): np.asarray(Image.open(p)).astype(int)
        for p in sorted(folder.rglob("*.png"))
    }


@pytest.fixture(scope="module")
def local_results(test_manifest, photos, tmp_path_factory) -> dict[str, np.ndarray]:
    out = tmp_path_factory.mktemp("local")
    done = colorize(test_manifest, photos, out)
    assert done.returncode == 0, done.stderr
    return results(out)


@pytest.mark.parametrize("transfer", ["paths", "bytes"])
def test_the_cluster_gives_what_the_local_batch_gives(
    test_manifest, photos, local_results, tmp_path, transfer
):
    out = tmp_path / "cluster"
    done = colorize(test_manifest, photos, out, "--cluster", "local:2", "--transfer", transfer)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"colorized {PHOTOS} of {PHOTOS}" in done.stderr
    assert f"files sent as {transfer}" in done.stderr
    assert done.stderr.count(" photo(s), ") == 2  # both workers worked, each reported
    found = results(out)
    assert found.keys() == local_results.keys()  # the layout kept
    for name, pixels in found.items():
        assert np.abs(pixels - local_results[name]).max() <= 1, name
    assert not list(out.rglob("*.partial"))


def test_a_second_run_resumes_and_overwrites_nothing(test_manifest, photos, tmp_path):
    out = tmp_path / "resumed"
    assert colorize(test_manifest, photos, out, "--cluster", "local:2").returncode == 0
    removed = sorted(out.rglob("*.png"))[:5]
    for path in removed:
        path.unlink()
    kept = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    again = colorize(test_manifest, photos, out, "--cluster", "local:2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"colorized 5 of {PHOTOS}" in again.stderr
    assert again.stderr.count("skipped: ") == PHOTOS - 5
    assert all(p.exists() for p in removed)
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in kept.items())  # untouched


def test_every_worker_killed_mid_run_loses_nothing(test_manifest, photos, tmp_path):
    """kill -9 of every worker process at once while the collection runs: the nannies start
    them again, the job every task needs (held by one of them) is made again, and every
    result is there once."""
    port = free_port()
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, scheduler_port=port,
        dashboard_address=None,
    )  # fmt: skip
    client = distributed.Client(cluster)
    try:
        pids = client.run(os.getpid)
        out = tmp_path / "survived"
        run = subprocess.Popen(
            [sys.executable, "-m", "colorize_backend.tools.cli", "--manifest", str(test_manifest),
             "colorize", str(photos), "-o", str(out), "--cpu", "--cluster",
             f"tcp://127.0.0.1:{port}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while len(list(out.rglob("*.png"))) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in pids.values():
            os.kill(pid, signal.SIGKILL)
        _, stderr = run.communicate(timeout=600)
    finally:
        client.close()
        cluster.close()
    assert run.returncode == 0, stderr[-3000:]
    assert len(list(out.rglob("*.png"))) == PHOTOS and not list(out.rglob("*.partial"))
    assert "LOST during the run" in stderr


def test_an_unreachable_scheduler_is_said_within_seconds(test_manifest, photos, tmp_path):
    started = time.monotonic()
    done = colorize(
        test_manifest, photos, tmp_path / "never", "--cluster", f"tcp://127.0.0.1:{free_port()}",
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and "cannot reach the Dask scheduler" in done.stderr
    assert time.monotonic() - started < 60
    assert not (tmp_path / "never").exists()


FREED_BUFFER_KEPT = """
import ctypes
import numpy as np
from colorize_backend.daemon.memory import LIBC, keep_freed_blocks

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks",
                "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

LIBC.mallinfo2.restype = MallInfo2

def free_heap_after_photo_buffers() -> int:
    for _ in range(3):
        np.ones((1024, 1024), np.float32).sum()  # a 4 MB buffer, freed at once
    return LIBC.mallinfo2().fordblks

frozen = free_heap_after_photo_buffers()
changed = keep_freed_blocks()
print(frozen, changed, free_heap_after_photo_buffers())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_workers_reuse_freed_photo_buffers_despite_the_nannys_trim_setting():
    """Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which freezes glibc's
    mmap threshold at 128 kB: every photo-sized buffer is mapped and handed back to the
    system when freed. The worker plugin lets the heap keep it for the next photo."""
    env = dict(os.environ, MALLOC_TRIM_THRESHOLD_="65536")
    done = subprocess.run(
        [sys.executable, "-c", FREED_BUFFER_KEPT],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    frozen, changed, kept = done.stdout.split()
    assert changed == "True"
    assert int(frozen) < 2**20  # each 4 MB buffer went back to the system
    assert int(kept) >= 4 * 2**20  # the heap keeps one for the next photo


def test_tasks_carry_a_few_photos_and_every_thread_still_gets_several():
    from colorize_backend.tools.cluster import MAX_PHOTOS_PER_TASK, photos_per_task

    assert photos_per_task(3, threads=2) == 1  # a handful: one photo per task
    assert photos_per_task(PHOTOS, threads=2) == 5  # these tests: 8 tasks for 2 threads
    assert photos_per_task(1_000_000, threads=64) == MAX_PHOTOS_PER_TASK
    for photos in range(1, 200):
        per_task = photos_per_task(photos, threads=3)
        assert per_task == 1 or photos / per_task >= 4 * 3
