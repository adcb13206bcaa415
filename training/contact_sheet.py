"""Side-by-side picture of every model in a manifest on the same validation photos.

python -m training.contact_sheet --data ../shared/datasets/val --out docs/model-zoo.jpg
        [--manifest PATH] [--photos 12]

Rows are photos spread over the folders; columns are the grey input, each
automatic model, the exemplar model given the photo re-cropped and flipped, the
hint model given 10 ground-truth colour dots, and the ground truth. Everything
runs through colorize_backend.engine.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from colorize_backend.engine import Engine
from colorize_backend.guidance import Reference
from colorize_backend.images import list_images
from colorize_backend.manifest import MANIFEST_PATH, Manifest
from training.evaluate import grey_version, ground_truth, spread_subset
from training.evaluate_guidance import point_hints, recropped_and_flipped
from training.sheet import draw_sheet


def columns_for(manifest: Manifest) -> list[tuple[str, str]]:
    """(label, model name) per model column: the default first, then by kind and name."""
    order = {"auto": 0, "exemplar": 1, "hint": 2}
    entries = sorted(
        manifest.entries.values(),
        key=lambda e: (order[e.kind], e.name != manifest.default, e.name),
    )
    return [(f"{e.name} ({e.kind})" if e.kind != "auto" else e.name, e.name) for e in entries]


def photo_row(engine: Engine, path: Path, rng: np.random.Generator) -> list[np.ndarray]:
    truth = ground_truth(path)
    grey = grey_version(truth)
    row = [np.repeat(grey, 3, axis=2)]
    for _, name in columns_for(engine.manifest):
        kind = engine.manifest.entries[name].kind
        if kind == "exemplar":
            reference = Reference(recropped_and_flipped(truth, rng), "exemplar")
        elif kind == "hint":
            reference = Reference(point_hints(truth, rng)[0], "hints")
        else:
            reference = None
        row.append(engine.colorize(grey, name, reference=reference).pixels)
    return row + [truth]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--manifest", type=Path, default=MANIFEST_PATH)
    p.add_argument("--photos", type=int, default=12)
    args = p.parse_args(argv)
    engine = Engine(Manifest.load(args.manifest), providers=["CPUExecutionProvider"], threads=2)
    rng = np.random.default_rng(0)
    rows = [
        photo_row(engine, path, rng) for path in spread_subset(list_images(args.data), args.photos)
    ]
    labels = (
        ["grey input"] + [label for label, _ in columns_for(engine.manifest)] + ["ground truth"]
    )
    draw_sheet(labels, rows, args.out)
    print(f"wrote {args.out}: {len(rows)} photos x {len(labels)} columns")


if __name__ == "__main__":
    main()
