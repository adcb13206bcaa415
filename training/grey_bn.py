"""Lever 2 of the quality issue, measured: does EfficientNet-Lite recognise grey photos
better once its batch-norm statistics are re-estimated on grey inputs?

python -m training.grey_bn --data ../shared/datasets/extra/val \
    --calibration ../shared/datasets/extra/train [--variant lite0] [--photos 512]

Top-1 on the grey versions of the photos that name their ImageNet class, with the ImageNet
statistics and with statistics re-estimated (forward passes only, cumulative average) on
grey training photos; the colour top-1 beside them. (The colorizer's own backbone needs no
such step: started from the shipped ONNX, its batch norms are rebuilt from the folded
graph on grey photos, and it was fine-tuned on grey inputs.)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from colorize_backend.tools.files import list_images

from training.arch.backbone import lite_normalise
from training.photos import grey_version, ground_truth, spread_subset
from training.recognition import INPUT_SIDE, imagenet_class, load_wnids
from training.teacher import ImageNetTeacher


def as_batch(images: list[np.ndarray]) -> torch.Tensor:
    tensor = torch.from_numpy(np.stack(images).astype(np.float32) / 255).permute(0, 3, 1, 2)
    return torch.nn.functional.interpolate(
        tensor, size=(INPUT_SIDE, INPUT_SIDE), mode="bilinear", antialias=True
    )


def top1(judge: ImageNetTeacher, images: list[np.ndarray], labels: list[int]) -> float:
    hits = 0
    for start in range(0, len(images), 32):
        predicted = judge(as_batch(images[start : start + 32])).argmax(dim=1).numpy()
        hits += int((predicted == np.array(labels[start : start + 32])).sum())
    return 100 * hits / len(images)


def reestimate_on_grey(judge: ImageNetTeacher, photos: list[Path]) -> None:
    """Every batch norm's running statistics recomputed on grey photos (no weight changes)."""
    norms = [m for m in judge.net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over all batches
        norm.train()
    with torch.no_grad():
        for start in range(0, len(photos), 32):
            greys = [
                np.repeat(grey_version(ground_truth(p)), 3, 2) for p in photos[start : start + 32]
            ]
            judge.net(lite_normalise(as_batch(greys)))
    for norm in norms:
        norm.eval()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--calibration", type=Path, required=True)
    p.add_argument("--variant", default="lite0")
    p.add_argument("--photos", type=int, default=512, help="calibration photos")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    wnids = load_wnids()
    named = [(f, c) for f in list_images(args.data) if (c := imagenet_class(f, wnids)) is not None]
    files, labels = [f for f, _ in named], [c for _, c in named]
    truths = [ground_truth(f) for f in files]
    greys = [np.repeat(grey_version(t), 3, 2) for t in truths]
    judge = ImageNetTeacher(args.variant)
    report = {"photos": len(files), "colour_top1": top1(judge, truths, labels)}
    report["grey_top1_imagenet_statistics"] = top1(judge, greys, labels)
    reestimate_on_grey(judge, spread_subset(list_images(args.calibration), args.photos))
    report["grey_top1_grey_statistics"] = top1(judge, greys, labels)
    report["colour_top1_grey_statistics"] = top1(judge, truths, labels)
    print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in report.items()}))


if __name__ == "__main__":
    main()
