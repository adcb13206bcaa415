"""The daemon's jobs: a bounded, fair queue, cancellation, and which clients are owed a heartbeat.

Admission is fair: the queue holds at most `queue_size` jobs (whose pixel frames together
stay within `queue_bytes`) and at most
`max_queued_per_client` from any one client, and workers take jobs round-robin across
clients, so one busy client cannot lock the others out; a refused client is told
`busy` and retries. A job is cancelled when its client asks, or when its client is
gone (the daemon could not deliver a heartbeat); a running job stops at its next stage.
A running job that stays in one stage far longer than any real one takes is stuck
(`overdue`): its worker cannot be interrupted, so the front gives every job up (`abandon`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from colorize_backend.core.contract import network_pixels, working_side
from colorize_backend.core.errors import ColorizeError, ErrorCode
from colorize_backend.daemon.protocol import ColorizeRequest, Limits

# What a job may hold beyond its frames (for the guard's accounting): the full-resolution stages
# per image pixel, and the network's activations per pixel of its input (a 2048² input of the
# shipped model peaked at about 3.4 GB); models are assumed to work at up to 512 px.
WORKING_BYTES_PER_PIXEL = 24
NETWORK_BYTES_PER_PIXEL = 1000
ASSUMED_MODEL_SIDE = 512


class Cancelled(Exception):
    """Raised inside a running job when its client cancelled it or went away."""


@dataclass
class Job:
    envelope: list  # routing frames of the client, sent back before every reply
    request: ColorizeRequest
    payload: list[memoryview]
    received: float = field(default_factory=time.monotonic)
    running: bool = False
    stage: str = "queued"
    done: float = 0.0
    last_signal: float = field(default_factory=time.monotonic)
    stage_since: float = field(default_factory=time.monotonic)  # when its stage began
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def peer(self) -> bytes:
        return bytes(self.envelope[0])

    @property
    def key(self) -> tuple[bytes, str]:
        return self.peer, self.request.request_id

    def working_bytes(self) -> int:
        """What this job may hold: its frames, the full-resolution stages and the network."""
        image, options = self.request.image, self.request.options
        side = working_side(options.detail_size, ASSUMED_MODEL_SIDE, image.width, image.height)
        network = network_pixels(side, image.width, image.height) * NETWORK_BYTES_PER_PIXEL
        frames = sum(len(p) for p in self.payload)
        return frames + image.pixels * WORKING_BYTES_PER_PIXEL + network

    def report(self, stage: str, done: float) -> None:
        """Called by the pipeline between stages: record progress, stop if cancelled."""
        if self.cancelled.is_set():
            raise Cancelled(self.request.request_id)
        if stage != self.stage:
            self.stage_since = time.monotonic()
        self.stage, self.done = stage, done


class Scheduler:
    """Queued and running jobs; safe to use from the front thread and the workers."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self._queues: OrderedDict[bytes, deque[Job]] = OrderedDict()  # per peer, in turn order
        self._jobs: dict[tuple[bytes, str], Job] = {}
        self._ended: dict[bytes, float] = {}  # when each client's last job ended
        self._ready = threading.Condition()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def queued(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def active(self) -> int:
        with self._ready:
            return len(self._jobs)

    def job_bytes(self) -> int:
        """Memory the jobs account for: their pixel frames and the pipeline's working set."""
        with self._ready:
            return sum(job.working_bytes() for job in self._jobs.values())

    def peers(self, grace_s: float = 5.0) -> set[bytes]:
        """The clients waiting for a reply: with a job queued or running, or one that ended
        less than grace_s ago (its reply may still be on its way to the client)."""
        now = time.monotonic()
        with self._ready:
            self._ended = {p: t for p, t in self._ended.items() if now - t < grace_s}
            return {peer for peer, _ in self._jobs} | set(self._ended)

    def submit(self, job: Job) -> None:
        """Queue a job or refuse it (busy, or a duplicate id of the same client)."""
        with self._ready:
            if job.key in self._jobs:
                raise ColorizeError(
                    ErrorCode.BAD_HEADER, "a job with this id is already queued or running"
                )
            mine = self._queues.get(job.peer, deque())
            if self.queued() >= self.limits.queue_size:
                raise ColorizeError(
                    ErrorCode.BUSY, f"queue full ({self.limits.queue_size} waiting); retry shortly"
                )
            held = sum(len(p) for q in self._queues.values() for j in q for p in j.payload)
            if held and held + sum(len(p) for p in job.payload) > self.limits.queue_bytes:
                raise ColorizeError(
                    ErrorCode.BUSY,
                    f"the waiting requests hold {held >> 20} MB of pixels; retry shortly",
                )
            if len(mine) >= self.limits.max_queued_per_client:
                raise ColorizeError(
                    ErrorCode.BUSY,
                    f"{len(mine)} of your requests are already waiting; retry when one is done",
                )
            mine.append(job)
            self._queues[job.peer] = mine
            self._jobs[job.key] = job
            self._ready.notify()

    def next_job(self, timeout: float = 0.5) -> Job | None:
        """The next job, taking clients in turn; None when there is none or on close."""
        with self._ready:
            if not self._queues and not self._closed:
                self._ready.wait(timeout)
            if self._closed or not self._queues:
                return None
            peer, mine = next(iter(self._queues.items()))
            job = mine.popleft()
            del self._queues[peer]
            if mine:
                self._queues[peer] = mine  # back of the line: the next client goes first
            job.running = True
            job.stage, job.done = "starting", 0.0
            job.stage_since = time.monotonic()
            return job

    def finish(self, job: Job) -> None:
        with self._ready:
            self._jobs.pop(job.key, None)
            self._ended[job.peer] = time.monotonic()

    def cancel(self, peer: bytes, request_id: str) -> Job | None:
        """Cancel a client's job; returns it if it existed. A queued job is dropped here (the
        caller answers it); a running one stops at its next stage (its worker answers)."""
        with self._ready:
            job = self._jobs.get((peer, request_id))
            if job is None:
                return None
            job.cancelled.set()
            if not job.running:
                self._queues[peer].remove(job)
                if not self._queues[peer]:
                    del self._queues[peer]
                del self._jobs[job.key]
            return job

    def peer_gone(self, peer: bytes) -> list[Job]:
        """Cancel every job of a client that can no longer be reached."""
        with self._ready:
            ids = [rid for p, rid in self._jobs if p == peer]
        return [job for rid in ids if (job := self.cancel(peer, rid)) is not None]

    def heartbeats(
        self, now: float, peers: set[bytes] | None = None
    ) -> list[tuple[Job, int | None]]:
        """The jobs owed a sign of life, with their place in the queue (None: running): those
        of clients that asked for progress and heard nothing lately (or, with peers, those
        clients' at once: to learn whether they are still there)."""
        owed = []
        with self._ready:
            positions = {
                id(job): index
                for index, job in enumerate(j for q in self._queues.values() for j in q)
            }
            for job in self._jobs.values():
                due = now - job.last_signal >= self.limits.heartbeat_s
                if job.request.progress and (job.peer in peers if peers else due):
                    job.last_signal = now
                    owed.append((job, positions.get(id(job))))
        return owed

    def overdue(self, now: float, bound_s: float) -> Job | None:
        """A running job that has been in its stage for longer than bound_s, if any."""
        with self._ready:
            return next(
                (j for j in self._jobs.values() if j.running and now - j.stage_since > bound_s),
                None,
            )

    def abandon(self) -> list[Job]:
        """Close, and hand back every job, queued or running, for the caller to answer."""
        with self._ready:
            jobs = list(self._jobs.values())
            self._jobs.clear()
            self._queues.clear()
            self._closed = True
            self._ready.notify_all()
        return jobs

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()
