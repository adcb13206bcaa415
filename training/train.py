"""Training entry point: python -m training.train --arch NAME --data DIR [DIR ...] --out DIR.

One loop for every colorizer in training.arch: bin classifiers learn from soft-encoded
targets with class-rebalanced cross-entropy, regressors from a Huber loss on ab; hint
networks get simulated hints, exemplar networks a second view of each photo.

A run is meant to accumulate over many pieces (days of CPU time, a few hours at a time):
it checkpoints every few minutes and on SIGTERM, resumes from OUT/last.pt, and
`--stop-after-minutes` ends a piece cleanly. The learning rate follows a warm-up and a
cosine over the planned `--steps`, as a function of the step alone, so pieces join
seamlessly. Without a checkpoint it starts from `--init` (a checkpoint) or `--init-onnx`
(a shipped ONNX model of the same architecture), else from scratch.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from colorize_backend.core.atomic_file import replaced_on_success
from colorize_backend.core.contract import ModelKind
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from training.arch import ARCHITECTURES, TRAINED_END_TO_END, Architecture
from training.arch.backbone import EfficientNetLite0Features
from training.bins import (
    AnnealedMean,
    SoftEncoder,
    bin_prior,
    populated_bins,
    rebalancing_weights,
)
from training.data import LabBatches, PhotoSet, evaluation_batches
from training.hints import simulate_hints
from training.onnx_weights import graph_bin_centres, load_onnx_weights
from training.prefetch import prefetch
from training.semantic_loss import SemanticConsistencyLoss
from training.teacher import ImageNetTeacher

LOG = logging.getLogger("training.train")


def add_semantic_arguments(p: argparse.ArgumentParser) -> None:
    """The semantic-consistency loss's options (issue 16's levers), one group in --help."""
    semantic = p.add_argument_group(
        "semantic consistency (bin colorizers; training.semantic_loss)",
        "a frozen ImageNet classifier compares the colorized crop with the true colour one",
    )
    semantic.add_argument("--class-kl-weight", type=float, default=0.0)
    semantic.add_argument("--feature-weight", type=float, default=0.0)
    semantic.add_argument(
        "--colour-shortfall-weight",
        type=float,
        default=0.0,
        help="weight of the colorized crop's colourfulness shortfall below the truth's",
    )
    semantic.add_argument(
        "--colour-shortfall-source-factor",
        nargs="*",
        default=[],
        metavar="SOURCE=FACTOR",
        help="the shortfall counts FACTOR times for photos of SOURCE (a data root's folder, "
        "e.g. lfw=4): colour given back where a source's photos are muted",
    )
    semantic.add_argument(
        "--semantic-photos", type=int, default=16, help="photos of each batch it judges"
    )
    semantic.add_argument(
        "--semantic-temperature",
        type=float,
        default=0.8,
        help="annealed-mean temperature of the judged colour (%(default)s; judging the export's "
        "0.4 instead was on the same PSNR-colour line, models/README.md)",
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--arch", choices=TRAINED_END_TO_END, required=True)
    p.add_argument("--data", type=Path, nargs="+", required=True, help="training photo roots")
    p.add_argument("--val", type=Path, nargs="*", default=[], help="held-out roots (selection)")
    p.add_argument("--out", type=Path, required=True, help="checkpoint and log folder")
    p.add_argument("--cache", type=Path, default=Path(".cache/data"))
    p.add_argument("--cache-size", type=int, default=160, help="side of the cached squares")
    p.add_argument("--crop", type=int, default=128, help="side of the training crops")
    p.add_argument("--min-scale", type=float, default=0.6, help="smallest crop, share of side")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, help="planned optimiser steps (default: --epochs)")
    p.add_argument("--epochs", type=float, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup-steps", type=int, default=100)
    p.add_argument("--backbone-lr-scale", type=float, default=0.1)
    p.add_argument(
        "--freeze-blocks",
        type=int,
        default=0,
        help="keep the pretrained backbone's stem and first N blocks fixed",
    )
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    p.add_argument("--stop-after-minutes", type=float, help="end this piece after so long")
    p.add_argument(
        "--stop-at-step", type=int, help="end this piece at this step (A/B arms of equal work)"
    )
    p.add_argument("--val-every", type=int, help="validate every N steps (default: per epoch)")
    p.add_argument("--val-limit", type=int, default=400, help="photos per validation root")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--init", type=Path, help="start from this checkpoint's weights")
    p.add_argument("--init-onnx", type=Path, help="start from this exported model's weights")
    p.add_argument(
        "--class-weight",
        type=float,
        default=0.1,
        help="weight of the classification-guidance loss (guided architectures)",
    )
    p.add_argument(
        "--min-colourfulness",
        type=float,
        default=0.0,
        help="never draw training photos less colourful than this (Hasler & Süsstrunk)",
    )
    p.add_argument(
        "--ema-decay",
        type=float,
        default=0.0,
        help="keep an exponential moving average of the weights (e.g. 0.999): checkpoints "
        "carry it, and validation and export use it instead of the last step's weights",
    )
    add_semantic_arguments(p)
    return p.parse_args(argv)


@dataclass
class Progress:
    """What a checkpoint records besides the weights."""

    step: int = 0
    total_steps: int = 0
    best: float = math.inf
    photos_seen: int = 0
    train_seconds: float = 0.0


@dataclass
class Run:
    """One architecture's network, optimiser and bins, and how far it has come."""

    arch: Architecture
    model: nn.Module
    optimizer: torch.optim.Optimizer
    centres: np.ndarray
    weights: np.ndarray
    progress: Progress
    args: argparse.Namespace
    ema: AveragedModel | None = None  # the smoothed weights, with --ema-decay
    losses: list[float] = field(default_factory=list)
    terms: dict[str, list[float]] = field(default_factory=dict)  # named parts of the loss

    @property
    def judged_model(self) -> nn.Module:
        """The weights that are validated and exported: the average when there is one."""
        return self.ema.module if self.ema is not None else self.model

    def save(self, path: Path) -> None:
        write_checkpoint(
            {
                "model": self.model.state_dict(),
                **({"ema": self.ema.state_dict()} if self.ema is not None else {}),
                "optimizer": self.optimizer.state_dict(),
                "progress": vars(self.progress),
                "centres": self.centres,
                "weights": self.weights,
                "arch": self.arch.name,
                "args": {k: str(v) for k, v in vars(self.args).items()},
            },
            path,
        )


