"""Running one job: its pixels (from the message's frames or a shared file), the pipeline,
and the reply — success, cancellation or failure, never an exception."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from colorize_backend.core.errors import ColorizeError, ErrorCode
from colorize_backend.core.pipeline import Colorizer
from colorize_backend.core.reference import Reference
from colorize_backend.daemon.protocol import ColorizeRequest, ImageSpec, colorize_reply, error_reply
from colorize_backend.daemon.scheduler import Cancelled, Job
from colorize_backend.daemon.shm import BufferPool, Region

LOG = logging.getLogger("colorize.daemon")


def as_array(frame: bytes | memoryview, spec: ImageSpec) -> np.ndarray:
    """A validated pixel frame as a read-only [H, W, C] view in its sample type (no copy)."""
    dtype = np.dtype(spec.sample.numpy)
    return np.frombuffer(frame, dtype=dtype).reshape(spec.height, spec.width, spec.channels)


def shape_of(spec: ImageSpec) -> tuple[int, int, int]:
    return spec.height, spec.width, spec.channels


class JobInputs:
    """A job's pixels, reference and result buffer: views into its frames or shared buffer."""

    def __init__(self, job: Job, pool: BufferPool | None):
        request = job.request
        self.out: np.ndarray | None = None
        self.reference: np.ndarray | None = None
        if request.shared is None:
            self.pixels = as_array(job.payload[0], request.image)
            if request.reference is not None:
                self.reference = as_array(job.payload[1], request.reference)
            return
        if pool is None:
            raise ColorizeError(ErrorCode.BAD_REQUEST, "this daemon offers no shared buffers")
        shared = request.shared
        self._check_regions(request)
        self.pixels = self._view(pool, shared.name, shared.image, request.image)
        self.out = self._view(pool, shared.name, shared.result, request.image.result)
        if request.reference is not None and shared.reference is not None:
            self.reference = self._view(pool, shared.name, shared.reference, request.reference)

    @staticmethod
    def _view(pool: BufferPool, name: str, offset: int, spec: ImageSpec) -> np.ndarray:
        region = Region(offset, spec.nbytes)
        return pool.view(name, region, shape_of(spec), np.dtype(spec.sample.numpy))

    @staticmethod
    def _check_regions(request: ColorizeRequest) -> None:
        shared = request.shared
        assert shared is not None
        inputs = [Region(shared.image, request.image.nbytes)]
        if request.reference is not None and shared.reference is not None:
            inputs.append(Region(shared.reference, request.reference.nbytes))
        result = Region(shared.result, request.image.result.nbytes)
        if any(result.overlaps(region) for region in inputs):
            raise ColorizeError(ErrorCode.BAD_HEADER, "shm: the result overlaps the pixels")


class JobRunner:
    """Runs jobs through the colorizer and builds their replies."""

    def __init__(self, colorizer: Colorizer, pool: BufferPool | None):
        self.colorizer = colorizer
        self.pool = pool

    def run(self, job: Job, report: Callable[[str, float], None]) -> tuple[dict[str, Any], list]:
        """The reply header and frames for a job (errors become error replies)."""
        request = job.request
        waited = time.monotonic() - job.received
        try:
            inputs = JobInputs(job, self.pool)
            reference = self._reference(request, inputs.reference)
            result = self.colorizer.colorize(
                inputs.pixels,
                model=request.model,
                strength=request.strength,
                reference=reference,
                progress=report,
                out=inputs.out,
                saturation=request.saturation,
                detail_size=request.detail_size,
            )
        except Cancelled:
            LOG.info("request %s cancelled while running", request.request_id)
            return error_reply(ErrorCode.CANCELLED, "cancelled", request.request_id, "colorize"), []
        except ColorizeError as exc:
            LOG.warning("request %s failed: %s", request.request_id, exc)
            return error_reply(exc.code, exc.message, request.request_id, "colorize"), []
        except Exception as exc:  # the daemon must outlive any failure of one request
            LOG.exception("request %s crashed", request.request_id)
            message = f"{type(exc).__name__}: {str(exc)[:200]}"
            return error_reply(ErrorCode.INTERNAL, message, request.request_id, "colorize"), []
        timings = {"queue": round(waited, 4), **result.timings.stages}
        self._log(request, result.model, result.provider, timings)
        shared = request.shared is not None
        header = colorize_reply(
            request.request_id, request.image.result, result.model, result.provider, timings, shared
        )
        return header, [] if shared else [result.pixels]  # sent zero-copy from the array

    @staticmethod
    def _reference(request: ColorizeRequest, pixels: np.ndarray | None) -> Reference | None:
        if request.reference is None or pixels is None:
            return None
        ref, spec = request.reference, request.image
        offset = (ref.offset[0] - spec.offset[0], ref.offset[1] - spec.offset[1])
        return Reference(pixels, request.reference_mode, offset)

    @staticmethod
    def _log(request: ColorizeRequest, model: str, provider: str, timings: dict) -> None:
        spec = request.image
        tuning = [f"detail={request.detail_size}"] if request.detail_size else []
        tuning += [f"saturation={request.saturation:g}"] if request.saturation != 1.0 else []
        LOG.info(
            "request %s: %dx%d %s/%s %s model=%s provider=%s %s",
            request.request_id,
            spec.width,
            spec.height,
            spec.format.value,
            spec.sample.value,
            "shared" if request.shared else "frames",
            model,
            provider,
            " ".join(tuning + [f"{k}={v * 1000:.0f}ms" for k, v in timings.items()]),
        )
