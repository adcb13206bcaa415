"""Wire protocol v1: JSON header frame + raw pixel frames, validated before allocation.

Everything a peer sends is treated as hostile: the header is size-limited JSON
(never pickle), and width x height x channels must match the payload length
before any array is built. See docs/protocol.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PROTOCOL_VERSION = 1
MAX_HEADER_BYTES = 64 * 1024
DEFAULT_MAX_PIXELS = 60_000_000
OPERATIONS = ("hello", "models", "colorize")
CHANNELS = {"gray": 1, "graya": 2, "rgb": 3, "rgba": 4}
RESULT_FORMAT = {"gray": "rgb", "graya": "rgba", "rgb": "rgb", "rgba": "rgba"}
REFERENCE_MODES = ("auto", "exemplar", "hints")


class ProtocolError(Exception):
    """A request the daemon refuses; code and message go back to the client."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ImageSpec:
    width: int
    height: int
    format: str
    offset: tuple[int, int] = (0, 0)

    @property
    def channels(self) -> int:
        return CHANNELS[self.format]

    @property
    def nbytes(self) -> int:
        return self.width * self.height * self.channels


@dataclass(frozen=True)
class ColorizeRequest:
    image: ImageSpec
    model: str | None
    reference: ImageSpec | None
    reference_mode: str
    strength: float


def encode_header(header: dict[str, Any]) -> bytes:
    return json.dumps(header, separators=(",", ":")).encode("utf-8")


def error_header(code: str, message: str, request_id: Any = None) -> dict[str, Any]:
    header: dict[str, Any] = {
        "v": PROTOCOL_VERSION,
        "ok": False,
        "error": {"code": code, "message": message},
    }
    if request_id is not None:
        header["id"] = request_id
    return header


def decode_header(frame: bytes) -> dict[str, Any]:
    """Parse and check the common header fields of any request."""
    if len(frame) > MAX_HEADER_BYTES:
        raise ProtocolError("bad_header", f"header is {len(frame)} bytes; limit {MAX_HEADER_BYTES}")
    try:
        header = json.loads(frame.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError("bad_header", f"header is not UTF-8 JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("bad_header", "header must be a JSON object")
    version = header.get("v")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            "unsupported_version",
            f"protocol version {version!r} not supported; this daemon speaks v{PROTOCOL_VERSION}",
        )
    if header.get("op") not in OPERATIONS:
        raise ProtocolError("unknown_op", f"unknown op {header.get('op')!r}; known: {OPERATIONS}")
    return header


def _image_spec(raw: Any, what: str, max_pixels: int) -> ImageSpec:
    if not isinstance(raw, dict):
        raise ProtocolError("bad_header", f"{what} must be an object with width, height, format")
    width, height, fmt = raw.get("width"), raw.get("height"), raw.get("format")
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ProtocolError("bad_size", f"{what}.{name} must be a positive integer")
    if fmt not in CHANNELS:
        raise ProtocolError("bad_format", f"{what}.format {fmt!r} not one of {sorted(CHANNELS)}")
    if width * height > max_pixels:
        raise ProtocolError(
            "too_large",
            f"{what} is {width}x{height} = {width * height} pixels; "
            f"this daemon accepts at most {max_pixels}",
        )
    offset = raw.get("offset", [0, 0])
    if (
        not isinstance(offset, list)
        or len(offset) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in offset)
    ):
        raise ProtocolError("bad_header", f"{what}.offset must be [x, y] integers")
    return ImageSpec(width, height, fmt, (offset[0], offset[1]))


def parse_colorize(
    header: dict[str, Any], payload: list[bytes] | list[memoryview], max_pixels: int
) -> ColorizeRequest:
    """Validate a colorize request against its payload frames, allocating nothing."""
    image = _image_spec(header.get("image"), "image", max_pixels)
    reference = None
    if header.get("reference") is not None:
        reference = _image_spec(header["reference"], "reference", max_pixels)
    expected = 2 if reference else 1
    if len(payload) != expected:
        raise ProtocolError("bad_frames", f"expected {expected} pixel frame(s), got {len(payload)}")
    for spec, frame, what in zip((image, reference), payload, ("image", "reference")):
        if len(frame) != spec.nbytes:
            raise ProtocolError(
                "bad_size",
                f"{what} claims {spec.width}x{spec.height} "
                f"{spec.format} = {spec.nbytes} bytes but the frame "
                f"has {len(frame)}",
            )
    model = header.get("model")
    if model is not None and not isinstance(model, str):
        raise ProtocolError("bad_header", "model must be a string")
    mode = header.get("reference_mode", "auto")
    if mode not in REFERENCE_MODES:
        raise ProtocolError("bad_header", f"reference_mode must be one of {REFERENCE_MODES}")
    strength = header.get("strength", 1.0)
    if (
        not isinstance(strength, (int, float))
        or isinstance(strength, bool)
        or not 0 <= strength <= 1
    ):
        raise ProtocolError("bad_header", "strength must be a number in [0, 1]")
    return ColorizeRequest(image, model, reference, mode, float(strength))
