"""The daemon's workers: threads that take jobs from the scheduler and run them — pixels
from the message's frames or a shared file, the pipeline, and the reply (success,
cancellation or failure, never an exception) — handing every message for a client back to
the front thread, which alone owns the client socket.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import zmq

from colorize_backend.core.errors import ColorizeError, ErrorCode, without_paths
from colorize_backend.core.pipeline import Colorizer
from colorize_backend.core.reference import Reference
from colorize_backend.daemon.protocol import (
    ColorizeRequest,
    ImageSpec,
    colorize_reply,
    encode_header,
    error_reply,
    progress_reply,
)
from colorize_backend.daemon.scheduler import Cancelled, Job, Scheduler
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
                inputs.pixels, request.options, reference, progress=report, out=inputs.out
            )
        except Cancelled:
            LOG.info("request %s cancelled while running", request.request_id)
            return error_reply(ErrorCode.CANCELLED, "cancelled", request.request_id, "colorize"), []
        except ColorizeError as exc:
            LOG.warning("request %s failed: %s", request.request_id, exc)
            return error_reply(exc.code, exc.message, request.request_id, "colorize"), []
        except Exception as exc:  # the daemon must outlive any failure of one request
            LOG.exception("request %s crashed", request.request_id)
            message = without_paths(f"{type(exc).__name__}: {str(exc)[:200]}")
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
        return Reference(pixels, offset)

    @staticmethod
    def _log(request: ColorizeRequest, model: str, provider: str, timings: dict) -> None:
        spec, options = request.image, request.options
        tuning = [f"detail={options.detail_size}"] if options.detail_size else []
        tuning += [f"saturation={options.saturation:g}"] if options.saturation != 1.0 else []
        tuning += [f"sequence={options.sequence}:{options.frame}"] if options.sequence else []
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


class Workers:
    """Worker threads: each takes the next job, runs it and pushes its messages (progress,
    then the reply) to `replies_endpoint` as [envelope size][envelope...][header][frames...].
    ZeroMQ sockets must not be shared between threads, so each worker has its own PUSH."""

    def __init__(
        self,
        runner: JobRunner,
        scheduler: Scheduler,
        context: zmq.Context,
        replies_endpoint: str,
        progress_after_s: float,
    ):
        self.runner, self.scheduler, self.context = runner, scheduler, context
        self.replies_endpoint = replies_endpoint
        self.progress_after_s = progress_after_s  # stage messages only for jobs slower than this
        self.last_job_ended = 0.0  # when the last job ended (0: none since the last trim)
        self._threads: list[threading.Thread] = []

    def start(self, count: int) -> None:
        for index in range(count):
            thread = threading.Thread(
                target=self._work, name=f"colorize-worker-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def join(self, timeout_s: float) -> None:
        for thread in self._threads:
            thread.join(timeout_s)

    def _work(self) -> None:
        sender = self.context.socket(zmq.PUSH)
        sender.connect(self.replies_endpoint)
        try:
            while not self.scheduler.closed:
                job = self.scheduler.next_job()
                if job is None:
                    continue
                self._serve(job, sender)
                self.last_job_ended = time.monotonic()
        finally:
            sender.close()

    def _serve(self, job: Job, sender: zmq.Socket) -> None:
        """Run one job and send its reply; everything it allocated is freed on return."""
        request = job.request

        def report(stage: str, done: float) -> None:
            job.report(stage, done)  # raises Cancelled when the job is cancelled
            now = time.monotonic()
            # A stage is worth a message only once the job is slow enough for a progress bar
            # to show it; quicker jobs would only pay the thread hand-offs (heartbeats go on).
            if request.progress and now - job.received > self.progress_after_s:
                job.last_signal = now
                push(sender, job, progress_reply(request.request_id, stage, done))

        try:
            header, frames = self.runner.run(job, report)
            push(sender, job, header, *frames)
        finally:
            self.scheduler.finish(job)
            job.payload.clear()


def push(sender: zmq.Socket, job: Job, header: dict, *frames: Any) -> None:
    """A message for the job's client, to the front thread."""
    envelope = job.envelope
    sender.send_multipart(
        [str(len(envelope)).encode(), *envelope, encode_header(header), *frames], copy=False
    )
