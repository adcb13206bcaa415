"""The colorization daemon's front: transport only — the ZeroMQ ROUTER socket and its loop.

The front thread parses and validates (cheap), answers `hello`, `models` and `cancel`
itself, queues jobs for the workers (daemon.worker), sends the heartbeats owed to waiting
clients, and delivers what workers hand back through an inproc PULL socket; so it stays
responsive while workers run the pipeline. Nothing a client sends can stop the loop: every
message gets a reply or is dropped by the guards, and every failure of one request is
logged and answered.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import zmq

from colorize_backend import __version__
from colorize_backend.core import compiled
from colorize_backend.core.errors import ColorizeError, ErrorCode
from colorize_backend.core.pipeline import Colorizer
from colorize_backend.daemon import memory, shm
from colorize_backend.daemon.guard import Guard
from colorize_backend.daemon.lifecycle import IdleTimer
from colorize_backend.daemon.protocol import (
    DEFAULT_ENDPOINT,
    PROTOCOL_VERSION,
    Identity,
    Limits,
    Operation,
    cancel_reply,
    decode_header,
    encode_header,
    error_reply,
    expect_no_frames,
    hello_reply,
    lease_reply,
    models_reply,
    parse_cancel,
    parse_colorize,
    parse_lease,
    parse_release,
    progress_reply,
    release_reply,
    request_id_of,
)
from colorize_backend.daemon.scheduler import Job, Scheduler
from colorize_backend.daemon.stuck import retry_message, thread_stacks
from colorize_backend.daemon.worker import JobRunner, Workers

LOG = logging.getLogger("colorize.daemon")
TRIM_AFTER_S = 1.0


@dataclass
class DaemonConfig:
    endpoint: str = DEFAULT_ENDPOINT
    workers: int = 1
    limits: Limits = field(default_factory=Limits)
    # A zmq certificate (see `colorize-backend keys`); clients are admitted when their public
    # certificate (*.key) lies in the same folder.
    curve_secret_key: Path | None = None
    idle_timeout_s: float = 0.0  # exit after so long without requests (0 = never)
    max_connections: int = 256
    memory_budget: int = 1 << 30  # bytes the guard tolerates outside jobs
    stall_s: float = 5.0  # a connection holding a message this long unfinished is a suspect
    handshake_s: float = 5.0  # a connection must finish its handshake within this
    progress_after_s: float = 0.3  # stage messages only for jobs slower than this
    # A job this long in one stage is stuck (12 MP takes 0.1 s end to end): give up, exit.
    stage_timeout_s: float = 300.0


def is_loopback(endpoint: str) -> bool:
    """True for tcp endpoints on 127.0.0.0/8, ::1 or localhost, and for ipc/inproc."""
    parts = urlsplit(endpoint)
    if parts.scheme in ("ipc", "inproc"):
        return True
    host = (parts.hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def remove_socket_file(endpoint: str) -> None:
    """An ipc:// endpoint leaves its socket file behind when the socket closes: remove it."""
    if endpoint.startswith("ipc://") and not endpoint.startswith("ipc://@"):  # @: abstract
        Path(endpoint[len("ipc://") :]).unlink(missing_ok=True)


def split_envelope(frames: list) -> tuple[list, list]:
    """ROUTER frames → (routing envelope incl. empty delimiter if any, message body)."""
    if len(frames) > 1 and len(frames[1]) == 0:
        return frames[:2], frames[2:]
    return frames[:1], frames[1:]


