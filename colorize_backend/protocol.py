"""Wire protocol v1, both directions: JSON header frame + raw pixel frames (docs/protocol.md).

Everything a peer sends is treated as hostile: the header is size-limited JSON
(never pickle), and width x height x channels must match the payload length
before any array is built. Requests are parsed and replies built here and only
here; the daemon moves frames, the Python client (colorize_backend.client) encodes
with the same functions, and a test holds the plug-in's own client to these constants.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from colorize_backend.errors import ColorizeError, ErrorCode
from colorize_backend.reference import ReferenceMode

PROTOCOL_VERSION = 1
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5557"
MAX_HEADER_BYTES = 64 * 1024
DEFAULT_MAX_PIXELS = 60_000_000
WIRE_REFERENCE_MODES = ("auto", "detect", "exemplar", "hints")  # "auto" = detect (v1 clients)


class Operation(StrEnum):
    HELLO = "hello"
    MODELS = "models"
    COLORIZE = "colorize"


class PixelFormat(StrEnum):
    GRAY = "gray"
    GRAYA = "graya"
    RGB = "rgb"
    RGBA = "rgba"

    @property
    def channels(self) -> int:
        return {"gray": 1, "graya": 2, "rgb": 3, "rgba": 4}[self.value]

    @property
    def result(self) -> PixelFormat:
        """The format of the colour result: grey becomes RGB, alpha is kept."""
        return PixelFormat.RGBA if self.channels in (2, 4) else PixelFormat.RGB

    @classmethod
    def of_channels(cls, channels: int) -> PixelFormat:
        return next(f for f in cls if f.channels == channels)


@dataclass(frozen=True)
class ImageSpec:
    width: int
    height: int
    format: PixelFormat
    offset: tuple[int, int] = (0, 0)

    @property
    def channels(self) -> int:
        return self.format.channels

    @property
    def nbytes(self) -> int:
        return self.width * self.height * self.channels

    def to_wire(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "format": self.format.value,
            "offset": list(self.offset),
        }


@dataclass(frozen=True)
class ColorizeRequest:
    image: ImageSpec
    model: str | None
    reference: ImageSpec | None
    reference_mode: ReferenceMode
    strength: float


def encode_header(header: dict[str, Any]) -> bytes:
    return json.dumps(header, separators=(",", ":")).encode("utf-8")


# ------------------------------------------------------------------ requests


def decode_header(frame: bytes) -> dict[str, Any]:
    """Parse and check the common header fields of any request."""
    if len(frame) > MAX_HEADER_BYTES:
        raise ColorizeError(
            ErrorCode.BAD_HEADER, f"header is {len(frame)} bytes; limit {MAX_HEADER_BYTES}"
        )
    try:
        header = json.loads(frame.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ColorizeError(ErrorCode.BAD_HEADER, f"header is not UTF-8 JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ColorizeError(ErrorCode.BAD_HEADER, "header must be a JSON object")
    version = header.get("v")
    if version != PROTOCOL_VERSION:
        raise ColorizeError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"protocol version {version!r} not supported; this daemon speaks v{PROTOCOL_VERSION}",
        )
    if header.get("op") not in [op.value for op in Operation]:
        known = tuple(op.value for op in Operation)
        raise ColorizeError(
            ErrorCode.UNKNOWN_OP, f"unknown op {header.get('op')!r}; known: {known}"
        )
    return header


def _positive_int(raw: dict[str, Any], name: str, what: str) -> int:
    value = raw.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ColorizeError(ErrorCode.BAD_SIZE, f"{what}.{name} must be a positive integer")
    return value


def _image_spec(raw: Any, what: str, max_pixels: int) -> ImageSpec:
    if not isinstance(raw, dict):
        raise ColorizeError(
            ErrorCode.BAD_HEADER, f"{what} must be an object with width, height, format"
        )
    width, height = _positive_int(raw, "width", what), _positive_int(raw, "height", what)
    fmt = raw.get("format")
    if fmt not in [f.value for f in PixelFormat]:
        known = sorted(f.value for f in PixelFormat)
        raise ColorizeError(ErrorCode.BAD_FORMAT, f"{what}.format {fmt!r} not one of {known}")
    if width * height > max_pixels:
        raise ColorizeError(
            ErrorCode.TOO_LARGE,
            f"{what} is {width}x{height} = {width * height} pixels; "
            f"this daemon accepts at most {max_pixels}",
        )
    offset = raw.get("offset", [0, 0])
    if (
        not isinstance(offset, list)
        or len(offset) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in offset)
    ):
        raise ColorizeError(ErrorCode.BAD_HEADER, f"{what}.offset must be [x, y] integers")
    return ImageSpec(width, height, PixelFormat(fmt), (offset[0], offset[1]))


def parse_colorize(
    header: dict[str, Any], payload: Sequence[bytes | memoryview], max_pixels: int
) -> ColorizeRequest:
    """Validate a colorize request against its payload frames, allocating nothing."""
    image = _image_spec(header.get("image"), "image", max_pixels)
    reference = None
    if header.get("reference") is not None:
        reference = _image_spec(header["reference"], "reference", max_pixels)
    expected = 2 if reference else 1
    if len(payload) != expected:
        raise ColorizeError(
            ErrorCode.BAD_FRAMES, f"expected {expected} pixel frame(s), got {len(payload)}"
        )
    for spec, frame, what in zip((image, reference), payload, ("image", "reference")):
        assert spec is not None
        if len(frame) != spec.nbytes:
            raise ColorizeError(
                ErrorCode.BAD_SIZE,
                f"{what} claims {spec.width}x{spec.height} {spec.format.value} = "
                f"{spec.nbytes} bytes but the frame has {len(frame)}",
            )
    model = header.get("model")
    if model is not None and not isinstance(model, str):
        raise ColorizeError(ErrorCode.BAD_HEADER, "model must be a string")
    mode = header.get("reference_mode", "auto")
    if mode not in WIRE_REFERENCE_MODES:
        raise ColorizeError(
            ErrorCode.BAD_HEADER, f"reference_mode must be one of {WIRE_REFERENCE_MODES}"
        )
    strength = header.get("strength", 1.0)
    if (
        not isinstance(strength, int | float)
        or isinstance(strength, bool)
        or not 0 <= strength <= 1
    ):
        raise ColorizeError(ErrorCode.BAD_HEADER, "strength must be a number in [0, 1]")
    return ColorizeRequest(image, model, reference, ReferenceMode.parse(mode), float(strength))


def hello_request(request_id: Any = None) -> list[bytes]:
    return [encode_header(_with_id({"v": PROTOCOL_VERSION, "op": "hello"}, request_id))]


def models_request(request_id: Any = None) -> list[bytes]:
    return [encode_header(_with_id({"v": PROTOCOL_VERSION, "op": "models"}, request_id))]


def colorize_request(
    image: ImageSpec,
    pixels: bytes | memoryview,
    model: str | None = None,
    reference: tuple[ImageSpec, bytes | memoryview] | None = None,
    reference_mode: ReferenceMode = ReferenceMode.DETECT,
    strength: float = 1.0,
    request_id: Any = None,
) -> list:
    """The frames of a colorize request, as the daemon parses them."""
    header: dict[str, Any] = {
        "v": PROTOCOL_VERSION,
        "op": "colorize",
        "image": image.to_wire(),
        "strength": strength,
        "reference_mode": reference_mode.value,
    }
    if model:
        header["model"] = model
    frames: list = [pixels]
    if reference is not None:
        header["reference"] = reference[0].to_wire()
        frames.append(reference[1])
    return [encode_header(_with_id(header, request_id)), *frames]


# ------------------------------------------------------------------ replies


def _with_id(header: dict[str, Any], request_id: Any) -> dict[str, Any]:
    if request_id is not None:
        header["id"] = request_id
    return header


def error_reply(code: ErrorCode, message: str, request_id: Any = None) -> dict[str, Any]:
    header = {"v": PROTOCOL_VERSION, "ok": False, "error": {"code": code.value, "message": message}}
    return _with_id(header, request_id)


def hello_reply(
    request_id: Any,
    backend_version: str,
    models: list[str],
    default_model: str | None,
    providers: list[str],
    max_pixels: int,
    pid: int,
) -> dict[str, Any]:
    """Who answers: protocol and backend versions, models, limits, and the daemon's process."""
    return {
        "v": PROTOCOL_VERSION,
        "ok": True,
        "id": request_id,
        "protocol": PROTOCOL_VERSION,
        "backend_version": backend_version,
        "models": models,
        "default_model": default_model,
        "providers": providers,
        "max_pixels": max_pixels,
        "pid": pid,
    }