def write_checkpoint(state: dict, path: Path) -> None:
    """torch.save through a partial file: a piece killed mid-save never leaves a broken
    checkpoint."""
    with replaced_on_success(path) as partial:
        torch.save(state, partial)


def ab_sample(photos: PhotoSet, count: int = 3000) -> np.ndarray:
    """ab values [N, 2] from a sample of the photos (every 4th pixel)."""
    rng = np.random.default_rng(0)
    picks = np.sort(rng.choice(len(photos), size=min(count, len(photos)), replace=False))
    small = PhotoSet.of(photos.take(picks)[:, ::4, ::4])
    _, ab = next(evaluation_batches(small, np.arange(len(picks)), len(picks)))
    return ab.permute(0, 2, 3, 1).reshape(-1, 2).numpy()


def class_bins(photos: PhotoSet, centres: np.ndarray | None = None) -> tuple:
    """Bin centres (populated grid cells, unless given) and class-rebalancing weights."""
    ab = ab_sample(photos)
    if centres is None:
        centres, prior = populated_bins(ab, min_count=20)
    else:
        prior = bin_prior(ab, centres)
    return centres, rebalancing_weights(centres, prior)


def calibration_inputs(arch: Architecture, photos: PhotoSet, crop: int) -> list[tuple]:
    """A few batches of real photos in the network's input form, for batch-norm statistics."""
    rng = np.random.default_rng(1)
    picks = np.sort(rng.choice(len(photos), size=min(128, len(photos)), replace=False))
    batches = []
    for lightness, ab in evaluation_batches(photos, picks, 32, size=crop):
        reference = torch.cat([lightness, ab], dim=1).flip(3)
        batches.append(network_inputs(arch, lightness, ab, reference, rng))
    return batches


