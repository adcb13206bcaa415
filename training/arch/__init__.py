"""Colorizer architectures by name: what each reads, what it predicts, how it starts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn as nn
from colorize_backend.core.contract import AUTO_AB, ModelKind


@dataclass(frozen=True)
class Architecture:
    name: str
    kind: ModelKind  # what the network reads (the model contract)
    # "bins": logits over quantised ab (annealed mean at export); "regression": ab;
    # "guided": ab regression plus class logits trained against a teacher classifier
    objective: str
    build: Callable[[int], nn.Module]  # num_bins -> network
    description: str
    init_prefix: str | None = None  # --init loads a checkpoint's weights under this module name
    optional_inputs: tuple[str, ...] = ()  # read beyond its kind's inputs (contract.py)
    trainer: str = "training.train"  # the module that trains it


def _fusion(num_bins: int) -> nn.Module:
    from training.arch.fusion import FusionColorizer

    return FusionColorizer(num_bins)


def _autoencoder(num_bins: int) -> nn.Module:
    from training.arch.autoencoder import EncoderDecoderColorizer

    return EncoderDecoderColorizer()


def _classification(num_bins: int) -> nn.Module:
    from training.arch.classification import ClassificationColorizer

    return ClassificationColorizer(num_bins)


def _dense(num_bins: int) -> nn.Module:
    from training.arch.dense import DenseDualStreamColorizer

    return DenseDualStreamColorizer()


def _exemplar(num_bins: int) -> nn.Module:
    from training.arch.exemplar import ExemplarColorizer

    return ExemplarColorizer()


def _semantic_exemplar(num_bins: int) -> nn.Module:
    from training.arch.semantic_exemplar import SemanticExemplarColorizer

    return SemanticExemplarColorizer()


def _user_hint(num_bins: int) -> nn.Module:
    from training.arch.user_hint import UserHintColorizer

    return UserHintColorizer(num_bins)


ARCHITECTURES = {
    arch.name: arch
    for arch in (
        Architecture(
            "autoencoder",
            ModelKind.AUTO,
            "regression",
            _autoencoder,
            "Encoder-decoder CNN from scratch, strided 3x3 convs 64-512, tanh ab regression",
        ),
        Architecture(
            "fusion",
            ModelKind.AUTO,
            "bins",
            _fusion,
            "Fusion CNN: scratch local encoder + pretrained EfficientNet-Lite0 features "
            "and global embedding, U-Net decoder, 10x10 ab-bin classification, "
            "annealed mean",
        ),
        Architecture(
            "classification",
            ModelKind.AUTO,
            "bins",
            _classification,
            "Classification colorizer from scratch over quantised ab bins, class "
            "rebalancing, annealed mean (after Zhang et al. 2016)",
        ),
        Architecture(
            "dense",
            ModelKind.AUTO,
            "guided",
            _dense,
            "Dense dual-stream network: DenseNet detail stream + EfficientNet-Lite0 "
            "classification-guidance stream, fused; ab regression + class cross-entropy",
        ),
        Architecture(
            ModelKind.EXEMPLAR,
            ModelKind.EXEMPLAR,
            "regression",
            _exemplar,
            "Heterogeneous exemplar network: compressed L, Sobel contours and reference "
            "Lab; soft correspondence + palette embedding, ab regression",
        ),
        Architecture(
            "semantic-exemplar",
            ModelKind.EXEMPLAR,
            "regression",
            _semantic_exemplar,
            "Semantic exemplar network: frozen EfficientNet-Lite0 features of both photos' "
            "lightness, attention by content, confidence-weighted blend with the automatic "
            "colour (after He et al. 2018)",
            optional_inputs=(AUTO_AB,),
            trainer="training.train_semantic_exemplar",
        ),
        Architecture(
            "user-hint",
            ModelKind.HINT,
            "bins",
            _user_hint,
            "User-hint network: the fusion colorizer with a sparse-hint encoder "
            "(hint ab + mask) feeding its local stream (after Zhang et al. 2017)",
            init_prefix="colorizer",
        ),
    )
}
# what `python -m training.train --arch` trains (the others have trainers of their own)
TRAINED_END_TO_END = sorted(n for n, a in ARCHITECTURES.items() if a.trainer == "training.train")
