"""The colorization daemon: a ZeroMQ ROUTER front, a bounded queue, worker threads.

The front thread only parses and validates (cheap) and answers `hello` and
`models` itself, so it stays responsive while workers run the network. Workers
hand replies back through an inproc PULL socket because ZeroMQ sockets must not
be shared between threads. Nothing a client sends can stop the loop.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from colorize_backend import __version__
from colorize_backend.errors import ColorizeError, ErrorCode
from colorize_backend.pipeline import Colorizer
from colorize_backend.protocol import (
    DEFAULT_ENDPOINT,
    DEFAULT_MAX_PIXELS,
    MAX_HEADER_BYTES,
    PROTOCOL_VERSION,
    ColorizeRequest,
    ImageSpec,
    Operation,
    colorize_reply,
    decode_header,
    encode_header,
    error_reply,
    hello_reply,
    models_reply,
    parse_colorize,
)
from colorize_backend.reference import Reference

LOG = logging.getLogger("colorize.daemon")
REPLIES = "inproc://colorize-replies"


@dataclass
class DaemonConfig:
    endpoint: str = DEFAULT_ENDPOINT
    workers: int = 1
    queue_size: int = 8
    max_pixels: int = DEFAULT_MAX_PIXELS
    # A zmq certificate (see `colorize-backend keys`); clients are admitted when their public
    # certificate (*.key) lies in the same folder.
    curve_secret_key: Path | None = None


@dataclass
class Job:
    envelope: list[zmq.Frame]
    header: dict[str, Any]
    request: ColorizeRequest
    payload: list[memoryview]
    received: float


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


def as_array(frame: bytes | memoryview, spec: ImageSpec) -> np.ndarray:
    """A validated pixel frame as a read-only [H, W, C] u8 view (no copy)."""
    return np.frombuffer(frame, dtype=np.uint8).reshape(spec.height, spec.width, spec.channels)


def split_envelope(frames: list) -> tuple[list, list]:
    """ROUTER frames → (routing envelope incl. empty delimiter if any, message body)."""
    if len(frames) > 1 and len(frames[1]) == 0:
        return frames[:2], frames[2:]
    return frames[:1], frames[1:]


class Daemon:
    """Serve colorize requests until stop() is called."""

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
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=config.queue_size)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._startup_error: Exception | None = None
        self._authenticator: ThreadAuthenticator | None = None
        self._threads: list[threading.Thread] = []

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

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _bind_front(self) -> zmq.Socket:
        front = self.context.socket(zmq.ROUTER)
        front.setsockopt(zmq.LINGER, 0)
        front.setsockopt(zmq.ROUTER_MANDATORY, 0)
        # No frame may exceed the largest valid one: ZeroMQ drops such a peer before buffering it.
        front.setsockopt(zmq.MAXMSGSIZE, max(self.config.max_pixels * 4, MAX_HEADER_BYTES))
        if self.config.curve_secret_key:
            public, secret = zmq.auth.load_certificate(str(self.config.curve_secret_key))
            if secret is None:
                raise ValueError(f"{self.config.curve_secret_key} holds no secret key")
            front.curve_secretkey = secret
            front.curve_publickey = public
            front.curve_server = True
            self._authenticator = ThreadAuthenticator(self.context)
            self._authenticator.start()
            clients = Path(self.config.curve_secret_key).parent
            self._authenticator.configure_curve(domain="*", location=str(clients))
            LOG.info("CURVE on: admitting client certificates in %s", clients)
        front.bind(self.config.endpoint)
        return front

    def serve_forever(self) -> None:
        front = self._bind_front()
        replies = self.context.socket(zmq.PULL)
        replies.bind(REPLIES + f"-{id(self)}")
        workers = [
            threading.Thread(target=self._work, name=f"colorize-worker-{i}", daemon=True)
            for i in range(self.config.workers)
        ]
        for worker in workers:
            worker.start()
        LOG.info(
            "serving on %s (protocol v%d, %d worker(s), queue %d, providers %s)",
            self.config.endpoint,
            PROTOCOL_VERSION,
            self.config.workers,
            self.config.queue_size,
            ",".join(self.colorizer.engine.providers),
        )
        poller = zmq.Poller()
        poller.register(front, zmq.POLLIN)
        poller.register(replies, zmq.POLLIN)
        self._ready.set()
        try:
            while not self._stop.is_set():
                for sock, _ in poller.poll(200):
                    try:
                        if sock is front:
                            self._receive(front)
                        else:
                            front.send_multipart(replies.recv_multipart(copy=False), copy=False)
                    except Exception:  # one bad message or vanished peer must not stop serving
                        LOG.exception("error while handling a message; still serving")
        finally:
            for _ in workers:
                self.jobs.put(None)
            for worker in workers:
                worker.join(30)
            front.close()
            replies.close()
            if self._authenticator is not None:
                self._authenticator.stop()

    def _receive(self, front: zmq.Socket) -> None:
        # Zero-copy: pixel frames stay in ZeroMQ's buffers and are read through memoryviews.
        envelope, body = split_envelope(front.recv_multipart(copy=False))
        request_id = None
        try:
            if not body:
                raise ColorizeError(ErrorCode.BAD_FRAMES, "message has no header frame")
            header = decode_header(body[0].bytes)
            request_id = header.get("id")
            op = header["op"]
            if op == Operation.HELLO:
                self._reply(front, envelope, self.hello(request_id))
            elif op == Operation.MODELS:
                self._reply(front, envelope, self.models(request_id))
            else:
                payload = [frame.buffer for frame in body[1:]]
                request = parse_colorize(header, payload, self.config.max_pixels)
                job = Job(envelope, header, request, payload, time.perf_counter())
                try:
                    self.jobs.put_nowait(job)
                except queue.Full:
                    raise ColorizeError(
                        ErrorCode.BUSY,
                        f"queue full ({self.config.queue_size} waiting); retry shortly",
                    ) from None
        except ColorizeError as exc:
            LOG.warning("refused request %s: %s: %s", request_id, exc.code, exc.message)
            self._reply(front, envelope, error_reply(exc.code, exc.message, request_id))

    @staticmethod
    def _reply(sock: zmq.Socket, envelope: list[bytes], header: dict, *frames: bytes) -> None:
        sock.send_multipart([*envelope, encode_header(header), *frames], copy=False)

    def hello(self, request_id: Any = None) -> dict[str, Any]:
        manifest = self.colorizer.manifest
        return hello_reply(
            request_id,
            __version__,
            sorted(manifest.entries),
            manifest.default,
            self.colorizer.engine.providers,
            self.config.max_pixels,
            os.getpid(),
        )

    def models(self, request_id: Any = None) -> dict[str, Any]:
        listed = [
            {
                "name": e.name,
                "kind": e.kind.value,
                "input_size": e.input_size,
                "description": e.description,
            }
            for e in self.colorizer.manifest.entries.values()
        ]
        return models_reply(request_id, listed, self.colorizer.manifest.default)

    def _work(self) -> None:
        sender = self.context.socket(zmq.PUSH)
        sender.connect(REPLIES + f"-{id(self)}")
        try:
            while (job := self.jobs.get()) is not None:
                header, frames = self._run(job)
                sender.send_multipart([*job.envelope, encode_header(header), *frames], copy=False)
        finally:
            sender.close()

    def _run(self, job: Job) -> tuple[dict[str, Any], list]:
        request = job.request
        spec = request.image
        request_id = job.header.get("id")
        waited = time.perf_counter() - job.received
        try:
            pixels = as_array(job.payload[0], spec)
            reference = None
            if request.reference is not None:
                ref = request.reference
                reference = Reference(
                    as_array(job.payload[1], ref),
                    request.reference_mode,
                    (ref.offset[0] - spec.offset[0], ref.offset[1] - spec.offset[1]),
                )
            result = self.colorizer.colorize(pixels, request.model, request.strength, reference)
        except ColorizeError as exc:
            LOG.warning("request %s failed: %s", request_id, exc)
            return error_reply(exc.code, exc.message, request_id), []
        except Exception as exc:  # the daemon must outlive any failure of one request
            LOG.exception("request %s crashed", request_id)
            return error_reply(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}", request_id), []
        timings = {"queue": round(waited, 4), **result.timings.stages}
        LOG.info(
            "request %s: %dx%d %s model=%s provider=%s %s",
            request_id,
            spec.width,
            spec.height,
            spec.format.value,
            result.model,
            result.provider,
            " ".join(f"{k}={v * 1000:.0f}ms" for k, v in timings.items()),
        )
        header = colorize_reply(request_id, spec, result.model, result.provider, timings)
        return header, [result.pixels]  # sent zero-copy from the array
