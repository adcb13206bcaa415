"""Training entry point: python -m training.train --arch NAME --data DIR --out DIR.

One loop for every colorizer in training.arch: bin classifiers learn from
soft-encoded targets with class-rebalanced cross-entropy, regressors from a
Huber loss on ab; hint networks get simulated hints, exemplar networks a second
view of each photo. Cosine learning rate, periodic checkpoints, resume, and
validation on a held-out folder each epoch.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import queue
import threading
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from training.arch import ARCHITECTURES, Architecture
from training.bins import AnnealedMean, SoftEncoder, populated_bins, rebalancing_weights
from training.data import LabBatches, build_cache, evaluation_batches
from training.hints import simulate_hints
from training.teacher import ImageNetTeacher

LOG = logging.getLogger("training.train")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--arch", choices=sorted(ARCHITECTURES), required=True)
    p.add_argument("--data", type=Path, required=True, help="folder of colour training photos")
    p.add_argument("--val", type=Path, help="held-out folder for model selection")
    p.add_argument("--out", type=Path, required=True, help="checkpoint and log folder")
    p.add_argument("--cache", type=Path, default=Path(".cache/data"))
    p.add_argument("--cache-size", type=int, default=160)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--backbone-lr-scale", type=float, default=0.1)
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    p.add_argument(
        "--minutes",
        type=float,
        help="time budget: fewer steps than --epochs if they would not fit; the "
        "cosine schedule ends on time",
    )
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--val-limit", type=int, default=400)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--init",
        type=Path,
        help="start from this checkpoint's weights (e.g. a trained fusion model for user-hint)",
    )
    p.add_argument(
        "--class-weight",
        type=float,
        default=0.1,
        help="weight of the classification-guidance loss (guided architectures)",
    )
    return p.parse_args(argv)


def class_bins(images: np.ndarray, sample: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres and rebalancing weights from a sample of the training photos."""
    rng = np.random.default_rng(0)
    picks = rng.choice(len(images), size=min(sample, len(images)), replace=False)
    _, ab = next(evaluation_batches(images[np.sort(picks)][:, ::4, ::4], len(picks)))
    centres, prior = populated_bins(ab.permute(0, 2, 3, 1).numpy(), min_count=20)
    return centres, rebalancing_weights(centres, prior)


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
    # "regression", and the ab part of "guided" (train() adds the classification term)
    return F.smooth_l1_loss(output, F.adaptive_avg_pool2d(ab, output.shape[2:]), beta=2.0)


def network_inputs(arch: Architecture, lightness, ab, reference, rng) -> tuple:
    """What the network reads: L, plus simulated hints or the reference view."""
    if arch.kind == "hint":
        return (lightness, *(t.to(lightness.device) for t in simulate_hints(ab.cpu(), rng)))
    if arch.kind == "exemplar":
        return lightness, reference
    return (lightness,)


def fit_to_budget(
    total_steps: int, step: int, first_step: int, started: float, minutes: float
) -> int:
    """Steps that fit in the time budget, judged from the pace of the steps so far."""
    elapsed = time.time() - started
    per_step = elapsed / (step - first_step)
    fitting = step + int((minutes * 60 - elapsed) / per_step)
    LOG.info(
        "%.2f s/step: %d of %d planned steps fit in %.0f min",
        per_step,
        min(fitting, total_steps),
        total_steps,
        minutes,
    )
    return max(step, min(total_steps, fitting))


