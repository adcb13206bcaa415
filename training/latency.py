"""Network latency of a model of any kind on this machine (batch 1, median of 10)."""

from __future__ import annotations

import statistics
import time

from colorize_backend.core.contract import example_inputs
from colorize_backend.core.engine import Engine
from colorize_backend.core.manifest import ModelEntry


def cpu_latency(engine: Engine, entry: ModelEntry) -> dict:
    """Median network time (ms) at 256² and 512², batch 1, for a model of any kind."""
    latency = {}
    for side in (256, 512):
        inputs = example_inputs(entry.kind, side, side, optional=engine.input_names(entry))
        engine.run(entry, inputs)
        times = []
        for _ in range(10):
            started = time.perf_counter()
            engine.run(entry, inputs)
            times.append(time.perf_counter() - started)
        latency[f"cpu_ms_{side}"] = round(statistics.median(times) * 1000, 2)
    return latency
