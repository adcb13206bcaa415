"""Evaluate an exported ONNX colorizer through the backend's own pipeline.

python -m training.evaluate --model NAME_OR_PATH --data ../shared/datasets/val [--limit N]
        [--manifest PATH] [--update-manifest [--metrics-key KEY]]

Each photo is resized to 256x256, reduced to its CIE lightness (as a u8 grey
photo), colorized by colorize_backend.core.engine exactly as the daemon would, and compared
with the original: PSNR, SSIM, colourfulness and its gap, ab-entropy loss, overall and
per subject group; with --recognition, whether an ImageNet classifier recognises the
photos better in our colour than in grey (training.recognition).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from colorize_backend.core.atomic_file import write_text_atomically
from colorize_backend.core.contract import ModelKind
from colorize_backend.core.engine import Engine
from colorize_backend.core.manifest import MANIFEST_PATH, Manifest
from colorize_backend.core.options import ColorizeOptions
from colorize_backend.core.pipeline import Colorizer
from colorize_backend.tools.files import list_images

from training.latency import cpu_latency
from training.metrics import ab_entropy, colorfulness, psnr, ssim
from training.photos import grey_version, ground_truth, spread_subset
from training.recognition import Recogniser, imagenet_class, load_wnids
from training.sources import by_group, group_of


def photo_row(colorizer: Colorizer, model: str | None, path: Path, recognition) -> dict:
    """One photo's measures; with recognition (a Recogniser and the class list), the
    classifier's top-1 hits on truth, grey and colorized when the photo names its class."""
    truth = ground_truth(path)
    grey = grey_version(truth)
    predicted = colorizer.colorize(grey, ColorizeOptions(model=model)).pixels
    row = {
        "group": group_of(path.parent.name),
        "psnr": psnr(predicted, truth),
        "ssim": ssim(predicted, truth),
        "cf": colorfulness(predicted),
        "cf_truth": colorfulness(truth),
        "entropy_loss": ab_entropy(truth) - ab_entropy(predicted),
        "psnr_grey": psnr(np.repeat(grey, 3, axis=2), truth),
    }
    label = imagenet_class(path, recognition[1]) if recognition else None
    if label is not None:
        recogniser = recognition[0]
        for name, image in (("truth", truth), ("grey", np.repeat(grey, 3, 2)), ("ours", predicted)):
            for judge, top1 in recogniser.top1(image).items():
                row[f"top1_{name}_{judge}"] = float(top1 == label)
    return row


def summary(rows: list[dict]) -> dict:
    """Means of the rows' measures (top-1 over the photos that have a class)."""
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "group"}
    report = {
        "photos": len(rows),
        "psnr_db": round(mean["psnr"], 2),
        "ssim": round(mean["ssim"], 4),
        "colorfulness": round(mean["cf"], 2),
        "colorfulness_truth": round(mean["cf_truth"], 2),
        "colorfulness_gap": round(abs(mean["cf"] - mean["cf_truth"]), 2),
        "ab_entropy_loss_bits": round(mean["entropy_loss"], 3),
        "psnr_grey_baseline_db": round(mean["psnr_grey"], 2),
    }
    scored = [r for r in rows if any(k.startswith("top1_") for k in r)]
    if scored:
        report["classified_photos"] = len(scored)
        for key in sorted(k for k in scored[0] if k.startswith("top1_")):
            report[f"{key}_pct"] = round(100 * np.mean([r[key] for r in scored]), 1)
    return report


def evaluate(
    colorizer: Colorizer,
    model: str | None,
    files: list[Path],
    recognise: bool = False,
    rows_out: Path | None = None,
) -> dict:
    """The summary over `files`; with rows_out, every photo's row as JSON lines there too (for
    paired comparisons between models)."""
    recognition = (Recogniser(colorizer.engine.threads), load_wnids()) if recognise else None
    rows = [photo_row(colorizer, model, path, recognition) for path in files]
    if rows_out:
        rows_out.write_text(
            "".join(json.dumps({"file": str(f), **r}) + "\n" for f, r in zip(files, rows))
        )
    report = summary(rows)
    report["by_group"] = by_group(rows, summary)
    entry = colorizer.manifest.resolve(model, ModelKind.AUTO)
    return {**report, **cpu_latency(colorizer.engine, entry)}


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
    p.add_argument(
        "--metrics-key",
        help="store the report as this named subset of the model's metrics (e.g. extra_val) "
        "instead of its headline figures",
    )
    p.add_argument(
        "--recognition",
        action="store_true",
        help="also score ImageNet classifiers on truth, grey and colorized photos",
    )
    p.add_argument(
        "--classified-only",
        action="store_true",
        help="only the photos whose name gives their ImageNet class (before --limit)",
    )
    p.add_argument("--rows", type=Path, help="write every photo's measures here (JSON lines)")
    args = p.parse_args(argv)
    files = list_images(args.data)
    if args.classified_only:
        wnids = load_wnids()
        files = [f for f in files if imagenet_class(f, wnids) is not None]
    files = spread_subset(files, args.limit)
    colorizer = Colorizer(
        Manifest.load(args.manifest), Engine(["CPUExecutionProvider"], threads=args.threads)
    )
    report = evaluate(colorizer, args.model, files, args.recognition, args.rows)
    report["data"] = os.path.relpath(args.data)  # the same on every machine
    print(json.dumps(report, indent=2))
    if args.update_manifest:
        name = colorizer.manifest.resolve(args.model).name
        data = json.loads(args.manifest.read_text())
        for entry in data["models"]:
            if entry["name"] == name:
                entry["metrics"] = stored_metrics(
                    entry.get("metrics", {}), report, args.metrics_key
                )
        write_text_atomically(args.manifest, json.dumps(data, indent=2) + "\n")


def stored_metrics(metrics: dict, report: dict, key: str | None) -> dict:
    """The model's metrics with this report in place: as the named subset, or as the headline
    figures beside the named subsets measured before (a new headline keeps them)."""
    if key:
        return {**metrics, key: report}
    subsets = {name: value for name, value in metrics.items() if isinstance(value, dict)}
    return {**subsets, **report}


if __name__ == "__main__":
    main()
