"""Time reference guidance (painted hints, exemplar) through the pipeline at 1 MP and 12 MP,
interleaved with the automatic colorization it adds to (medians, min, max).

python benchmarks/guidance_bench.py [--output FILE]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from colorize_backend.core.contract import ReferenceMode
from colorize_backend.core.engine import Engine
from colorize_backend.core.manifest import Manifest
from colorize_backend.core.options import ColorizeOptions
from colorize_backend.core.pipeline import Colorizer
from colorize_backend.core.reference import Reference
from colorize_backend.tools.bench import synthetic_photo
from report import emit


def hint_layer(height: int, width: int) -> np.ndarray:
    """A transparent layer with ten painted dots of colour."""
    layer = np.zeros((height, width, 4), np.uint8)
    rng = np.random.default_rng(0)
    for _ in range(10):
        y, x = rng.integers(10, height - 10), rng.integers(10, width - 10)
        layer[y - 3 : y + 4, x - 3 : x + 4] = (*rng.integers(0, 256, 3), 255)
    return layer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    colorizer = Colorizer(Manifest.load(), Engine(["CPUExecutionProvider"]))
    report = {}
    for megapixels in (1.0, 12.0):
        pixels = synthetic_photo(megapixels)
        grey = synthetic_photo(0.3)[::-1, :, :1].astype(np.float32)
        exemplar = np.concatenate([grey, grey * 0.8, grey * 0.5], axis=2).astype(np.uint8)  # warm
        cases = {
            "auto": (ColorizeOptions(), None),
            "hints": (
                ColorizeOptions(reference_mode=ReferenceMode.HINTS),
                Reference(hint_layer(*pixels.shape[:2])),
            ),
            "exemplar": (
                ColorizeOptions(reference_mode=ReferenceMode.EXEMPLAR),
                Reference(exemplar),
            ),
        }
        for options, reference in cases.values():
            colorizer.colorize(pixels, options, reference)  # warm-up
        runs: dict[str, list[float]] = {name: [] for name in cases}
        stages = {}
        for _ in range(args.repeat):  # interleaved: auto, hints, exemplar, auto, ...
            for name, (options, reference) in cases.items():
                started = time.perf_counter()
                result = colorizer.colorize(pixels, options, reference)
                runs[name].append(time.perf_counter() - started)
                stages[name] = result.timings.stages
        for name, times in runs.items():
            report[f"{megapixels:g}MP {name}"] = {
                "median_ms": round(statistics.median(times) * 1000, 1),
                "min_ms": round(min(times) * 1000, 1),
                "max_ms": round(max(times) * 1000, 1),
                "added_over_auto_ms": round(
                    (statistics.median(times) - statistics.median(runs["auto"])) * 1000, 1
                ),
                "stages_ms_last_run": {k: round(v * 1000, 1) for k, v in stages[name].items()},
            }
    emit(report, args.output)


if __name__ == "__main__":
    main()
