"""Figures for docs/cluster.md: the local batch against `--cluster local:1` and `local:2`.

python benchmarks/cluster_bench.py [--photos 20 80] [--rounds 3] [--small 10000] [--output FILE]

- photos/s of `colorize-backend colorize FOLDER -o FOLDER` on 1-MP JPEG photos, locally and
  on a local Dask cluster of 1 and 2 worker processes, as whole commands (start-up
  included), interleaved (A B C A B C ...), medians; from two collection sizes, the
  start-up and the time per photo after it, and the cluster path's overhead per photo
  over the local batch;
- the client's peak resident memory while `--small` tiny files stream through
  `--cluster local:2` (the bound on tasks in flight keeps it flat).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from report import emit


def photo(i: int, side: tuple[int, int]) -> Image.Image:
    width, height = side
    y, x = np.mgrid[0:height, 0:width]
    grey = 128 + 90 * np.sin(x / (23.0 + i % 7)) * np.cos(y / 17.0)
    return Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8))


def command(source: Path, target: Path, cluster: str | None) -> list[str]:
    argv = [sys.executable, "-m", "colorize_backend.tools.cli", "colorize", str(source)]
    argv += ["-o", str(target), "--overwrite"]
    return argv + (["--cluster", cluster] if cluster else [])


def peak_rss_mb(argv: list[str]) -> tuple[float, float]:
    """(seconds, peak resident MB) of a command, its memory sampled every 50 ms."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            break
        time.sleep(0.05)
    return time.perf_counter() - started, peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", type=int, nargs=2, default=[20, 80])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small", type=int, default=10000)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    report: dict = {}
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        sources = {}
        for count in args.photos:
            sources[count] = folder / f"photos{count}"
            sources[count].mkdir()
            for i in range(count):
                photo(i, (1155, 866)).save(sources[count] / f"{i:04d}.jpg", quality=90)
        ways = {"local batch": None, "local:1": "local:1", "local:2": "local:2"}
        seconds: dict[tuple[str, int], list[float]] = {(w, c): [] for w in ways for c in sources}
        for cluster in ways.values():  # untimed: the first run of each way fills the caches
            subprocess.run(command(sources[min(sources)], folder / "out", cluster), check=True,
                           capture_output=True)  # fmt: skip
        for _ in range(args.rounds):
            for name, cluster in ways.items():
                for count, source in sources.items():
                    started = time.perf_counter()
                    subprocess.run(command(source, folder / "out", cluster), check=True,
                                   capture_output=True)  # fmt: skip
                    seconds[(name, count)].append(time.perf_counter() - started)
        few, many = min(sources), max(sources)
        for name in ways:
            t_few = statistics.median(seconds[(name, few)])
            t_many = statistics.median(seconds[(name, many)])
            steady = (t_many - t_few) / (many - few)
            report[name] = {
                "seconds": {str(c): [round(v, 2) for v in seconds[(name, c)]] for c in sources},
                "photos_per_s": round(many / t_many, 2),
                "start_up_s": round(t_few - few * steady, 2),
                "ms_per_photo_after_start_up": round(1000 * steady, 1),
            }
        local = report["local batch"]["ms_per_photo_after_start_up"]
        for name in ("local:1", "local:2"):
            report[name]["overhead_per_photo_pct"] = round(
                100 * (report[name]["ms_per_photo_after_start_up"] / local - 1), 1
            )
        if args.small:
            small = folder / "small"
            small.mkdir()
            tile = photo(0, (64, 48))
            for i in range(args.small):
                tile.save(small / f"{i:05d}.png")
            took, peak = peak_rss_mb(command(small, folder / "small-out", "local:2"))
            report["small_files_client"] = {
                "files": args.small,
                "seconds": round(took, 1),
                "client_peak_rss_mb": round(peak, 1),
            }
    emit(report, args.output)


if __name__ == "__main__":
    main()
