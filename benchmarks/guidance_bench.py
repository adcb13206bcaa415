"""Time reference guidance (painted hints, exemplar) through the pipeline at 1 MP and 12 MP.

python benchmarks/guidance_bench.py [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from colorize_backend.bench import synthetic_photo
from colorize_backend.engine import Engine
from colorize_backend.manifest import Manifest
from colorize_backend.pipeline import Colorizer
from colorize_backend.reference import Reference, ReferenceMode


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
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    colorizer = Colorizer(Manifest.load(), Engine(["CPUExecutionProvider"]))
    report = {}
    for megapixels in (1.0, 12.0):
        pixels = synthetic_photo(megapixels)
        exemplar = np.ascontiguousarray(synthetic_photo(0.3)[::-1])
        exemplar[..., 2] //= 2
        cases = {
            "auto": None,
            "hints": Reference(hint_layer(*pixels.shape[:2]), ReferenceMode.HINTS),
            "exemplar": Reference(exemplar, ReferenceMode.EXEMPLAR),
        }
        for name, reference in cases.items():
            colorizer.colorize(pixels, reference=reference)  # warm-up
            runs = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                result = colorizer.colorize(pixels, reference=reference)
                runs.append(time.perf_counter() - started)
            report[f"{megapixels:g}MP {name}"] = {
                "total_ms": round(statistics.median(runs) * 1000, 1),
                "stages_ms": {k: round(v * 1000, 1) for k, v in result.timings.stages.items()},
            }
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