class Daemon:
    """Serve colorize requests until stop() is called (or the idle timeout passes)."""

    def __init__(self, colorizer: Colorizer, config: DaemonConfig):
        if not is_loopback(config.endpoint) and config.curve_secret_key is None:
            raise ValueError(
                f"refusing to bind {config.endpoint}: it is not a loopback address and no CURVE "
                "key was given. Run `colorize-backend keys DIR` and pass --curve-secret-key "
                "DIR/server.key_secret to serve other machines securely."
            )
        self.colorizer = colorizer
        self.config = config
        self.context: zmq.Context = zmq.Context.instance()
        self.scheduler = Scheduler(config.limits)
        # shared buffers for two of the largest requests (pixels and result) at a time
        self.pool = (
            shm.BufferPool(4 * config.limits.max_frame_bytes)
            if is_loopback(config.endpoint) and shm.available()
            else None
        )
        self.identity = Identity(__version__, sys.prefix, uuid.uuid4().hex, os.getpid())
        self.replies_endpoint = f"inproc://colorize-replies-{self.identity.instance}"
        self.workers = Workers(
            JobRunner(colorizer, self.pool),
            self.scheduler,
            self.context,
            self.replies_endpoint,
            config.progress_after_s,
        )
        self.listing = self._model_listing()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._startup_error: Exception | None = None
        self.gave_up = False  # a stuck job ended the loop (daemon.stuck)
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------ lifetime

    def start(self) -> None:
        """Run the front loop and workers on background threads (for tests and embedding)."""
        thread = threading.Thread(target=self._serve_in_thread, name="colorize-front", daemon=True)
        thread.start()
        self._threads.append(thread)
        if not self._ready.wait(10) or self._startup_error:
            raise RuntimeError(f"daemon did not start: {self._startup_error or 'timeout'}")

    def _serve_in_thread(self) -> None:
        try:
            self.serve_forever()
        except Exception as exc:
            self._startup_error = exc
            self._ready.set()
            raise

    def request_stop(self) -> None:
        """Finish the current loop turn and stop (safe from a signal handler)."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _bind_front(self) -> tuple[zmq.Socket, Any]:
        front = self.context.socket(zmq.ROUTER)
        front.setsockopt(zmq.LINGER, 0)
        front.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a vanished client is noticed on send
        # No frame may exceed the largest valid one: ZeroMQ drops such a peer before buffering.
        front.setsockopt(zmq.MAXMSGSIZE, self.config.limits.max_frame_bytes)
        front.setsockopt(zmq.HANDSHAKE_IVL, int(self.config.handshake_s * 1000))
        authenticator = None
        if self.config.curve_secret_key:
            from colorize_backend.daemon.security import secure

            authenticator = secure(front, self.context, self.config.curve_secret_key)
        front.bind(self.config.endpoint)
        return front, authenticator

    def serve_forever(self) -> None:
        compiled.not_needed()  # until the warm-up below has loaded them: the numpy path
        front, authenticator = self._bind_front()
        guard = Guard(
            front, self.config.max_connections, self.config.memory_budget, self.config.stall_s
        )
        replies = self.context.socket(zmq.PULL)
        replies.bind(self.replies_endpoint)
        self.workers.start(self.config.workers)
        # Answering hello already; warm up behind it: the default model, then the kernels.
        warming = threading.Thread(target=self._warm_up, name="colorize-warm", daemon=True)
        warming.start()
        LOG.info(
            "serving on %s (protocol v%d, pid %d, %d worker(s), queue %d, providers %s)",
            self.config.endpoint,
            PROTOCOL_VERSION,
            self.identity.pid,
            self.config.workers,
            self.config.limits.queue_size,
            ",".join(self.colorizer.engine.providers),
        )
        try:
            self._loop(front, replies, guard)
        finally:
            self.scheduler.close()
            if self.gave_up:  # a stuck thread never ends: no waiting; the replies go out first
                front.setsockopt(zmq.LINGER, 2000)
            else:
                self.workers.join(30)
                warming.join(60)  # exiting while a compiler runs on it would abort the process
                self.colorizer.engine.wait_for_upgrades(60)
            guard.close()
            if self.pool is not None:
                self.pool.close()
            front.close()
            remove_socket_file(self.config.endpoint)
            replies.close()
            if authenticator is not None:
                authenticator.stop()

    def _loop(self, front: zmq.Socket, replies: zmq.Socket, guard: Guard) -> None:
        poller = zmq.Poller()
        poller.register(front, zmq.POLLIN)
        poller.register(replies, zmq.POLLIN)
        guard.watch(poller)
        idle = IdleTimer(self.config.idle_timeout_s)
        self._ready.set()
        while not self._stop.is_set():
            for sock, _ in poller.poll(100):
                try:
                    if sock is front:
                        idle.touch()
                        self._receive(front, guard)
                    elif sock is replies:
                        self._deliver_from_worker(front, replies.recv_multipart(copy=False))
                    else:
                        self._send_heartbeats(front, guard.on_monitor_event())
                except Exception:  # one bad message or vanished peer must not stop serving
                    LOG.exception("error while handling a message; still serving")
            self._send_heartbeats(front)
            self._send_heartbeats(front, guard.suspects_to_probe(time.monotonic()))
            explained = self.scheduler.job_bytes() + (self.pool.held_bytes() if self.pool else 0)
            guard.tick(explained, self.scheduler.peers())
            if self.pool is not None:
                self.pool.trim()
            self._trim_when_idle(guard)
            if idle.expired(self.scheduler.active()):
                LOG.info("idle for %.0f s: exiting", self.config.idle_timeout_s)
                break
            stuck = self.scheduler.overdue(time.monotonic(), self.config.stage_timeout_s)
            if stuck is not None:
                self._give_up(front, stuck)
                break

    def _give_up(self, front: zmq.Socket, stuck: Job) -> None:
        """Answer every job with a request to retry, and log every thread's stack."""
        bound = self.config.stage_timeout_s
        LOG.error(
            "request %s has been in its %r stage for more than %.0f s: its worker is stuck. "
            "Answering every client and exiting, so that a fresh daemon serves the next "
            "request. Every thread's stack:\n%s",
            stuck.request.request_id,
            stuck.stage,
            bound,
            thread_stacks(),
        )
        message = retry_message(stuck.stage, bound)
        for job in self.scheduler.abandon():
            reply = error_reply(ErrorCode.INTERNAL, message, job.request.request_id,
                                Operation.COLORIZE)  # fmt: skip
            self._send(front, job.envelope, reply)
        self.gave_up = True

    # ------------------------------------------------------------ front thread

    def _receive(self, front: zmq.Socket, guard: Guard) -> None:
        # Zero-copy: pixel frames stay in ZeroMQ's buffers and are read through memoryviews.
        envelope, body = split_envelope(front.recv_multipart(copy=False))
        if body:
            guard.on_message(body[-1], bytes(envelope[0]))
        header: Any = None
        try:
            if not body:
                raise ColorizeError(ErrorCode.BAD_FRAMES, "message has no header frame")
            header = decode_header(body[0].bytes)
            self._dispatch(front, envelope, header, [frame.buffer for frame in body[1:]])
        except ColorizeError as exc:
            request_id = request_id_of(header)
            LOG.warning("refused request %s: %s: %s", request_id, exc.code, exc.message)
            operation = header.get("op") if isinstance(header, dict) else None
            self._send(front, envelope, error_reply(exc.code, exc.message, request_id, operation))

    def _dispatch(self, front: zmq.Socket, envelope: list, header: dict, payload: list) -> None:
        operation = Operation(header["op"])
        if operation is Operation.COLORIZE:
            request = parse_colorize(header, payload, self.config.limits.max_pixels)
            self.scheduler.submit(Job(envelope, request, payload))
            return
        if operation in (Operation.LEASE, Operation.RELEASE):
            self._send(front, envelope, self._lease_or_release(operation, header, payload))
            return
        if operation is Operation.CANCEL:
            request_id = parse_cancel(header, payload)
            job = self.scheduler.cancel(bytes(envelope[0]), request_id)
            if job is not None and not job.running:
                self._answer_cancelled(front, job)
            self._send(front, envelope, cancel_reply(request_id, job is not None))
            return
        expect_no_frames(payload, operation)
        reply = self.hello() if operation is Operation.HELLO else self.models()
        self._send(front, envelope, reply)

    def _lease_or_release(self, operation: Operation, header: dict, payload: list) -> dict:
        if self.pool is None:
            raise ColorizeError(ErrorCode.BAD_REQUEST, "this daemon offers no shared buffers")
        request_id = request_id_of(header)
        if operation is Operation.LEASE:
            buffer = self.pool.lease(parse_lease(header, payload))
            return lease_reply(buffer.name, buffer.size, buffer.path, request_id)
        return release_reply(self.pool.release(parse_release(header, payload)), request_id)

    def _answer_cancelled(self, front: zmq.Socket, job: Job) -> None:
        request_id = job.request.request_id
        LOG.info("request %s cancelled", request_id)
        reply = error_reply(ErrorCode.CANCELLED, "cancelled", request_id, Operation.COLORIZE)
        self._send(front, job.envelope, reply)

    def _send(self, front: zmq.Socket, envelope: list, header: dict, *frames: Any) -> bool:
        """Send a reply of the front's own to a client; False when it is gone."""
        return self._deliver(front, envelope, [encode_header(header), *frames])

    def _deliver(self, front: zmq.Socket, envelope: list, body: list) -> bool:
        """Send a message to a client; False (and its jobs cancelled) when it is gone."""
        try:
            front.send_multipart([*envelope, *body], copy=False, flags=zmq.NOBLOCK)
            return True
        except zmq.ZMQError as exc:
            if exc.errno not in (zmq.EHOSTUNREACH, zmq.EAGAIN):
                raise
            for job in self.scheduler.peer_gone(bytes(envelope[0])):
                LOG.info("client of request %s is gone: job cancelled", job.request.request_id)
            return False

    def _deliver_from_worker(self, front: zmq.Socket, frames: list) -> None:
        """A worker's message: [envelope size][envelope...][header][frames...]."""
        count = int(frames[0].bytes)
        self._deliver(front, frames[1 : 1 + count], frames[1 + count :])

    def _trim_when_idle(self, guard: Guard) -> None:
        """Hand freed memory back once no job has run for TRIM_AFTER_S (see memory.py); what
        the allocator keeps after that is the jobs' doing, and the guard is told so."""
        ended = self.workers.last_job_ended
        if ended and time.monotonic() - ended > TRIM_AFTER_S and not self.scheduler.active():
            memory.trim()
            guard.after_jobs()
            self.workers.last_job_ended = 0.0

    def _send_heartbeats(self, front: zmq.Socket, peers: set[bytes] | None = None) -> None:
        """The heartbeats that are due; with peers (whose connection just closed), one to
        each of them now: ZeroMQ refuses to route to a client that is gone, and its jobs are
        cancelled, while a client that reconnected just gets one more sign of life."""
        if peers is not None and not peers:
            return
        for job, position in self.scheduler.heartbeats(time.monotonic(), peers):
            header = progress_reply(job.request.request_id, job.stage, job.done, position)
            self._send(front, job.envelope, header)

    def hello(self) -> dict[str, Any]:
        manifest = self.colorizer.manifest
        return hello_reply(
            self.identity,
            self.config.limits,
            sorted(model["name"] for model in self.listing),
            manifest.default,
            self.colorizer.engine.providers,
            self.pool is not None,
        )

    def _warm_up(self) -> None:
        """Load the default model and run it once, then the compiled kernels, so that the
        first photo waits for neither."""
        try:
            self.colorizer.warm_up()
        except Exception:  # a broken model is reported when a request needs it
            LOG.exception("warming up the default model failed")
        compiled.load()

    def _model_listing(self) -> list[dict[str, Any]]:
        """The models clients may name (the manifest's and the user's own), as the wire lists
        them: no server paths."""
        manifest = self.colorizer.manifest
        entries, problems = manifest.catalogue(self.colorizer.model_dirs)
        for problem in problems:
            LOG.warning("%s", problem)
        return [{k: v for k, v in manifest.describe(e).items() if k != "path"} for e in entries]

    def models(self) -> dict[str, Any]:
        return models_reply(self.listing, self.colorizer.manifest.default)