def new_run(args: argparse.Namespace, photos: PhotoSet) -> Run:
    """A run from a checkpoint, from another model's weights, or from scratch."""
    arch = ARCHITECTURES[args.arch]
    last = args.out / "last.pt"
    state = torch.load(last, weights_only=False, map_location="cpu") if last.exists() else None
    initial = torch.load(args.init, weights_only=False, map_location="cpu") if args.init else None
    source = state or initial
    if source:
        centres, weights = source["centres"], source["weights"]
    else:
        graph_centres = graph_bin_centres(args.init_onnx) if args.init_onnx else None
        centres, weights = class_bins(photos, graph_centres)
    model = arch.build(len(centres))
    if state:
        model.load_state_dict(state["model"])
    elif initial:
        target = getattr(model, arch.init_prefix) if arch.init_prefix else model
        target.load_state_dict(initial["model"])
        LOG.info("initialised %s from %s", arch.init_prefix or "model", args.init)
    elif args.init_onnx:
        example = calibration_inputs(arch, PhotoSet.of(photos.take(np.array([0]))), 64)[0]
        calibration = calibration_inputs(arch, photos, args.crop)
        load_onnx_weights(model, args.init_onnx, example, calibration)
        LOG.info("initialised from %s", args.init_onnx)
    for module in model.modules():
        if isinstance(module, EfficientNetLite0Features) and args.freeze_blocks:
            module.freeze(args.freeze_blocks)
    model = model.to(args.device, memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit memory_format
    optimizer = _optimizer(model, args)
    progress = Progress(**state["progress"]) if state else Progress()
    if state:
        given_rates = [group["base_lr"] for group in optimizer.param_groups]
        optimizer.load_state_dict(state["optimizer"])
        for group, base_lr in zip(optimizer.param_groups, given_rates, strict=True):
            group["base_lr"] = base_lr  # a resumed piece learns at the --lr it is given
        LOG.info("resumed at step %d of %d", progress.step, progress.total_steps)
    ema = None
    if args.ema_decay:
        ema = AveragedModel(
            model, multi_avg_fn=get_ema_multi_avg_fn(args.ema_decay), use_buffers=True
        )
        if state and "ema" in state:
            ema.load_state_dict(state["ema"])
    return Run(arch, model, optimizer, centres, weights, progress, args, ema)


def _optimizer(model: nn.Module, args: argparse.Namespace) -> torch.optim.Optimizer:
    """AdamW; the pretrained backbone learns at a fraction of the rate."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    backbone = [p for n, p in trainable if ".backbone." in f".{n}"]
    rest = [p for n, p in trainable if ".backbone." not in f".{n}"]
    groups = [{"params": rest, "lr": args.lr, "base_lr": args.lr}]
    if backbone:
        scaled = args.lr * args.backbone_lr_scale
        groups.append({"params": backbone, "lr": scaled, "base_lr": scaled})
    return torch.optim.AdamW(groups, weight_decay=1e-4)


def learning_rate_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then a cosine down to 2 % of the rate at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress))


def source_factors(photos: PhotoSet, spec: list[str]) -> np.ndarray | None:
    """Per-photo factors from SOURCE=FACTOR items (1 for sources not named); None if none.

    Sources the photos do not have are ignored with a warning, so one recipe serves any
    data mix (training/long_run.sh's EXTRA="--data ...")."""
    if not spec:
        return None
    factors = dict(item.split("=", 1) for item in spec)
    absent = sorted(set(factors) - set(photos.names))
    if absent:
        LOG.warning("--colour-shortfall-source-factor: no photos of %s", ", ".join(absent))
    by_source = np.array([float(factors.get(name, 1.0)) for name in photos.names], np.float32)
    return by_source[photos.sources]


def rebalanced_loss(logits, ab, encoder: SoftEncoder, weights: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against soft targets, weighted by the rarity of each pixel's colour."""
    target_ab = F.adaptive_avg_pool2d(ab, logits.shape[2:])
    target = encoder(target_ab)
    pixel_weight = weights[target.argmax(dim=1)]
    ce = -(target * F.log_softmax(logits, dim=1)).sum(dim=1)
    return (ce * pixel_weight).mean()


def objective_loss(arch: Architecture, output, ab, encoder, weights) -> torch.Tensor:
    """The architecture's training loss for one batch."""
    if arch.objective == "bins":
        return rebalanced_loss(output, ab, encoder, weights)
    # "regression", and the ab part of "guided" (Trainer adds the classification term)
    return F.smooth_l1_loss(output, F.adaptive_avg_pool2d(ab, output.shape[2:]), beta=2.0)


def network_inputs(arch: Architecture, lightness, ab, reference, rng) -> tuple:
    """What the network reads: L, plus simulated hints or the reference view."""
    if arch.kind is ModelKind.HINT:
        return (lightness, *(t.to(lightness.device) for t in simulate_hints(ab.cpu(), rng)))
    if arch.kind is ModelKind.EXEMPLAR:
        return lightness, reference
    return (lightness,)


class Trainer:
    """Steps, validation and checkpoints of one run."""

    def __init__(self, run: Run, photos: PhotoSet, val_sets: dict[str, PhotoSet]):
        args = run.args
        self.run, self.args, self.val_sets = run, args, val_sets
        device = torch.device(args.device)
        centres = torch.from_numpy(run.centres).to(device)
        self.weights = torch.from_numpy(run.weights).to(device)
        self.encoder = SoftEncoder(centres).to(device)
        self.decoder = AnnealedMean(centres).to(device)
        self.semantic = None
        weights = (args.class_kl_weight, args.feature_weight, args.colour_shortfall_weight)
        if run.arch.objective == "bins" and any(weights):
            self.semantic = SemanticConsistencyLoss(centres, args.semantic_temperature).to(device)
        extra = {ModelKind.EXEMPLAR: "reference"}.get(run.arch.kind)
        if run.arch.objective == "guided" or self.semantic is not None:
            extra = "rgb"
        self.shortfall_factors = source_factors(photos, args.colour_shortfall_source_factor)
        self.batches = LabBatches(
            photos,
            args.crop,
            args.batch,
            extra,
            device,
            args.min_scale,
            args.min_colourfulness,
            self.shortfall_factors if self.semantic is not None else None,
        )
        self.teacher = ImageNetTeacher().to(device) if run.arch.objective == "guided" else None
        if not run.progress.total_steps:
            run.progress.total_steps = args.steps or int(args.epochs * len(self.batches))
        elif args.steps:
            run.progress.total_steps = args.steps  # extend (or shorten) a resumed run
        self.hint_rng = np.random.default_rng(run.progress.step)
        self.stop_requested = False

    def step(self, batch: tuple[torch.Tensor, ...]) -> None:
        run, progress = self.run, self.run.progress
        lightness, ab, *extra = (t.to(self.args.device) for t in batch)
        factors = extra.pop() if self.batches.photo_weights is not None else None
        lightness = lightness.contiguous(memory_format=torch.channels_last)
        reference = extra[0] if run.arch.kind is ModelKind.EXEMPLAR else None
        output = run.model(*network_inputs(run.arch, lightness, ab, reference, self.hint_rng))
        guidance = None
        if self.teacher is not None:  # "guided": regression plus the classification term
            output, class_logits = output
            targets = self.teacher(extra[0])
            guidance = -(targets * F.log_softmax(class_logits, dim=1)).sum(dim=1).mean()
        loss = objective_loss(run.arch, output, ab, self.encoder, self.weights)
        if guidance is not None:
            loss = loss + self.args.class_weight * guidance
        if self.semantic is not None:
            loss = loss + self.semantic_term(output, lightness, extra[0], factors)
        factor = learning_rate_factor(progress.step, progress.total_steps, self.args.warmup_steps)
        for group in run.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        if run.ema is not None:
            run.ema.update_parameters(run.model)
        progress.step += 1
        progress.photos_seen += len(lightness)
        run.losses.append(loss.item())

    def semantic_term(self, logits, lightness, truth_rgb, factors=None) -> torch.Tensor:
        """The weighted semantic-consistency loss on the first --semantic-photos of the batch
        (`factors`: each photo's shortfall factor, from its source)."""
        k, args = self.args.semantic_photos, self.args
        assert self.semantic is not None
        judged = factors[:k] if factors is not None else None
        terms = self.semantic(logits[:k], lightness[:k], truth_rgb[:k], judged)
        for name, value in terms._asdict().items():
            self.run.terms.setdefault(name, []).append(value.item())
        return (
            args.class_kl_weight * terms.class_kl
            + args.feature_weight * terms.feature_distance
            + args.colour_shortfall_weight * terms.colour_shortfall
        )

    @torch.no_grad()
    def validate(self) -> dict:
        """Per validation root: loss, and ab RMSE of the decoded prediction, on whole photos.

        Hints are simulated with a fixed seed; the exemplar is the photo itself, flipped.
        """
        run, model = self.run, self.run.judged_model
        model.eval()
        report = {}
        for name, photos in self.val_sets.items():
            rng = np.random.default_rng(0)
            losses, sq_err, count = [], 0.0, 0
            for lightness, ab in evaluation_batches(photos, photos.spread(self.args.val_limit), 32):
                lightness, ab = lightness.to(self.args.device), ab.to(self.args.device)
                reference = torch.cat([lightness, ab], dim=1).flip(3)
                output = model(*network_inputs(run.arch, lightness, ab, reference, rng))
                if isinstance(output, tuple):
                    output = output[0]
                losses.append(objective_loss(run.arch, output, ab, self.encoder, self.weights))
                decoded = self.decoder(output) if run.arch.objective == "bins" else output
                pred = F.interpolate(decoded, size=ab.shape[2:], mode="bilinear")
                sq_err += float(((pred - ab) ** 2).sum())
                count += ab.numel()
            report[name] = {
                "loss": round(float(torch.stack(losses).mean()), 5),
                "ab_rmse": round(math.sqrt(sq_err / count), 4),
            }
        model.train()
        return report

    def record(self, history: Path, piece_started: float, piece_first_step: int) -> None:
        """Append one line of the training curve; keep the best checkpoint by validation loss."""
        run, progress = self.run, self.run.progress
        seconds = max(time.time() - piece_started, 1e-6)
        record = {
            "step": progress.step,
            "epoch": round(progress.photos_seen / len(self.batches.photos), 3),
            "photos_seen": progress.photos_seen,
            "train_hours": round(progress.train_seconds / 3600, 3),
            "photos_per_s": round(
                (progress.step - piece_first_step) * self.args.batch / seconds, 2
            ),
            "train_loss": round(float(np.mean(run.losses)), 5) if run.losses else None,
            "lr": run.optimizer.param_groups[0]["lr"],
        }
        run.losses.clear()
        for name, values in run.terms.items():
            record[name] = round(float(np.mean(values)), 5) if values else None
            values.clear()
        if self.val_sets:
            record["val"] = self.validate()
            score = float(np.mean([v["loss"] for v in record["val"].values()]))
            record["val_loss"] = round(score, 5)
            if score < progress.best:
                progress.best = score
                run.save(self.args.out / "best.pt")
        LOG.info("%s", json.dumps(record))
        with history.open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    def fit(self) -> None:
        """Train until the planned steps are done or this piece's time is up."""
        run, progress, args = self.run, self.run.progress, self.args
        history = args.out / "history.jsonl"
        val_every = args.val_every or len(self.batches)
        started = last_save = last_tick = time.time()
        first_step = progress.step
        if progress.step == 0 and self.val_sets:
            self.record(history, started, first_step)  # where the curve starts
        run.model.train()
        while progress.step < progress.total_steps and not self._piece_over(started):
            epoch, skip = divmod(progress.step, len(self.batches))
            for batch in prefetch(self.batches.epoch(1000 + epoch, skip)):
                self.step(batch)
                now = time.time()
                progress.train_seconds += now - last_tick
                last_tick = now
                if progress.step % 20 == 0:
                    LOG.info(
                        "step %d/%d loss %.4f lr %.2e",
                        progress.step,
                        progress.total_steps,
                        run.losses[-1],
                        run.optimizer.param_groups[0]["lr"],
                    )
                if progress.step % val_every == 0 or progress.step == progress.total_steps:
                    self.record(history, started, first_step)
                    last_tick = time.time()
                if now - last_save > args.checkpoint_minutes * 60:
                    run.save(args.out / "last.pt")
                    last_save = time.time()
                if progress.step >= progress.total_steps or self._piece_over(started):
                    break
        run.save(args.out / "last.pt")

    def _piece_over(self, started: float) -> bool:
        minutes, last_step = self.args.stop_after_minutes, self.args.stop_at_step
        return (
            self.stop_requested
            or bool(minutes and time.time() - started > minutes * 60)
            or bool(last_step and self.run.progress.step >= last_step)
        )


def train(args: argparse.Namespace) -> Path:
    """Train (or continue) a run; returns the checkpoint to export."""
    args.out.mkdir(parents=True, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    photos = PhotoSet.load(args.data, args.cache_size, args.cache)
    val_sets = {
        f"{root.parent.name}/{root.name}": PhotoSet.load([root], args.cache_size, args.cache)
        for root in args.val
    }
    LOG.info("%d training photos from %d sources", len(photos), len(photos.names))
    trainer = Trainer(new_run(args, photos), photos, val_sets)

    def request_stop(signum, frame):
        LOG.info("signal %d: stopping after this step", signum)
        trainer.stop_requested = True

    previous = signal.signal(signal.SIGTERM, request_stop)
    try:
        trainer.fit()
    finally:
        signal.signal(signal.SIGTERM, previous)
    best = args.out / "best.pt"
    return best if best.exists() else args.out / "last.pt"


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    train(parse_args(argv))


if __name__ == "__main__":
    main()
