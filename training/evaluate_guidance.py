"""Measure how much a reference layer steers the colour, through the backend's pipeline.

python -m training.evaluate_guidance --data ../shared/datasets/val [--limit N] [--sheet PNG]

For each photo (256x256): the automatic result; an exemplar made from the same
photo (re-cropped and flipped); an exemplar that is another photo of the same
class (`--classes`, from training.classes; else of the same folder); and 10
ground-truth colour points as painted hints.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from colorize_backend.core.color import rgb_to_lab
from colorize_backend.core.contract import ModelKind, ReferenceMode
from colorize_backend.core.engine import Engine
from colorize_backend.core.errors import ColorizeError
from colorize_backend.core.manifest import MANIFEST_PATH, Manifest
from colorize_backend.core.options import ColorizeOptions
from colorize_backend.core.pipeline import Colorizer
from colorize_backend.core.reference import Reference
from colorize_backend.tools.files import list_images

from training.classes import class_of
from training.latency import cpu_latency
from training.metrics import colorfulness, psnr
from training.photos import (
    grey_version,
    ground_truth,
    point_hints,
    recropped_and_flipped,
    spread_subset,
)
from training.sheet import draw_sheet
from training.sources import by_group, group_of

SHEET_LABELS = [
    "grey input",
    "automatic",
    "exemplar: same photo",
    "result",
    "exemplar: other photo",
    "result",
    "10 hint dots",
    "result",
    "ground truth",
]


def ab_histogram(rgb: np.ndarray) -> np.ndarray:
    ab = rgb_to_lab(rgb.astype(np.float32) / 255.0)[..., 1:].reshape(-1, 2)
    hist, _, _ = np.histogram2d(ab[:, 0], ab[:, 1], bins=26, range=[[-130, 130], [-130, 130]])
    return hist / hist.sum()


def hellinger(p: np.ndarray, q: np.ndarray) -> float:
    """Distance between two colour histograms: 0 identical, 1 disjoint."""
    return float(np.sqrt(max(0.0, 1.0 - np.sqrt(p * q).sum())))


def guided_results(colorizer: Colorizer, truth: np.ndarray, other: np.ndarray, rng) -> dict:
    """One photo colorized automatically, with two exemplars and with 10 hint points."""
    grey = grey_version(truth)
    same = recropped_and_flipped(truth, rng)
    hints, points = point_hints(truth, rng)

    def colorize(
        reference: Reference | None = None, mode: ReferenceMode = ReferenceMode.DETECT
    ) -> np.ndarray:
        try:
            return colorizer.colorize(grey, ColorizeOptions(reference_mode=mode), reference).pixels
        except ColorizeError:  # e.g. hints all grey on a near-grey photo: the user is told
            return colorizer.colorize(grey).pixels

    return {
        "grey": np.repeat(grey, 3, axis=2),
        "auto": colorize(),
        "same": same,
        "with_same": colorize(Reference(same), ReferenceMode.EXEMPLAR),
        "other": other,
        "with_other": colorize(Reference(other), ReferenceMode.EXEMPLAR),
        "points": points,
        "with_hints": colorize(Reference(hints), ReferenceMode.HINTS),
        "truth": truth,
    }


LEAK_RADIUS = 32  # pixels around a hint (of 256) where its colour is looked for
DIFFERENT = 30.0  # a*b* distance: ground truth clearly another colour than the hint
SAME = 8.0  # a*b* distance: ground truth the hint's colour


def hint_leakage(r: dict) -> tuple[float, float]:
    """(leak, reach): the share of each hint's change (hint − automatic colour there) that
    arrived, within LEAK_RADIUS and nearer that hint than any other, at pixels whose true
    colour is clearly different (leak: should be 0) or the same (reach: should be 1)."""
    points = r["points"]
    truth, auto, got = (
        rgb_to_lab(r[k].astype(np.float32) / 255)[..., 1:] for k in ("truth", "auto", "with_hints")
    )
    grid = np.indices(truth.shape[:2])
    ys, xs = grid[0], grid[1]
    distance = np.hypot(ys[..., None] - points[:, 0], xs[..., None] - points[:, 1])
    nearest: np.ndarray = distance.argmin(axis=-1)
    leaks: list[float] = []
    reaches: list[float] = []
    for i, (y, x) in enumerate(points):
        change = truth[y, x] - auto[y, x]
        size = float(np.linalg.norm(change))
        if size < 15:  # the hint asks for little: nothing to measure
            continue
        arrived = ((got - auto) @ (change / size)) / size
        region = (nearest == i) & (distance[..., i] <= LEAK_RADIUS)
        apart = np.linalg.norm(truth - truth[y, x], axis=-1)
        for wanted, share in ((apart > DIFFERENT, leaks), (apart < SAME, reaches)):
            if (region & wanted).sum() >= 20:
                share.append(float(arrived[region & wanted].mean()))
    return (
        float(np.mean(leaks)) if leaks else float("nan"),
        float(np.mean(reaches)) if reaches else float("nan"),
    )


def measures(r: dict) -> dict:
    """The figures of one photo's guided_results."""
    points, truth = r["points"], r["truth"]
    got = rgb_to_lab(r["with_hints"][points[:, 0], points[:, 1]].astype(np.float32) / 255)
    want = rgb_to_lab(truth[points[:, 0], points[:, 1]].astype(np.float32) / 255)
    target_hist = ab_histogram(r["other"])
    leak, reach = hint_leakage(r)
    return {
        "hint_leak": leak,
        "hint_reach": reach,
        "psnr_auto": psnr(r["auto"], truth),
        "psnr_same_exemplar": psnr(r["with_same"], truth),
        "psnr_other_exemplar": psnr(r["with_other"], truth),
        "psnr_hints": psnr(r["with_hints"], truth),
        "hint_delta_e": float(np.linalg.norm(got - want, axis=1).mean()),
        "other_distance_before": hellinger(ab_histogram(r["auto"]), target_hist),
        "other_distance_after": hellinger(ab_histogram(r["with_other"]), target_hist),
        "colourfulness_truth": colorfulness(truth),
        "colourfulness_auto": colorfulness(r["auto"]),
        "colourfulness_other_exemplar": colorfulness(r["with_other"]),
    }


