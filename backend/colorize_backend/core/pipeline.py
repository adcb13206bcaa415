"""Colorizer.colorize(): choose the model → preprocess → predict or steer → compose.

Every way of colorizing (automatic, exemplar, hints; trained guided model or model-free
steering) runs these four steps in this order, with no branching on the reference: the
guide for the request (core.guidance) owns what differs between reference modes; each
step's work lives in the module named for it (manifest, planes, engine, guidance).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from colorize_backend.core.color import finite
from colorize_backend.core.contract import ModelKind, working_side
from colorize_backend.core.engine import Engine
from colorize_backend.core.errors import ColorizeError, ErrorCode
from colorize_backend.core.guidance import Networks, guide_for
from colorize_backend.core.manifest import Manifest, ModelEntry
from colorize_backend.core.options import ColorizeOptions
from colorize_backend.core.planes import compose
from colorize_backend.core.reference import Reference
from colorize_backend.core.temporal import Sequences

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


class Colorizer:
    """Colorizes images (8/16-bit or float samples) with the manifest's models on an engine.

    model_dirs: folders whose .onnx files can be named as models (a user's own);
    any_model_path: a model may also be named by the path of any .onnx file (the command
    line; a daemon allows paths inside model_dirs only);
    refine_hints: after a hint model, spread what is left between each hint and the model's
    colour there with guidance's edge-aware solve (off only to measure the model alone).
    """

    def __init__(
        self,
        manifest: Manifest,
        engine: Engine,
        refine_hints: bool = True,
        model_dirs: Sequence[Path] = (),
        any_model_path: bool = True,
    ):
        self.manifest = manifest
        self.engine = engine
        self.refine_hints = refine_hints
        self.model_dirs = model_dirs
        self.any_model_path = any_model_path
        self.networks = Networks(engine, manifest)
        self.sequences = Sequences()

    def colorize(
        self,
        pixels: np.ndarray,
        options: ColorizeOptions = ColorizeOptions(),
        reference: Reference | None = None,
        progress: Callable[[str, float], None] = lambda stage, done: None,
        out: np.ndarray | None = None,
    ) -> Result:
        """Colorize an [H, W, C] image (C = 1..4; u8, u16 or float32 in [0, 1]) into RGB(A)
        of the same size and sample type, as `options` say.

        With a reference, the colour is steered by the exemplar's colours or the painted hints
        (core.guidance). `progress(stage, done)` is called before each step; it may raise to
        abandon the work (a cancelled job). The result goes into `out` when given (e.g. a
        shared-memory buffer the client reads).
        """
        if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4) or pixels.dtype not in SAMPLES:
            raise ValueError("pixels must be [H, W, C], C = 1..4, uint8, uint16 or float32")
        timings = Timings()
        started = time.perf_counter()
        pixels = finite(pixels)  # one NaN must not spread over the whole result
        guide = guide_for(pixels, reference, options, self.refine_hints)
        entry = self.choose_model(options.model, guide.model_kind)
        progress("preprocess", 0.05)
        height, width = pixels.shape[:2]
        size = working_side(options.detail_size, entry.input_size, width, height)
        small = guide.network_lightness(pixels, size, entry.multiple)
        started = timings.add("preprocess", started)
        progress("network", 0.3)
        ab = guide.predict(self.networks, entry, small)
        ab = self.sequences.carry(options, pixels, ab)  # a film's frame: along the motion
        started = timings.add("network", started)
        progress("compose", 0.6)
        out = compose(pixels, ab, options.saturation, guide.exact(), out)
        timings.add("postprocess", started)
        return Result(out, entry.name, self.engine.provider_of(entry), timings)

    def warm_up(self) -> None:
        """Load the default model (its runtime, compiled or from the cache) and run it once on
        a small grey image: what the first real photo would otherwise wait for."""
        entry = self.choose_model(None, None)
        side = entry.input_size
        self.colorize(np.full((side, side, 1), 128, np.uint8))

    def choose_model(self, model: str | None, wanted: ModelKind | None) -> ModelEntry:
        """The model that serves a request: the one named, else the manifest's model for the
        reference kind (exemplar or hint) if it ships one, else the default auto model."""
        if model is not None:
            entry = self.manifest.resolve(
                model, model_dirs=self.model_dirs, any_path=self.any_model_path
            )
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
