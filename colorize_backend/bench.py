"""`colorize-backend bench`: network latency, end-to-end pipeline, and daemon overhead."""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time

import numpy as np

from colorize_backend.client import DaemonClient
from colorize_backend.contract import ModelKind, example_inputs
from colorize_backend.daemon import Daemon, DaemonConfig
from colorize_backend.pipeline import Colorizer


def _median_ms(fn, repeat: int) -> float:
    fn()  # warm-up: session creation, allocator, caches
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 1)


def synthetic_photo(megapixels: float) -> np.ndarray:
    """A deterministic textured RGB test image of about the given size (4:3)."""
    height = int(round((megapixels * 1e6 * 3 / 4) ** 0.5))
    width = int(round(height * 4 / 3))
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    grey = 128 + 60 * np.sin(x / 37.0) * np.cos(y / 23.0) + 40 * np.sin((x + y) / 91.0)
    return np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def run_bench(colorizer: Colorizer, args: argparse.Namespace) -> dict:
    """Time network-only at 256² and 512², then each size directly and through a live daemon."""
    engine = colorizer.engine
    entry = colorizer.manifest.resolve(args.model)
    report: dict = {
        "model": entry.name,
        "provider": engine.provider_of(entry),
        "threads": engine.threads or os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "repeat": args.repeat,
        "network_ms": {},
        "pipeline": {},
    }
    for side in (256, 512):
        inputs = example_inputs(ModelKind.AUTO, side, side)
        report["network_ms"][f"{side}x{side}"] = _median_ms(
            lambda inputs=inputs: engine.run(entry, inputs), args.repeat
        )
    endpoint = f"tcp://127.0.0.1:{15000 + os.getpid() % 1000}"
    daemon = Daemon(colorizer, DaemonConfig(endpoint=endpoint))
    daemon.start()
    client = DaemonClient(endpoint)
    try:
        client.hello(5.0)
        for megapixels in args.megapixels:
            pixels = synthetic_photo(megapixels)
            repeat = max(2, args.repeat // 3) if megapixels > 4 else args.repeat
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            direct = _median_ms(
                lambda pixels=pixels: colorizer.colorize(pixels, args.model), repeat
            )
            via_daemon = _median_ms(
                lambda pixels=pixels: client.colorize(pixels, args.model), repeat
            )
            report["pipeline"][f"{megapixels:g}MP"] = {
                "size": f"{pixels.shape[1]}x{pixels.shape[0]}",
                "direct_ms": direct,
                "daemon_ms": via_daemon,
                "daemon_overhead_pct": round(100 * (via_daemon - direct) / direct, 1),
                "peak_rss_growth_mb": round(
                    (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024, 1
                ),
                "image_buffer_mb": round(pixels.nbytes / 1e6, 1),
            }
    finally:
        daemon.stop()
    return report