def sheet_row(r: dict) -> list[np.ndarray]:
    """A contact-sheet row; the hint dots drawn large on the grey input."""
    marked = r["grey"].copy()
    for y, x in r["points"]:
        marked[max(0, y - 3) : y + 4, max(0, x - 3) : x + 4] = r["truth"][y, x]
    columns = ["grey", "auto", "same", "with_same", "other", "with_other"]
    return [r[c] for c in columns] + [marked, r["with_hints"], r["truth"]]


def summarise(rows: list[dict]) -> dict:
    mean = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0] if k != "group"}
    return {
        "photos": len(rows),
        "psnr_auto_db": round(mean["psnr_auto"], 2),
        "exemplar_same_photo_psnr_db": round(mean["psnr_same_exemplar"], 2),
        "exemplar_same_photo_gain_db": round(mean["psnr_same_exemplar"] - mean["psnr_auto"], 2),
        "exemplar_other_photo_psnr_db": round(mean["psnr_other_exemplar"], 2),
        "exemplar_other_photo_gain_db": round(mean["psnr_other_exemplar"] - mean["psnr_auto"], 2),
        "exemplar_other_photo_hist_distance_before": round(mean["other_distance_before"], 3),
        "exemplar_other_photo_hist_distance_after": round(mean["other_distance_after"], 3),
        "colourfulness_truth": round(mean["colourfulness_truth"], 1),
        "colourfulness_auto": round(mean["colourfulness_auto"], 1),
        "exemplar_other_photo_colourfulness": round(mean["colourfulness_other_exemplar"], 1),
        "hints_10_points_psnr_db": round(mean["psnr_hints"], 2),
        "hints_10_points_gain_db": round(mean["psnr_hints"] - mean["psnr_auto"], 2),
        "hinted_pixels_mean_delta_e": round(mean["hint_delta_e"], 2),
        "hint_leak_across_colour_edges": round(mean["hint_leak"], 3),
        "hint_reach_within_same_colour": round(mean["hint_reach"], 3),
    }


def kin(path: Path, classes: dict[str, str]) -> str:
    """What makes another photo "of the same class": its class where known, else its folder
    (each folder of the validation sets holds one kind of photo)."""
    return class_of(path, classes) or str(path.parent)


def evaluate(
    colorizer: Colorizer,
    files: list[Path],
    pool: list[Path],
    sheet_rows: int = 0,
    classes: dict[str, str] | None = None,
) -> tuple[dict, list]:
    """Metrics over files; `pool` supplies other photos of the same class as exemplars."""
    rng = np.random.default_rng(0)
    rows: list[dict] = []
    examples: list[list[np.ndarray]] = []
    by_kin: dict[str, list[Path]] = {}
    for path in pool:
        by_kin.setdefault(kin(path, classes or {}), []).append(path)
    for path in files:
        siblings = [p for p in by_kin[kin(path, classes or {})] if p != path]
        if not siblings:  # the only photo of its class: another of its folder
            siblings = [p for p in pool if p.parent == path.parent and p != path]
        other = ground_truth(siblings[rng.integers(len(siblings))])
        results = guided_results(colorizer, ground_truth(path), other, rng)
        rows.append({"group": group_of(path.parent.name), **measures(results)})
        if len(examples) < sheet_rows and len(rows) % max(1, len(files) // sheet_rows) == 1:
            examples.append(sheet_row(results))
    report = summarise(rows)
    report["by_group"] = by_group(rows, summarise)
    return report, examples


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--limit", type=int)
    p.add_argument("--sheet", type=Path, help="write example rows as a PNG contact sheet")
    p.add_argument(
        "--fallback",
        action="store_true",
        help="ignore installed hint/exemplar models: measure the model-free methods",
    )
    p.add_argument("--manifest", type=Path, default=MANIFEST_PATH, help="models to choose from")
    p.add_argument("--classes", type=Path, help="classes of the extra photos (training.classes)")
    p.add_argument(
        "--model-only",
        action="store_true",
        help="measure a hint model's own output, without the edge-aware refinement",
    )
    args = p.parse_args(argv)
    pool = list_images(args.data)
    files = spread_subset(pool, args.limit)
    manifest = Manifest.load(args.manifest)
    if args.fallback:
        auto = {name: e for name, e in manifest.entries.items() if e.kind is ModelKind.AUTO}
        manifest = Manifest(auto, manifest.default)
    engine = Engine(["CPUExecutionProvider"], threads=2)
    colorizer = Colorizer(manifest, engine, refine_hints=not args.model_only)
    classes = json.loads(args.classes.read_text()) if args.classes else {}
    rows = 6 if args.sheet else 0
    report, examples = evaluate(colorizer, files, pool, rows, classes)
    for kind in (ModelKind.EXEMPLAR, ModelKind.HINT):
        entry = manifest.find_kind(kind)
        if entry is not None:
            report[f"{kind}_model"] = {"name": entry.name, **cpu_latency(engine, entry)}
    report["data"] = str(args.data)
    report["method"] = "model-free" if args.fallback else "installed models where present"
    report["hint_refinement"] = not args.model_only
    print(json.dumps(report, indent=2))
    if args.sheet:
        draw_sheet(SHEET_LABELS, examples, args.sheet)


if __name__ == "__main__":
    main()
