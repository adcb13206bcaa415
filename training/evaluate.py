"""Evaluate an exported ONNX colorizer through the backend's own pipeline.

python -m training.evaluate --model NAME_OR_PATH --data ../shared/datasets/val [--limit N]
        [--manifest PATH] [--update-manifest]

Each photo is resized to 256x256, reduced to its CIE lightness (as a u8 grey
photo), colorized by colorize_backend.engine exactly as the daemon would, and compared
with the original: PSNR, SSIM, colourfulness and its gap, ab-entropy loss.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from colorize_backend.color import lab_to_u8, rgb_to_lab
from colorize_backend.engine import Engine
from colorize_backend.images import list_images
from colorize_backend.manifest import MANIFEST_PATH, Manifest, ModelEntry
from training.metrics import ab_entropy, colorfulness, psnr, ssim

SIZE = 256


def spread_subset(files: list[Path], limit: int | None) -> list[Path]:
    """`limit` photos evenly spread over the (sorted) list, so every folder is represented."""
    if not limit or limit >= len(files):
        return files
    return [files[i] for i in np.linspace(0, len(files) - 1, limit).astype(int)]


def ground_truth(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.BICUBIC))


def grey_version(rgb: np.ndarray) -> np.ndarray:
    """The photo as a black-and-white print: its own CIE L, no chroma, 1 channel u8."""
    lightness = rgb_to_lab(rgb.astype(np.float32) / 255.0)[..., 0]
    return lab_to_u8(lightness, np.zeros(lightness.shape + (2,), np.float32))[..., :1]


def example_inputs(kind: str, height: int, width: int, lightness: float = 50.0) -> dict:
    """Inputs of the ONNX contract for a model kind: flat L, no hints, a grey reference."""
    inputs = {"L": np.full((1, 1, height, width), lightness, np.float32)}
    if kind == "hint":
        inputs["hint_ab"] = np.zeros((1, 2, height, width), np.float32)
        inputs["hint_mask"] = np.zeros((1, 1, height, width), np.float32)
    elif kind == "exemplar":
        inputs["ref_lab"] = np.concatenate(
            [inputs["L"], np.zeros((1, 2, height, width), np.float32)], axis=1
        )
    return inputs


def cpu_latency(engine: Engine, entry: ModelEntry) -> dict:
    """Median network time (ms) at 256² and 512², batch 1, for a model of any kind."""
    latency = {}
    for side in (256, 512):
        inputs = example_inputs(entry.kind, side, side)
        engine.run_model(entry, inputs)
        times = []
        for _ in range(10):
            started = time.perf_counter()
            engine.run_model(entry, inputs)
            times.append(time.perf_counter() - started)
        latency[f"cpu_ms_{side}"] = round(statistics.median(times) * 1000, 2)
    return latency


def evaluate(engine: Engine, model: str | None, files: list[Path]) -> dict:
    rows = []
    for path in files:
        truth = ground_truth(path)
        grey = grey_version(truth)
        predicted = engine.colorize(grey, model).pixels
        rows.append(
            {
                "psnr": psnr(predicted, truth),
                "ssim": ssim(predicted, truth),
                "cf": colorfulness(predicted),
                "cf_truth": colorfulness(truth),
                "entropy_loss": ab_entropy(truth) - ab_entropy(predicted),
                "psnr_grey": psnr(np.repeat(grey, 3, axis=2), truth),
            }
        )
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    latency = cpu_latency(engine, engine.manifest.resolve(model, kind="auto"))
    return {
        "photos": len(rows),
        "psnr_db": round(mean["psnr"], 2),
        "ssim": round(mean["ssim"], 4),
        "colorfulness": round(mean["cf"], 2),
        "colorfulness_truth": round(mean["cf_truth"], 2),
        "colorfulness_gap": round(abs(mean["cf"] - mean["cf_truth"]), 2),
        "ab_entropy_loss_bits": round(mean["entropy_loss"], 3),
        "psnr_grey_baseline_db": round(mean["psnr_grey"], 2),
        **latency,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", help="manifest name or .onnx path (default: the default model)")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--limit", type=int, help="evaluate an evenly spread subset of this size")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--manifest", type=Path, default=MANIFEST_PATH, help="models to choose from")
    p.add_argument("--update-manifest", action="store_true", help="store the report in it")
    args = p.parse_args(argv)
    files = spread_subset(list_images(args.data), args.limit)
    engine = Engine(
        Manifest.load(args.manifest), providers=["CPUExecutionProvider"], threads=args.threads
    )
    report = evaluate(engine, args.model, files)
    report["data"] = str(args.data)
    print(json.dumps(report, indent=2))
    if args.update_manifest:
        name = engine.manifest.resolve(args.model).name
        data = json.loads(args.manifest.read_text())
        for entry in data["models"]:
            if entry["name"] == name:
                entry["metrics"] = report
        args.manifest.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
