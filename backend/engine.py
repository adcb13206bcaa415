"""ONNX Runtime sessions, created once per model and reused, CUDA first with CPU fallback."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort

from backend.guidance import (
    Reference,
    hints_at,
    propagate_hints,
    reference_lab,
    small_hints,
    transfer_exemplar,
)
from backend.manifest import Manifest, ModelEntry
from backend.pipeline import compose, full_lightness, network_input, resize_plane

LOG = logging.getLogger("colorize.engine")
PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


def available_providers() -> list[str]:
    """Execution providers usable here, in the order they are tried."""
    present = set(ort.get_available_providers())
    return [p for p in PREFERRED_PROVIDERS if p in present]


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


class Engine:
    """Runs colorizers from the manifest on u8 images; thread-safe session cache."""

    def __init__(
        self, manifest: Manifest, providers: list[str] | None = None, threads: int | None = None
    ):
        self.manifest = manifest
        self.providers = providers or available_providers()
        self.threads = threads
        self._sessions: dict[str, ort.InferenceSession] = {}
        self._lock = threading.Lock()

    def session(self, entry: ModelEntry) -> ort.InferenceSession:
        with self._lock:
            cached = self._sessions.get(str(entry.path))
            if cached is not None:
                return cached
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads or min(os.cpu_count() or 1, 8)
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = ort.InferenceSession(str(entry.path), options, providers=self.providers)
            used = session.get_providers()[0]
            if used != self.providers[0]:
                LOG.warning(
                    "model %s: %s unavailable, falling back to %s",
                    entry.name,
                    self.providers[0],
                    used,
                )
            LOG.info("model %s loaded from %s on %s", entry.name, entry.path, used)
            self._sessions[str(entry.path)] = session
            return session

    def provider_of(self, entry: ModelEntry) -> str:
        return self.session(entry).get_providers()[0]

    def predict_ab(self, entry: ModelEntry, lightness_small: np.ndarray) -> np.ndarray:
        """Run an `auto` model on [1, 1, h, w] L; returns ab [2, h', w']."""
        session = self.session(entry)
        (ab,) = session.run(["ab"], {"L": lightness_small})
        return ab[0]

    def colorize(
        self,
        pixels: np.ndarray,
        model: str | None = None,
        strength: float = 1.0,
        reference: Reference | None = None,
    ) -> Result:
        """Colorize an [H, W, C] u8 image (C = 1..4) into RGB(A) u8 of the same size.

        With a reference, the automatic prediction is steered by the exemplar's colours or the
        painted hints before it is joined with the full-resolution lightness.
        """
        if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4) or pixels.dtype != np.uint8:
            raise ValueError("pixels must be an [H, W, C] uint8 array with 1 to 4 channels")
        timings = Timings()
        entry = self.manifest.resolve(model, kind="auto")
        if entry.kind != "auto":
            raise ValueError(f"model {entry.name} is a {entry.kind!r} model; it needs a reference")
        started = time.perf_counter()
        lightness = full_lightness(pixels)
        small = network_input(lightness, entry.input_size, entry.multiple)
        started = timings.add("preprocess", started)
        ab = self.predict_ab(entry, small)
        started = timings.add("network", started)
        hints = None
        if reference is not None:
            ab, hints = self._guide(lightness, small[0, 0], ab, reference, strength)
            started = timings.add("guidance", started)
        out = compose(lightness, ab, pixels, 1.0 if reference is not None else strength, hints)
        timings.add("postprocess", started)
        return Result(out, entry.name, self.provider_of(entry), timings)

    @staticmethod
    def _guide(
        lightness: np.ndarray,
        small_l: np.ndarray,
        ab: np.ndarray,
        reference: Reference,
        strength: float,
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """Steer ab (at network output size) with an exemplar or painted hints."""
        ab_h, ab_w = ab.shape[1:]
        working_l = resize_plane(small_l, ab_w, ab_h)
        if reference.resolved_mode() == "exemplar":
            return transfer_exemplar(working_l, ab, reference_lab(reference.pixels), strength), None
        height, width = lightness.shape
        hint_ab, hint_mask = hints_at(reference, width, height)
        if not hint_mask.any():
            raise ValueError("the hint layer has no painted pixels over the image")
        grid_ab, grid_mask = small_hints(hint_ab, hint_mask, ab_w, ab_h)
        guided = propagate_hints(working_l, ab, grid_ab, grid_mask)
        guided = (1 - strength) * ab + strength * guided
        return guided, ((hint_ab, hint_mask) if strength >= 1.0 else None)