def prefetch(iterable, depth: int = 3):
    """Prepare batches on a helper thread while the network trains."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()

    def work():
        for item in iterable:
            q.put(item)
        q.put(done)

    threading.Thread(target=work, daemon=True).start()
    while (item := q.get()) is not done:
        yield item


def validate(arch, model, images, encoder, weights, decoder, device, limit) -> dict:
    """Validation loss plus ab RMSE of the (decoded) prediction at the cache size.

    Hints are simulated with a fixed seed; the exemplar is the photo itself, flipped.
    """
    model.eval()
    rng = np.random.default_rng(0)
    losses, sq_err, count = [], 0.0, 0
    with torch.no_grad():
        for lightness, ab in evaluation_batches(images[:limit], 32):
            lightness, ab = lightness.to(device), ab.to(device)
            reference = torch.cat([lightness, ab], dim=1).flip(3)
            output = model(*network_inputs(arch, lightness, ab, reference, rng))
            losses.append(objective_loss(arch, output, ab, encoder, weights).item())
            decoded = decoder(output) if arch.objective == "bins" else output
            pred = F.interpolate(decoded, size=ab.shape[2:], mode="bilinear", align_corners=False)
            sq_err += float(((pred - ab) ** 2).sum())
            count += ab.numel()
    model.train()
    return {"val_loss": float(np.mean(losses)), "val_ab_rmse": math.sqrt(sq_err / count)}


def train(args: argparse.Namespace) -> Path:
    args.out.mkdir(parents=True, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    arch = ARCHITECTURES[args.arch]
    images = build_cache(args.data, args.cache_size, args.cache)
    val_images = build_cache(args.val, args.cache_size, args.cache) if args.val else None

    last = args.out / "last.pt"
    state = torch.load(last, weights_only=False) if last.exists() else None
    if state:
        centres, weights = state["centres"], state["weights"]
    else:
        centres, weights = class_bins(images)
    LOG.info("%d ab bins", len(centres))

    device = torch.device(args.device)
    model = arch.build(len(centres))
    if args.init and not state:
        initial = torch.load(args.init, weights_only=False, map_location="cpu")
        target = getattr(model, arch.init_prefix) if arch.init_prefix else model
        target.load_state_dict(initial["model"])
        centres, weights = initial["centres"], initial["weights"]
        LOG.info("initialised %s from %s", arch.init_prefix or "model", args.init)
    model = model.to(device)
    centres_t = torch.from_numpy(centres).to(device)
    weights_t = torch.from_numpy(weights).to(device)
    encoder, decoder = SoftEncoder(centres_t).to(device), AnnealedMean(centres_t).to(device)

    backbone = [p for n, p in model.named_parameters() if n.startswith("backbone.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    optimizer = torch.optim.AdamW(
        [
            {"params": rest, "lr": args.lr},
            {"params": backbone, "lr": args.lr * args.backbone_lr_scale},
        ],
        weight_decay=1e-4,
    )
    extra = (
        "reference" if arch.kind == "exemplar" else "rgb" if arch.objective == "guided" else None
    )
    batches = LabBatches(images, args.crop, args.batch, extra=extra, device=device)
    teacher = ImageNetTeacher().to(device) if arch.objective == "guided" else None
    plan = {"total_steps": args.epochs * len(batches)}  # shortened by --minutes once timed
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: 0.5 * (1 + math.cos(math.pi * min(s / plan["total_steps"], 1.0))),
    )
    step, epoch, best = 0, 0, math.inf
    if state:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step, epoch, best = state["step"], state["epoch"], state["best"]
        plan["total_steps"] = state.get("total_steps", plan["total_steps"])
        LOG.info("resumed at epoch %d step %d", epoch, step)

    def save(path: Path, epoch_done: int) -> None:
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "step": step,
                "total_steps": plan["total_steps"],
                "epoch": epoch_done,
                "best": best,
                "centres": centres,
                "weights": weights,
                "arch": arch.name,
                "args": {k: str(v) for k, v in vars(args).items()},
            },
            path,
        )

    history = args.out / "history.jsonl"
    started, first_step = time.time(), step
    last_save = time.time()
    hint_rng = np.random.default_rng(step)
    model.train()
    while epoch < args.epochs and step < plan["total_steps"]:
        skip = step - epoch * len(batches)
        for batch in prefetch(batches.epoch(1000 + epoch, skip)):
            if step >= plan["total_steps"]:
                break
            lightness, ab, *extra_input = (t.to(device) for t in batch)
            reference = extra_input[0] if arch.kind == "exemplar" else None
            output = model(*network_inputs(arch, lightness, ab, reference, hint_rng))
            if teacher is not None:  # "guided": regression plus the classification term
                output, class_logits = output
                targets = teacher(extra_input[0])
                guidance = -(targets * F.log_softmax(class_logits, dim=1)).sum(dim=1).mean()
            loss = objective_loss(arch, output, ab, encoder, weights_t)
            if teacher is not None:
                loss = loss + args.class_weight * guidance
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if args.minutes and step == first_step + 20:
                plan["total_steps"] = fit_to_budget(
                    plan["total_steps"], step, first_step, started, args.minutes
                )
            if step % 20 == 0:
                LOG.info(
                    "epoch %d step %d/%d loss %.4f lr %.2e %.1f img/s",
                    epoch,
                    step,
                    plan["total_steps"],
                    loss.item(),
                    schedule.get_last_lr()[0],
                    (step - first_step) * args.batch / max(time.time() - started, 1e-6),
                )
            if time.time() - last_save > args.checkpoint_minutes * 60:
                save(last, epoch)
                last_save = time.time()
        epoch += 1
        record = {
            "epoch": epoch,
            "step": step,
            "train_loss": loss.item(),
            "minutes": (time.time() - started) / 60,
        }
        if val_images is not None:
            record.update(
                validate(
                    arch, model, val_images, encoder, weights_t, decoder, device, args.val_limit
                )
            )
            if record["val_loss"] < best:
                best = record["val_loss"]
                save(args.out / "best.pt", epoch)
        LOG.info("epoch done %s", json.dumps(record))
        with history.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        save(last, epoch)
        last_save = time.time()
    return args.out / ("best.pt" if val_images is not None else "last.pt")


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    train(parse_args(argv))


if __name__ == "__main__":
    main()
