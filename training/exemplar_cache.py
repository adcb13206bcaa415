"""What the semantic exemplar network learns from, computed once: its frozen parts' outputs.

The network's backbone (EfficientNet-Lite0) and the automatic colorizer it falls back on are
frozen, so their outputs are computed here once per photo and the training only runs the
small trainable part. Each photo is kept twice, at SIZE x SIZE: as it is (variant 0, the
target or another photo's exemplar) and re-cropped and mirrored (variant 1, the same
photo's exemplar). Per variant: the backbone's stride-4/8/16/32 features of the grey
photo (stride 4 pooled to 8), the true a*b* and the lightness at stride 4, and (variant 0)
the automatic colorizer's a*b*.

python -m training.exemplar_cache --data ROOT... --classes classes.json --out DIR
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from colorize_backend.core.color import rgb_to_lab
from colorize_backend.core.contract import LIGHTNESS
from colorize_backend.core.engine import Engine
from colorize_backend.core.manifest import Manifest
from colorize_backend.tools.files import list_images
from PIL import Image
from tqdm import tqdm

from training.arch.backbone import TAP_CHANNELS, EfficientNetLite0Features
from training.arch.semantic_exemplar import STRIDES, matching_taps
from training.classes import FOLDER_CLASSES, class_of
from training.photos import recropped_and_flipped

SIZE = 224
BATCH = 32


def choose_photos(
    roots: list[Path], classes: dict, per_class: int, per_kind: int, seed: int = 0
) -> list:
    """Up to per_class photos of every class with at least two photos, and per_kind of each
    broad kind of the shared datasets (faces, people, pets...): [(path, class)]."""
    by_class: dict[str, list[Path]] = defaultdict(list)
    for root in roots:
        for path in list_images(root):
            label = class_of(path, classes)
            if label:
                by_class[label].append(path)
    rng = np.random.default_rng(seed)
    chosen = []
    for label in sorted(by_class):
        paths = by_class[label]
        if len(paths) >= 2:
            cap = per_kind if label in FOLDER_CLASSES.values() else per_class
            picks = rng.permutation(len(paths))[:cap]
            chosen += [(paths[i], label) for i in sorted(picks)]
    return chosen


def square(path: Path) -> np.ndarray:
    """The photo's centre square at SIZE x SIZE, RGB u8."""
    with Image.open(path) as opened:
        image = opened.convert("RGB")
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        box = (left, top, left + side, top + side)
        return np.asarray(image.resize((SIZE, SIZE), Image.Resampling.BICUBIC, box=box))


def open_arrays(out: Path, count: int) -> dict[str, np.memmap]:
    """Memory-mapped .npy files: one row per variant (2 per photo)."""
    # stride-4 features are kept pooled to stride 8, where the network matches
    shapes = {
        f"tap{s}": (c, SIZE // max(s, 8), SIZE // max(s, 8)) for s, c in zip(STRIDES, TAP_CHANNELS)
    }
    shapes |= {"ab4": (2, SIZE // 4, SIZE // 4), "l4": (1, SIZE // 4, SIZE // 4)}
    arrays = {
        name: np.lib.format.open_memmap(out / f"{name}.npy", "w+", np.float16, (2 * count, *shape))
        for name, shape in shapes.items()
    }
    arrays["auto4"] = np.lib.format.open_memmap(
        out / "auto4.npy", "w+", np.float16, (count, 2, SIZE // 4, SIZE // 4)
    )
    return arrays


def fill_batch(arrays, start: int, lab: np.ndarray, features, automatic) -> None:
    """Rows start.. of every array from a batch of Lab images [B, SIZE, SIZE, 3]."""
    lab_t = torch.from_numpy(lab).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        taps = matching_taps(features, lab_t[:, :1])
    rows = slice(start, start + len(lab))
    for stride, tap in zip(STRIDES, taps):
        arrays[f"tap{stride}"][rows] = tap.numpy().astype(np.float16)
    arrays["ab4"][rows] = F.avg_pool2d(lab_t[:, 1:], 4).numpy().astype(np.float16)
    arrays["l4"][rows] = F.avg_pool2d(lab_t[:, :1], 4).numpy().astype(np.float16)
    for i in range(0, len(lab), 2):  # variant 0 of each photo: the automatic colour
        arrays["auto4"][(start + i) // 2] = automatic(lab[i, ..., 0]).astype(np.float16)


def build(photos: list, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    arrays = open_arrays(out, len(photos))
    features = EfficientNetLite0Features(pretrained=True).eval()
    entry = Manifest.load().resolve(None)
    engine = Engine(["CPUExecutionProvider"], threads=1)

    def automatic(lightness: np.ndarray) -> np.ndarray:
        return engine.run(entry, {LIGHTNESS: np.ascontiguousarray(lightness[None, None])})

    rng = np.random.default_rng(1)
    for start in tqdm(range(0, len(photos), BATCH // 2), unit="batch"):
        rgb = []
        for path, _ in photos[start : start + BATCH // 2]:
            photo = square(path)
            rgb += [photo, recropped_and_flipped(photo, rng)]
        lab = rgb_to_lab(np.stack(rgb).astype(np.float32) / 255.0).astype(np.float32)
        fill_batch(arrays, 2 * start, lab, features, automatic)
    for array in arrays.values():
        array.flush()
    labels = sorted({label for _, label in photos})
    index = {
        "size": SIZE,
        "automatic_model": entry.name,
        "files": [str(path) for path, _ in photos],
        "classes": [labels.index(label) for _, label in photos],
        "class_names": labels,
    }
    (out / "index.json").write_text(json.dumps(index))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, nargs="+", required=True)
    p.add_argument("--classes", type=Path, required=True, help="from training.classes")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--per-class", type=int, default=30)
    p.add_argument("--per-kind", type=int, default=400, help="faces, people, pets... (shared)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    classes = json.loads(args.classes.read_text())
    photos = choose_photos(args.data, classes, args.per_class, args.per_kind)
    print(f"{len(photos)} photos of {len({c for _, c in photos})} classes")
    build(photos, args.out)


if __name__ == "__main__":
    main()
