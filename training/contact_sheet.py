"""Side-by-side picture of every model in a manifest on the same validation photos.

python -m training.contact_sheet --data ../shared/datasets/val --out docs/model-zoo.jpg
        [--manifest PATH] [--photos 12]

Rows are photos spread over the folders; columns are the grey input, each
automatic model, the exemplar model given the photo re-cropped and flipped, the
hint model given 10 ground-truth colour dots, and the ground truth. Everything
runs through the backend's pipeline.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from colorize_backend.core.contract import ModelKind, ReferenceMode
from colorize_backend.core.engine import Engine
from colorize_backend.core.manifest import MANIFEST_PATH, Manifest
from colorize_backend.core.options import ColorizeOptions
from colorize_backend.core.pipeline import Colorizer
from colorize_backend.core.reference import Reference
from colorize_backend.tools.files import list_images

from training.photos import (
    grey_version,
    ground_truth,
    point_hints,
    recropped_and_flipped,
    spread_subset,
)
from training.sheet import draw_sheet


def columns_for(manifest: Manifest) -> list[tuple[str, str]]:
    """(label, model name) per model column: the default first, then by kind and name."""
    order = {ModelKind.AUTO: 0, ModelKind.EXEMPLAR: 1, ModelKind.HINT: 2}
    entries = sorted(
        manifest.entries.values(),
        key=lambda e: (order[e.kind], e.name != manifest.default, e.name),
    )
    return [
        (e.name if e.kind is ModelKind.AUTO else f"{e.name} ({e.kind})", e.name) for e in entries
    ]


def photo_row(colorizer: Colorizer, path: Path, rng: np.random.Generator) -> list[np.ndarray]:
    truth = ground_truth(path)
    grey = grey_version(truth)
    row = [np.repeat(grey, 3, axis=2)]
    for _, name in columns_for(colorizer.manifest):
        kind = colorizer.manifest.entries[name].kind
        reference, mode = None, ReferenceMode.DETECT
        if kind is ModelKind.EXEMPLAR:
            reference, mode = Reference(recropped_and_flipped(truth, rng)), ReferenceMode.EXEMPLAR
        elif kind is ModelKind.HINT:
            reference, mode = Reference(point_hints(truth, rng)[0]), ReferenceMode.HINTS
        options = ColorizeOptions(model=name, reference_mode=mode)
        row.append(colorizer.colorize(grey, options, reference).pixels)
    return row + [truth]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--manifest", type=Path, default=MANIFEST_PATH)
    p.add_argument("--photos", type=int, default=12)
    p.add_argument("--files", type=Path, nargs="*", help="these photos instead of a spread")
    args = p.parse_args(argv)
    colorizer = Colorizer(Manifest.load(args.manifest), Engine(["CPUExecutionProvider"], threads=2))
    rng = np.random.default_rng(0)
    rows = [
        photo_row(colorizer, path, rng)
        for path in args.files or spread_subset(list_images(args.data), args.photos)
    ]
    labels = (
        ["grey input"] + [label for label, _ in columns_for(colorizer.manifest)] + ["ground truth"]
    )
    draw_sheet(labels, rows, args.out)
    print(f"wrote {args.out}: {len(rows)} photos x {len(labels)} columns")


if __name__ == "__main__":
    main()
