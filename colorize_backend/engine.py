"""ONNX Runtime sessions, created once per model and reused, CUDA first with CPU fallback."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort

from colorize_backend.guidance import (
    Reference,
    hints_at,
    propagate_hints,
    reference_lab,
    small_hints,
    transfer_exemplar,
)
from colorize_backend.manifest import Manifest, ModelEntry
from colorize_backend.pipeline import compose, full_lightness, network_input, resize_plane

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
    """Runs colorizers from the manifest on u8 images; thread-safe session cache.

    refine_hints: after a hint model, spread what is left between each hint and the model's
    colour there with the edge-aware solve of guidance (off only to measure the model
    on its own).
    """

    def __init__(
        self,
        manifest: Manifest,
        providers: list[str] | None = None,
        threads: int | None = None,
        refine_hints: bool = True,
    ):
        self.manifest = manifest
        self.providers = providers or available_providers()
        self.threads = threads
        self.refine_hints = refine_hints
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
        return self.run_model(entry, {"L": lightness_small})

    def run_model(self, entry: ModelEntry, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Run any contract-following model; returns its ab output [2, h', w']."""
        (ab,) = self.session(entry).run(["ab"], inputs)
        return ab[0]

    def model_for(self, model: str | None, mode: str | None) -> ModelEntry:
        """The model that serves a request: the one named, else the manifest's model for the
        reference kind (exemplar or hint) if it ships one, else the default auto model."""
        wanted = {"exemplar": "exemplar", "hints": "hint"}.get(mode or "")
        if model is not None:
            entry = self.manifest.resolve(model)
            if entry.kind != "auto" and entry.kind != wanted:
                needs = "an exemplar photo" if entry.kind == "exemplar" else "a painted hint layer"
                raise ValueError(f"model {entry.name} is a {entry.kind!r} model; it needs {needs}")
            return entry
        guided = self.manifest.find_kind(wanted) if wanted else None
        return guided or self.manifest.resolve(None, kind="auto")

    def colorize(
        self,
        pixels: np.ndarray,
        model: str | None = None,
        strength: float = 1.0,
        reference: Reference | None = None,
    ) -> Result:
        """Colorize an [H, W, C] u8 image (C = 1..4) into RGB(A) u8 of the same size.

        With a reference, the colour is steered by the exemplar's colours or the painted hints:
        through a model trained for it when one is installed, else by the model-free methods of
        colorize_backend.guidance applied to the automatic prediction.
        """
        if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4) or pixels.dtype != np.uint8:
            raise ValueError("pixels must be an [H, W, C] uint8 array with 1 to 4 channels")
        timings = Timings()
        mode = reference.resolved_mode() if reference is not None else None
        entry = self.model_for(model, mode)
        started = time.perf_counter()
        lightness = full_lightness(pixels)
        small = network_input(lightness, entry.input_size, entry.multiple)
        hints = self._hints(reference, lightness.shape) if mode == "hints" else None
        started = timings.add("preprocess", started)
        if entry.kind == "auto":
            ab = self.predict_ab(entry, small)
            started = timings.add("network", started)
            if mode is not None:
                ab = self._fallback_guidance(small[0, 0], ab, reference, hints, strength)
                started = timings.add("guidance", started)
        else:
            ab = self._guided_model(entry, small, reference, hints, strength)
            started = timings.add("network", started)
        exact = hints if hints is not None and strength >= 1.0 else None
        out = compose(lightness, ab, pixels, 1.0 if mode else strength, exact)
        timings.add("postprocess", started)
        return Result(out, entry.name, self.provider_of(entry), timings)

    @staticmethod
    def _hints(reference: Reference, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        hint_ab, hint_mask = hints_at(reference, shape[1], shape[0])
        if not hint_mask.any():
            raise ValueError("the hint layer has no painted pixels over the image")
        return hint_ab, hint_mask

    @staticmethod
    def _fallback_guidance(small_l, ab, reference, hints, strength) -> np.ndarray:
        """Model-free steering of the automatic ab (at the network's output size)."""
        if hints is None:
            working_l = resize_plane(small_l, ab.shape[2], ab.shape[1])
            return transfer_exemplar(working_l, ab, reference_lab(reference.pixels), strength)
        return (1 - strength) * ab + strength * Engine._spread_hints(small_l, ab, hints)

    @staticmethod
    def _spread_hints(small_l, ab, hints) -> np.ndarray:
        """ab moved to the hints at hinted cells, the change spread along lightness edges."""
        ab_h, ab_w = ab.shape[1:]
        grid_ab, grid_mask = small_hints(*hints, ab_w, ab_h)
        return propagate_hints(resize_plane(small_l, ab_w, ab_h), ab, grid_ab, grid_mask)

    def _guided_model(self, entry, small, reference, hints, strength) -> np.ndarray:
        """Run an exemplar or hint model; below full strength, blend with the automatic result."""
        if entry.kind == "exemplar":
            ref_lab = reference_lab(reference.pixels, entry.input_size, entry.multiple)
            ref_lab = ref_lab.transpose(2, 0, 1)[None]
            ab = self.run_model(entry, {"L": small, "ref_lab": np.ascontiguousarray(ref_lab)})
        else:
            height, width = small.shape[2:]
            grid_ab, grid_mask = small_hints(*hints, width, height)
            ab = self.run_model(
                entry,
                {
                    "L": small,
                    "hint_ab": np.ascontiguousarray(grid_ab.transpose(2, 0, 1)[None]),
                    "hint_mask": grid_mask[None, None].astype(np.float32),
                },
            )
            if self.refine_hints:
                ab = self._spread_hints(small[0, 0], ab, hints)
        if strength >= 1.0:
            return ab
        auto_entry = self.manifest.resolve(None, kind="auto")
        auto = self.predict_ab(
            auto_entry, network_input(small[0, 0], auto_entry.input_size, auto_entry.multiple)
        )
        auto = np.stack([resize_plane(c, ab.shape[2], ab.shape[1]) for c in auto])
        return strength * ab + (1 - strength) * auto