def models_reply(
    request_id: Any, models: list[dict[str, Any]], default_model: str | None
) -> dict[str, Any]:
    """models: name, kind, input_size and description of each installed model."""
    return {
        "v": PROTOCOL_VERSION,
        "ok": True,
        "id": request_id,
        "models": models,
        "default_model": default_model,
    }


def colorize_reply(
    request_id: Any, image: ImageSpec, model: str, provider: str, timings: dict[str, float]
) -> dict[str, Any]:
    """The header sent before the result frame ([H, W] in the image's result format)."""
    return {
        "v": PROTOCOL_VERSION,
        "ok": True,
        "id": request_id,
        "width": image.width,
        "height": image.height,
        "format": image.format.result.value,
        "model": model,
        "provider": provider,
        "timings": timings,
    }


def parse_reply(frames: Sequence[bytes]) -> tuple[dict[str, Any], list[bytes]]:
    """A reply's header and its other frames; a refusal raises its ColorizeError."""
    header = json.loads(bytes(frames[0]).decode("utf-8"))
    if not header.get("ok"):
        error = header.get("error") or {}
        try:
            code = ErrorCode(str(error.get("code")))
        except ValueError:
            code = ErrorCode.INTERNAL
        raise ColorizeError(code, error.get("message", "unknown error"))
    return header, list(frames[1:])
