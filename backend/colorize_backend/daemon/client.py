"""A Python 3 client of the daemon, for `doctor`, `bench` and the tests.

It speaks through the protocol module's own request builders and reply parser, so it
cannot drift from the daemon. `colorize` runs on a DEALER socket and asks for progress,
so that a daemon that dies mid-request is noticed within `heartbeat_timeout_s` (the
daemon signs of life every second). (The GIMP plug-in has its own stdlib + pyzmq client
that also runs under Python 2.7; a test holds it to the same protocol.)
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zmq
import zmq.auth

from colorize_backend.core.errors import ColorizeError, ErrorCode
from colorize_backend.core.options import ColorizeOptions
from colorize_backend.daemon.protocol import (
    DEFAULT_ENDPOINT,
    ImageSpec,
    Operation,
    PixelFormat,
    SampleType,
    cancel_request,
    colorize_request,
    hello_request,
    models_request,
    parse_reply,
)

_REQUEST_NUMBERS = itertools.count(1)


@dataclass(frozen=True)
class CurveKeys:
    """CURVE: the server's public key (z85) and this client's certificate file (secret part)."""

    server_public: bytes
    client_certificate: Path | None = None


class DaemonClient:
    """Talks to one daemon; every wait is bounded."""

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        timeout_s: float = 300.0,
        curve: CurveKeys | None = None,
        heartbeat_timeout_s: float = 5.0,
    ):
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.curve = curve
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.context: zmq.Context = zmq.Context.instance()

    def _socket(self, kind: int, timeout_s: float) -> zmq.Socket:
        sock = self.context.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, int(timeout_s * 1000))
        sock.setsockopt(zmq.SNDTIMEO, int(timeout_s * 1000))
        if self.curve is not None:
            if self.curve.client_certificate is not None:
                public, secret = zmq.auth.load_certificate(str(self.curve.client_certificate))
            else:
                public, secret = zmq.curve_keypair()
            sock.curve_publickey, sock.curve_secretkey = public, secret
            sock.curve_serverkey = self.curve.server_public
        sock.connect(self.endpoint)
        return sock

    def call(self, frames: list, timeout_s: float | None = None) -> list[bytes]:
        """Send any frames on a fresh REQ socket, return the reply's frames (one reply)."""
        timeout = timeout_s or self.timeout_s
        sock = self._socket(zmq.REQ, timeout)
        try:
            sock.send_multipart(frames, copy=False)
            return sock.recv_multipart()
        except zmq.Again:
            raise ColorizeError(
                ErrorCode.UNREACHABLE, f"no reply from {self.endpoint} within {timeout:.1f} s"
            ) from None
        finally:
            sock.close()

    def hello(self, timeout_s: float | None = None) -> dict[str, Any]:
        return parse_reply(self.call(hello_request(), timeout_s))[0]

    def models(self) -> dict[str, Any]:
        return parse_reply(self.call(models_request()))[0]

    def colorize(
        self,
        pixels: np.ndarray,
        options: ColorizeOptions = ColorizeOptions(),
        reference: np.ndarray | None = None,
        offsets: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0)),
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> tuple[dict[str, Any], np.ndarray]:
        """Colorize an [H, W, C] array (u8, u16 or float32); returns the reply header and the
        result array. on_progress sees each progress message; if it raises, the job is
        cancelled on the daemon and the exception passes on."""
        image = _spec(pixels, offsets[0])
        ref = None if reference is None else (_spec(reference, offsets[1]), _bytes(reference))
        request_id = f"py{os.getpid()}.{next(_REQUEST_NUMBERS)}"
        frames = colorize_request(request_id, image, _bytes(pixels), options, ref, progress=True)
        sock = self._socket(zmq.DEALER, self.timeout_s)
        try:
            sock.send_multipart([b"", *frames], copy=False)
            header, result = self._await_result(sock, request_id, on_progress)
        finally:
            sock.close()
        sample = SampleType(header["sample"])
        shape = (header["height"], header["width"], PixelFormat(header["format"]).channels)
        return header, np.frombuffer(result[0], np.dtype(sample.numpy)).reshape(shape)

    def _await_result(self, sock: zmq.Socket, request_id: str, on_progress) -> tuple:
        deadline = time.monotonic() + self.timeout_s
        while True:
            wait = min(self.heartbeat_timeout_s, deadline - time.monotonic())
            if wait <= 0 or not sock.poll(int(wait * 1000)):
                raise ColorizeError(
                    ErrorCode.UNREACHABLE,
                    f"the daemon at {self.endpoint} stopped answering "
                    f"(no sign of life for {self.heartbeat_timeout_s:.0f} s)"
                    if wait > 0
                    else f"no result from {self.endpoint} within {self.timeout_s:.0f} s",
                )
            frames = sock.recv_multipart()[1:]  # after the empty delimiter
            header, rest = parse_reply(frames)
            if header.get("id") != request_id:
                continue
            if header.get("op") == Operation.PROGRESS:
                if on_progress is not None:
                    try:
                        on_progress(header)
                    except BaseException:
                        sock.send_multipart([b"", *cancel_request(request_id)])
                        raise
                continue
            return header, rest


def _spec(pixels: np.ndarray, offset: tuple[int, int]) -> ImageSpec:
    return ImageSpec(
        pixels.shape[1],
        pixels.shape[0],
        PixelFormat.of_channels(pixels.shape[2]),
        offset,
        SampleType.of_numpy(pixels.dtype),
    )


def _bytes(pixels: np.ndarray) -> memoryview:
    dtype = np.dtype(SampleType.of_numpy(pixels.dtype).numpy)
    return np.ascontiguousarray(pixels, dtype=dtype).data.cast("B")
