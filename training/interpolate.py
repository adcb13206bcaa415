"""Mix two checkpoints of one network in weight space (WiSE-FT, Wortsman et al., 2022).

python -m training.interpolate START END --alpha A --out MIXED.pt

A network fine-tuned from another lies in the same basin, and the weights on the line
between the two often keep what each does well without any training: here the shipped
default's faces on `val` and a fine-tuned run's objects on `extra/val` (models/README.md).
Each side contributes the weights its validation judged (the moving average when the run
kept one); the mixed checkpoint is exported and measured like any run's
(`training/measure.sh MIXED.pt OUT T`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from training.export import judged_weights
from training.train import write_checkpoint


def mixed_weights(start: dict, end: dict, alpha: float) -> dict:
    """(1 - alpha) * start + alpha * end for every floating-point tensor; counters (batch
    norm's num_batches_tracked) are END's. Both must be the same network."""
    if start.keys() != end.keys():
        raise ValueError(f"not the same network: {sorted(start.keys() ^ end.keys())[:5]} differ")
    return {
        name: torch.lerp(start[name], tensor, alpha) if tensor.is_floating_point() else tensor
        for name, tensor in end.items()
    }


def interpolated_checkpoint(start: dict, end: dict, alpha: float, label: str) -> dict:
    """END's checkpoint with its weights moved back towards START's; the decoding bins must
    be the same, or the mixed network's outputs mean nothing."""
    if start["arch"] != end["arch"] or not np.array_equal(start["centres"], end["centres"]):
        raise ValueError("the two checkpoints have different architectures or colour bins")
    return {
        "model": mixed_weights(judged_weights(start), judged_weights(end), alpha),
        "centres": end["centres"],
        "weights": end["weights"],
        "arch": end["arch"],
        "progress": end["progress"],
        "args": {**end["args"], "interpolation": label},
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("start", type=Path, help="the checkpoint fine-tuning started from")
    p.add_argument("end", type=Path, help="the fine-tuned checkpoint")
    p.add_argument("--alpha", type=float, required=True, help="0 = START, 1 = END")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if not 0.0 <= args.alpha <= 1.0:
        p.error("--alpha must lie between 0 and 1")
    start, end = (torch.load(path, weights_only=False, map_location="cpu")
                  for path in (args.start, args.end))  # fmt: skip
    label = f"{args.alpha} of the way from {args.start} to {args.end}"
    write_checkpoint(interpolated_checkpoint(start, end, args.alpha, label), args.out)
    print(f"{args.out}: {label}")


if __name__ == "__main__":
    main()
