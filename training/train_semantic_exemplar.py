"""Train the semantic exemplar network's small trainable part on cached backbone features.

python -m training.train_semantic_exemplar --cache DIR --out DIR [--steps N]

The cache (training.exemplar_cache) holds, per photo, the frozen backbone's features of the
photo and of a re-cropped, mirrored copy, its true a*b* and the automatic colorizer's.
Each training pair is a photo and an exemplar that is
- the same photo re-cropped and mirrored (the colours are all there),
- another photo of the same class (the colours of the same kind of thing), or
- a photo of another class (mostly nothing corresponds: keep the automatic colour),
so the network learns both to borrow and to hold back. One photo in 33 is held out; the
loss there is reported per kind of pair beside the automatic colorizer's own.
Checkpoints (OUT/last.pt, OUT/best.pt) are written every few minutes and a run resumes;
training.export turns best.pt into the ONNX model.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from colorize_backend.core.contract import AB_SCALE

from training.arch import ARCHITECTURES
from training.arch.semantic_exemplar import STRIDES, SemanticExemplarColorizer
from training.train import learning_rate_factor, write_checkpoint

LOG = logging.getLogger("training.semantic_exemplar")
ARCH = "semantic-exemplar"
PAIR_KINDS = {"same photo": 0.4, "same class": 0.45, "other class": 0.15}
HOLD_OUT_EVERY = 33


class PairSampler:
    """Training and held-out pairs (target photo, exemplar row) from the cache's index."""

    def __init__(self, cache: Path, seed: int = 0):
        index = json.loads((cache / "index.json").read_text())
        self.classes = np.array(index["classes"])
        photos = np.arange(len(self.classes))
        self.held_out = photos[photos % HOLD_OUT_EVERY == 0]
        self.training = photos[photos % HOLD_OUT_EVERY != 0]
        self.rng = np.random.default_rng(seed)

    def exemplar_row(self, photo: int, kind: str, pool: np.ndarray) -> int:
        """The cache row of an exemplar of this kind for a photo (variant 1: re-cropped)."""
        if kind == "same photo":
            return 2 * photo + 1
        same = pool[(self.classes[pool] == self.classes[photo]) & (pool != photo)]
        if kind == "same class" and len(same):
            return 2 * int(self.rng.choice(same))
        other = pool[self.classes[pool] != self.classes[photo]]
        return 2 * int(self.rng.choice(other))

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        photos = self.rng.choice(self.training, size)
        kinds = self.rng.choice(list(PAIR_KINDS), size, p=list(PAIR_KINDS.values()))
        rows = [self.exemplar_row(p, k, self.training) for p, k in zip(photos, kinds)]
        return photos, np.array(rows)

    def held_out_pairs(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """Each held-out photo with an exemplar of this kind (other photos: training ones)."""
        rng, self.rng = self.rng, np.random.default_rng(1)  # the same pairs every time
        rows = [self.exemplar_row(p, kind, self.training) for p in self.held_out]
        self.rng = rng
        return self.held_out, np.array(rows)


class CachedFeatures:
    """The cache's arrays, memory-mapped; tensors for a batch of pairs."""

    def __init__(self, cache: Path):
        names = [f"tap{s}" for s in STRIDES] + ["ab4", "l4", "auto4"]
        self.arrays = {n: np.load(cache / f"{n}.npy", mmap_mode="r") for n in names}

    def _rows(self, name: str, rows: np.ndarray) -> torch.Tensor:
        order = np.argsort(rows)  # sorted reads from the memory map, then back in order
        values = self.arrays[name][rows[order]].astype(np.float32)
        return torch.from_numpy(values[np.argsort(order)])

    def pairs(self, photos: np.ndarray, exemplar_rows: np.ndarray) -> tuple:
        targets = 2 * photos
        target_taps = [self._rows(f"tap{s}", targets) for s in STRIDES]
        reference_taps = [self._rows(f"tap{s}", exemplar_rows) for s in STRIDES]
        ref_ab = F.avg_pool2d(self._rows("ab4", exemplar_rows), 2)
        auto = self._rows("auto4", photos)
        return (target_taps, reference_taps, ref_ab, auto, self._rows("l4", targets)), (
            self._rows("ab4", targets)
        )


def loss_of(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    return F.smooth_l1_loss(predicted / AB_SCALE, truth / AB_SCALE, beta=0.05)


def validate(model, features: CachedFeatures, sampler: PairSampler) -> dict:
    """Held-out loss per kind of pair, and the automatic colorizer's on the same photos."""
    model.eval()
    report = {}
    with torch.no_grad():
        for kind in PAIR_KINDS:
            photos, rows = sampler.held_out_pairs(kind)
            losses, auto_losses = [], []
            for start in range(0, len(photos), 64):
                inputs, truth = features.pairs(photos[start : start + 64], rows[start : start + 64])
                losses.append(loss_of(model.from_features(*inputs), truth).item())
                auto_losses.append(loss_of(inputs[3], truth).item())
            report[kind] = {"loss": float(np.mean(losses)), "auto": float(np.mean(auto_losses))}
    model.train()
    return report


def save(path: Path, model, optimizer, step: int, seconds: float, best: float, batch: int) -> None:
    """A checkpoint training.export reads (the frozen backbone's weights included)."""
    progress = {"step": step, "photos_seen": step * batch, "train_seconds": seconds}
    write_checkpoint(
        {
            "arch": ARCH,
            "centres": np.zeros((1, 2), np.float32),  # a regressor: no bins
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "progress": progress,
            "best": best,
        },
        path,
    )


def fit(args: argparse.Namespace) -> None:
    model = ARCHITECTURES[ARCH].build(1)
    assert isinstance(model, SemanticExemplarColorizer)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=1e-4
    )
    step, seconds, best = 0, 0.0, float("inf")
    last = args.out / "last.pt"
    if last.exists():
        state = torch.load(last, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, seconds = state["progress"]["step"], state["progress"]["train_seconds"]
        best = state["best"]
        LOG.info("resumed at step %d", step)
    sampler, features = PairSampler(args.cache, seed=step), CachedFeatures(args.cache)
    model.train()
    saved = time.monotonic()
    while step < args.steps:
        started = time.monotonic()
        for group in optimizer.param_groups:
            group["lr"] = args.lr * learning_rate_factor(step, args.steps, args.warmup_steps)
        inputs, truth = features.pairs(*sampler.batch(args.batch))
        loss = loss_of(model.from_features(*inputs), truth)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        seconds += time.monotonic() - started
        if step % 20 == 0:
            LOG.info("step %d/%d loss %.4f", step, args.steps, loss.item())
        if step % args.val_every == 0 or step == args.steps:
            report = validate(model, features, sampler)
            total = sum(r["loss"] for r in report.values())
            with (args.out / "history.jsonl").open("a") as history:
                history.write(json.dumps({"step": step, "hours": seconds / 3600, **report}) + "\n")
            LOG.info("step %d held out: %s", step, json.dumps(report))
            if total < best:
                best = total
                save(args.out / "best.pt", model, optimizer, step, seconds, best, args.batch)
        if time.monotonic() - saved > 60 * args.checkpoint_minutes or step == args.steps:
            save(last, model, optimizer, step, seconds, best, args.batch)
            saved = time.monotonic()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup-steps", type=int, default=100)
    p.add_argument("--val-every", type=int, default=250)
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    fit(args)


if __name__ == "__main__":
    main()
