"""Colorizer.colorize(): choose the model → preprocess → predict or steer → compose.

Every way of colorizing (automatic, exemplar, hints; trained guided model or model-free
steering) runs these four steps in this order; each step's work lives in the module
named for it (manifest, planes, engine, guidance).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from colorize_backend.core import guidance
from colorize_backend.core.contract import AUTO_AB, ModelKind
from colorize_backend.core.engine import Engine
from colorize_backend.core.errors import ColorizeError, ErrorCode
from colorize_backend.core.manifest import Manifest, ModelEntry
from colorize_backend.core.planes import (
    compose,
    lightness_at,
    network_input,
    network_lightness,
    resize_planes,
)
from colorize_backend.core.reference import Hints, Reference, ReferenceMode

SAMPLES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))


@dataclass
class Timings:
    """Seconds spent per stage, for logs and the protocol's reply header."""

    stages: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, started: float) -> float:
        now = time.perf_counter()
        self.stages[stage] = round(now - started, 4)
        return now


@dataclass
class Result:
    pixels: np.ndarray
    model: str
    provider: str
    timings: Timings


@dataclass
class Steering:
    """What steers one request: the reference, how it is read, its hints, and how much."""

    reference: Reference | None
    mode: ReferenceMode | None
    hints: Hints | None
    strength: float
    hint_lightness: np.ndarray | None = None  # the photo's lightness on the hint grid


class Colorizer:
    """Colorizes images (8/16-bit or float samples) with the manifest's models on an engine.

    refine_hints: after a hint model, spread what is left between each hint and the model's
    colour there with guidance's edge-aware solve (off only to measure the model alone).
    """

    def __init__(
        self,
        manifest: Manifest,
        engine: Engine,
        refine_hints: bool = True,
        model_dirs: list[Path] | None = None,
    ):
        self.manifest = manifest
        self.engine = engine
        self.refine_hints = refine_hints
        self.model_dirs = model_dirs  # None: a model may be named by any path (the CLI)

    def colorize(
        self,
        pixels: np.ndarray,
        model: str | None = None,
        strength: float = 1.0,
        reference: Reference | None = None,
        progress: Callable[[str, float], None] = lambda stage, done: None,
        out: np.ndarray | None = None,
        saturation: float = 1.0,
        detail_size: int | None = None,
    ) -> Result:
        """Colorize an [H, W, C] image (C = 1..4; u8, u16 or float32 in [0, 1]) into RGB(A)
        of the same size and sample type.

        With a reference, the colour is steered by the exemplar's colours or the painted hints:
        through a model trained for it when one is installed, else by model-free steering of
        the automatic prediction. `progress(stage, done)` is called before each step; it may
        raise to abandon the work (a cancelled job). The result goes into `out` when given
        (e.g. a shared-memory buffer the client reads). `saturation` scales the result's
        chroma (painted hint pixels keep theirs); `detail_size` is the short side the network
        works at, instead of the model's own (smaller: broader context; larger: finer detail).
        """
        if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4) or pixels.dtype not in SAMPLES:
            raise ValueError("pixels must be [H, W, C], C = 1..4, uint8, uint16 or float32")
        timings = Timings()
        mode = reference.resolved_mode() if reference is not None else None
        entry = self.choose_model(model, mode)
        progress("preprocess", 0.05)
        started = time.perf_counter()
        steering = Steering(reference, mode, None, strength)
        size = detail_size or entry.input_size
        if mode is ReferenceMode.HINTS:  # the network's input comes from the hint grid's
            assert reference is not None
            steering.hints = reference.hints_over(pixels.shape[1], pixels.shape[0])
            steering.hint_lightness = lightness_at(pixels, guidance.HINT_GRID_SIDE)
            small = network_input(steering.hint_lightness, size, entry.multiple)
        else:
            small = network_lightness(pixels, size, entry.multiple)
        if mode is ReferenceMode.EXEMPLAR:
            assert reference is not None
            reference.check_exemplar()
        started = timings.add("preprocess", started)
        progress("network", 0.3)
        ab = self.predict_or_steer(entry, small, steering)
        started = timings.add("network", started)
        progress("compose", 0.6)
        exact = steering.hints if steering.hints is not None and strength >= 1.0 else None
        out = compose(pixels, ab, (1.0 if mode else strength) * saturation, exact, out)
        timings.add("postprocess", started)
        return Result(out, entry.name, self.engine.provider_of(entry), timings)

    def choose_model(self, model: str | None, mode: ReferenceMode | None) -> ModelEntry:
        """The model that serves a request: the one named, else the manifest's model for the
        reference kind (exemplar or hint) if it ships one, else the default auto model."""
        wanted = mode.model_kind if mode is not None else None
        if model is not None:
            entry = self.manifest.resolve(model, allowed_dirs=self.model_dirs)
            self.manifest.check(entry)
            if entry.kind is not ModelKind.AUTO and entry.kind is not wanted:
                needs = (
                    "an exemplar photo"
                    if entry.kind is ModelKind.EXEMPLAR
                    else "a painted hint layer"
                )
                raise ColorizeError(
                    ErrorCode.BAD_REQUEST,
                    f"model {entry.name} is a {entry.kind.value!r} model; it needs {needs}",
                )
            return entry
        guided = self.manifest.find_kind(wanted) if wanted else None
        entry = guided or self.manifest.resolve(None)
        self.manifest.check(entry)
        return entry

    def predict_or_steer(
        self, entry: ModelEntry, small: np.ndarray, steering: Steering
    ) -> np.ndarray:
        """ab [2, h, w] at the model's output size, steered by the reference if there is one."""
        if entry.kind is ModelKind.AUTO:
            ab = self.engine.run(entry, {"L": small})
            if steering.mode is ReferenceMode.EXEMPLAR:
                assert steering.reference is not None
                return guidance.steer_with_exemplar(
                    small[0, 0], ab, steering.reference, steering.strength
                )
            if steering.mode is ReferenceMode.HINTS:
                assert steering.hints is not None
                assert steering.hint_lightness is not None
                return guidance.steer_with_hints(
                    steering.hint_lightness, ab, steering.hints, steering.strength
                )
            return ab
        assert steering.reference is not None
        inputs = guidance.model_inputs(entry, small, steering.reference, steering.hints)
        automatic = None
        if AUTO_AB in self.engine.input_names(entry):  # it falls back on the automatic colour
            height, width = small.shape[2:]
            automatic = self._automatic(small, (2, height // 4, width // 4))
            inputs[AUTO_AB] = automatic[None]
        ab = self.engine.run(entry, inputs)
        if entry.kind is ModelKind.HINT and self.refine_hints and steering.hints is not None:
            assert steering.hint_lightness is not None
            ab = guidance.spread_hints(steering.hint_lightness, ab, steering.hints)
        if steering.strength >= 1.0:
            return ab
        if automatic is None or automatic.shape != ab.shape:
            automatic = self._automatic(small, ab.shape)
        return steering.strength * ab + (1 - steering.strength) * automatic

    def _automatic(self, small: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """The default auto model's ab for the same photo, resampled to `shape`."""
        auto = self.manifest.resolve(None)
        ab = self.engine.run(
            auto, {"L": network_input(small[0, 0], auto.input_size, auto.multiple)}
        )
        return resize_planes(ab, shape[2], shape[1])
