"""A Python 3 client of the daemon, for `doctor`, `bench` and the tests.

It speaks through the protocol module's own request builders and reply parser, so
it cannot drift from the daemon. (The GIMP plug-in has its own stdlib + pyzmq client
that also runs under Python 2.7; a test holds it to the same protocol.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zmq
import zmq.auth

from colorize_backend.errors import ColorizeError, ErrorCode
from colorize_backend.protocol import (
    DEFAULT_ENDPOINT,
    ImageSpec,
    PixelFormat,
    colorize_request,
    hello_request,
    models_request,
    parse_reply,
)
from colorize_backend.reference import ReferenceMode


@dataclass(frozen=True)
class CurveKeys:
    """CURVE: the server's public key (z85) and this client's certificate file (secret part)."""

    server_public: bytes
    client_certificate: Path | None = None


class DaemonClient:
    """Request/reply over a fresh REQ socket per call; every wait is bounded by timeout_s."""

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        timeout_s: float = 300.0,
        curve: CurveKeys | None = None,
    ):
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.curve = curve
        self.context: zmq.Context = zmq.Context.instance()

    def call(self, frames: list, timeout_s: float | None = None) -> list[bytes]:
        """Send frames, return the reply's frames; ColorizeError(INTERNAL) on a timeout."""
        timeout_ms = int((timeout_s or self.timeout_s) * 1000)
        sock = self.context.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
        sock.setsockopt(zmq.SNDTIMEO, timeout_ms)
        if self.curve is not None:
            self._secure(sock, self.curve)
        sock.connect(self.endpoint)
        try:
            sock.send_multipart(frames, copy=False)
            return sock.recv_multipart()
        except zmq.Again:
            raise ColorizeError(
                ErrorCode.INTERNAL, f"no reply from {self.endpoint} within {timeout_ms} ms"
            ) from None
        finally:
            sock.close()

    @staticmethod
    def _secure(sock: zmq.Socket, curve: CurveKeys) -> None:
        if curve.client_certificate is not None:
            public, secret = zmq.auth.load_certificate(str(curve.client_certificate))
        else:
            public, secret = zmq.curve_keypair()
        sock.curve_publickey, sock.curve_secretkey = public, secret
        sock.curve_serverkey = curve.server_public

    def hello(self, timeout_s: float | None = None) -> dict[str, Any]:
        return parse_reply(self.call(hello_request(), timeout_s))[0]

    def models(self) -> dict[str, Any]:
        return parse_reply(self.call(models_request()))[0]

    def colorize(
        self,
        pixels: np.ndarray,
        model: str | None = None,
        reference: np.ndarray | None = None,
        reference_mode: ReferenceMode = ReferenceMode.DETECT,
        strength: float = 1.0,
        offsets: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0)),
    ) -> tuple[dict[str, Any], np.ndarray]:
        """Colorize an [H, W, C] u8 array; returns the reply header and the result array."""
        image = _spec(pixels, offsets[0])
        ref = None if reference is None else (_spec(reference, offsets[1]), _bytes(reference))
        frames = colorize_request(
            image, _bytes(pixels), model, ref, reference_mode, strength, request_id="py"
        )
        header, result = parse_reply(self.call(frames))
        channels = PixelFormat(header["format"]).channels
        shape = (header["height"], header["width"], channels)
        return header, np.frombuffer(result[0], np.uint8).reshape(shape)


def _spec(pixels: np.ndarray, offset: tuple[int, int]) -> ImageSpec:
    return ImageSpec(
        pixels.shape[1], pixels.shape[0], PixelFormat.of_channels(pixels.shape[2]), offset
    )


def _bytes(pixels: np.ndarray) -> memoryview:
    return np.ascontiguousarray(pixels, dtype=np.uint8).data.cast("B")
