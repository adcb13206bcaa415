"""Wire protocol v2, both directions: JSON header frame + raw pixel frames (docs/protocol.md).

Everything a peer sends is treated as hostile: the header is size-limited JSON (never
pickle), every field is type-checked strictly, and width x height x channels x sample size
must match the payload before any array is built. Requests are parsed and replies built
here and only here; the daemon moves frames, the Python client (colorize_backend.daemon.client)
encodes with the same functions, and a test holds the plug-in's own client to these
constants.

A client that asks for `progress` (on a DEALER socket) gets progress messages while its
job waits and runs, at least every `heartbeat_s`, so it can tell a busy daemon from a dead
one; it may `cancel` its job. REQ clients get exactly one reply per request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from colorize_backend.core.contract import ReferenceMode
from colorize_backend.core.errors import ColorizeError, ErrorCode
from colorize_backend.core.options import (
    DETAIL_SIZE_RANGE,
    SATURATION_RANGE,
    STRENGTH_RANGE,
    ColorizeOptions,
)

PROTOCOL_VERSION = 2
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5557"
MAX_HEADER_BYTES = 64 * 1024
DEFAULT_MAX_PIXELS = 60_000_000
HEARTBEAT_S = 1.0
MAX_ID_CHARS = 64
MAX_MODEL_CHARS = 255
MAX_OFFSET = 1 << 30
MAX_SHARED_BYTES = 1 << 40
# The reference modes as the wire names them; "auto" is what protocol v1 clients send for detect.
WIRE_REFERENCE_MODES = {"auto": ReferenceMode.DETECT, **{m.value: m for m in ReferenceMode}}
ID_PATTERN = re.compile(rf"[A-Za-z0-9_.:\-]{{1,{MAX_ID_CHARS}}}")


class Operation(StrEnum):
    HELLO = "hello"
    MODELS = "models"
    COLORIZE = "colorize"
    CANCEL = "cancel"
    LEASE = "lease"  # a shared-memory buffer for a local client
    RELEASE = "release"
    PROGRESS = "progress"  # daemon → client only


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


class SampleType(StrEnum):
    """How one channel of one pixel is stored: 8/16-bit unsigned or 32-bit float (0..1)."""

    U8 = "u8"
    U16 = "u16"
    F32 = "f32"

    @property
    def size(self) -> int:
        return {"u8": 1, "u16": 2, "f32": 4}[self.value]

    @property
    def numpy(self) -> str:
        """The numpy dtype of the samples (little-endian, as every platform GIMP runs on)."""
        return {"u8": "|u1", "u16": "<u2", "f32": "<f4"}[self.value]

    @classmethod
    def of_numpy(cls, dtype: Any) -> SampleType:
        import numpy as np

        return {np.dtype(np.uint8): cls.U8, np.dtype(np.uint16): cls.U16}.get(
            np.dtype(dtype), cls.F32
        )


@dataclass(frozen=True)
class ImageSpec:
    width: int
    height: int
    format: PixelFormat
    offset: tuple[int, int] = (0, 0)
    sample: SampleType = SampleType.U8

    @property
    def channels(self) -> int:
        return self.format.channels

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def nbytes(self) -> int:
        return self.pixels * self.channels * self.sample.size

    @property
    def result(self) -> ImageSpec:
        """The spec of the colour result for this image: same size, offset and sample type."""
        return ImageSpec(self.width, self.height, self.format.result, self.offset, self.sample)

    def to_wire(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "format": self.format.value,
            "sample": self.sample.value,
            "offset": list(self.offset),
        }


@dataclass(frozen=True)
class Limits:
    """What this daemon accepts; sent in `hello` so that clients check before sending."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    heartbeat_s: float = HEARTBEAT_S
    # Enough places for every client of a busy machine to wait in turn (served round-robin,
    # which is fair; refusing them makes them race for places instead), bounded by the pixel
    # frames the waiting jobs hold.
    queue_size: int = 64
    max_queued_per_client: int = 2
    queue_bytes: int = 2 << 30

    @property
    def max_frame_bytes(self) -> int:
        """The largest valid pixel frame: the largest image, RGBA, float samples."""
        return max(self.max_pixels * 4 * SampleType.F32.size, MAX_HEADER_BYTES)


@dataclass(frozen=True)
class Identity:
    """Which backend answers: clients check it, not only the protocol version."""

    backend_version: str
    install: str  # where the backend is installed (its Python prefix)
    instance: str  # unique per daemon start
    pid: int


@dataclass(frozen=True)
class SharedPixels:
    """Where a local client put its pixels, and wants the result, in a shared file."""

    name: str
    image: int  # byte offsets in the file
    result: int
    reference: int | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"name": self.name, "image": self.image, "result": self.result}
        if self.reference is not None:
            wire["reference"] = self.reference
        return wire


@dataclass(frozen=True)
class ColorizeRequest:
    request_id: str
    image: ImageSpec
    reference: ImageSpec | None
    options: ColorizeOptions
    progress: bool  # the client wants progress messages (and heartbeats)
    shared: SharedPixels | None = None  # pixels in a shared file instead of frames


def encode_header(header: dict[str, Any]) -> bytes:
    return json.dumps(header, separators=(",", ":")).encode("utf-8")


# ------------------------------------------------------------------ requests


def bad_header(message: str) -> ColorizeError:
    return ColorizeError(ErrorCode.BAD_HEADER, message)


def decode_header(frame: bytes) -> dict[str, Any]:
    """Parse and check the common header fields of any request."""
    if len(frame) > MAX_HEADER_BYTES:
        raise bad_header(f"header is {len(frame)} bytes; limit {MAX_HEADER_BYTES}")
    try:
        header = json.loads(frame.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise bad_header(f"header is not UTF-8 JSON: {str(exc)[:100]}") from None
    if not isinstance(header, dict):
        raise bad_header("header must be a JSON object")
    version = header.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise ColorizeError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"protocol version {_shown(version)} not supported; this daemon speaks "
            f"v{PROTOCOL_VERSION}: re-run install.py so that plug-in and backend match",
        )
    operation = header.get("op")
    requests = set(Operation) - {Operation.PROGRESS}
    if not isinstance(operation, str) or operation not in requests:
        raise ColorizeError(
            ErrorCode.UNKNOWN_OP,
            f"unknown op {_shown(operation)}; known: {sorted(op.value for op in requests)}",
        )
    request_id = header.get("id")
    if request_id is not None and (
        not isinstance(request_id, str) or not ID_PATTERN.fullmatch(request_id)
    ):
        raise bad_header(f"id must be 1-{MAX_ID_CHARS} characters of A-Z a-z 0-9 _ . : -")
    return header


def request_id_of(header: Any) -> str | None:
    """The id to echo in a reply: only a well-formed one is ever sent back."""
    if isinstance(header, dict):
        value = header.get("id")
        if isinstance(value, str) and ID_PATTERN.fullmatch(value):
            return value
    return None


def _shown(value: Any) -> str:
    """A client's value, quoted in a message or a log line, at most 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _strict_int(value: Any) -> bool:
    return type(value) is int


def _positive_int(raw: dict[str, Any], name: str, what: str) -> int:
    value = raw.get(name)
    if isinstance(value, int) and _strict_int(value) and 0 < value <= MAX_OFFSET:
        return value
    raise ColorizeError(ErrorCode.BAD_SIZE, f"{what}.{name} must be a positive integer")


def _enum(kind: type[StrEnum], value: Any, what: str, code: ErrorCode) -> Any:
    if not isinstance(value, str) or value not in {m.value for m in kind}:
        known = sorted(m.value for m in kind)
        raise ColorizeError(code, f"{what} {_shown(value)} not one of {known}")
    return kind(value)


def _image_spec(raw: Any, what: str, max_pixels: int) -> ImageSpec:
    if not isinstance(raw, dict):
        raise bad_header(f"{what} must be an object with width, height, format")
    width, height = _positive_int(raw, "width", what), _positive_int(raw, "height", what)
    fmt = _enum(PixelFormat, raw.get("format"), f"{what}.format", ErrorCode.BAD_FORMAT)
    sample = _enum(SampleType, raw.get("sample", "u8"), f"{what}.sample", ErrorCode.BAD_FORMAT)
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
        or not all(_strict_int(v) and abs(v) <= MAX_OFFSET for v in offset)
    ):
        raise bad_header(f"{what}.offset must be [x, y] integers within ±{MAX_OFFSET}")
    return ImageSpec(width, height, fmt, (offset[0], offset[1]), sample)


def _number(header: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = header.get(name, default)
    if type(value) not in (int, float) or not low <= value <= high:
        raise bad_header(f"{name} must be a number in [{low:g}, {high:g}]")
    return float(value)


def _options(header: dict[str, Any]) -> ColorizeOptions:
    """The user's settings: every field optional, each checked against its range."""
    model = header.get("model")
    if model is not None and (not isinstance(model, str) or not 0 < len(model) <= MAX_MODEL_CHARS):
        raise bad_header(f"model must be a name of 1-{MAX_MODEL_CHARS} characters")
    mode = header.get("reference_mode", "detect")
    if not isinstance(mode, str) or mode not in WIRE_REFERENCE_MODES:
        raise bad_header(f"reference_mode must be one of {sorted(WIRE_REFERENCE_MODES)}")
    detail = header.get("detail_size")
    low, high = DETAIL_SIZE_RANGE
    if detail is not None and (type(detail) is not int or not low <= detail <= high):
        raise bad_header(f"detail_size must be an integer in [{low}, {high}]")
    sequence, frame = _sequence(header)
    return ColorizeOptions(
        model=model,
        strength=_number(header, "strength", 1.0, *STRENGTH_RANGE),
        saturation=_number(header, "saturation", 1.0, *SATURATION_RANGE),
        detail_size=detail,
        reference_mode=WIRE_REFERENCE_MODES[mode],
        sequence=sequence,
        frame=frame,
    )


def _sequence(header: dict[str, Any]) -> tuple[str | None, int]:
    """The film or animation a frame belongs to, and its index (frames come in order)."""
    sequence = header.get("sequence")
    if sequence is not None and (
        not isinstance(sequence, str) or not ID_PATTERN.fullmatch(sequence)
    ):
        raise bad_header(f"sequence must be 1-{MAX_ID_CHARS} characters of A-Z a-z 0-9 _ . : -")
    frame = header.get("frame", 0)
    if type(frame) is not int or not 0 <= frame <= MAX_OFFSET:
        raise bad_header("frame must be an integer from 0")
    return sequence, frame


def _progress(header: dict[str, Any]) -> bool:
    progress = header.get("progress", False)
    if type(progress) is not bool:
        raise bad_header("progress must be true or false")
    return progress


def _offset(raw: dict[str, Any], name: str) -> int:
    value = raw.get(name)
    if type(value) is not int or not 0 <= value <= MAX_SHARED_BYTES or value % 8:
        raise bad_header(f"shm.{name} must be a byte offset, a multiple of 8")
    return value


def _shared(raw: Any, reference: bool) -> SharedPixels:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise bad_header("shm must be an object with name, image and result offsets")
    offsets = {
        k: _offset(raw, k) for k in ("image", "result") + (("reference",) if reference else ())
    }
    return SharedPixels(raw["name"][:80], **offsets)


def parse_colorize(
    header: dict[str, Any], payload: Sequence[bytes | memoryview], max_pixels: int
) -> ColorizeRequest:
    """Validate a colorize request against its payload frames, allocating nothing."""
    request_id = header.get("id")
    if request_id is None:
        raise bad_header("a colorize request needs an id")
    image = _image_spec(header.get("image"), "image", max_pixels)
    reference = None
    if header.get("reference") is not None:
        reference = _image_spec(header["reference"], "reference", max_pixels)
    options, progress = _options(header), _progress(header)
    shared = None
    if header.get("shm") is not None:
        shared = _shared(header["shm"], reference is not None)
        expect_no_frames(payload, Operation.COLORIZE)
    else:
        _check_frames(payload, image, reference)
    return ColorizeRequest(request_id, image, reference, options, progress, shared)


def _check_frames(
    payload: Sequence[bytes | memoryview], image: ImageSpec, reference: ImageSpec | None
) -> None:
    """The pixel frames are exactly as many and as large as the header claims."""
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
                f"{what} claims {spec.width}x{spec.height} {spec.format.value} "
                f"{spec.sample.value} = {spec.nbytes} bytes but the frame has {len(frame)}",
            )


def parse_cancel(header: dict[str, Any], payload: Sequence[Any]) -> str:
    """The id of the job a cancel request names."""
    expect_no_frames(payload, Operation.CANCEL)
    request_id = header.get("id")
    if request_id is None:
        raise bad_header("cancel needs the id of the colorize request")
    return request_id


def parse_lease(header: dict[str, Any], payload: Sequence[Any]) -> int:
    """The size of the shared buffer a local client asks for."""
    expect_no_frames(payload, Operation.LEASE)
    size = header.get("bytes")
    if type(size) is not int or not 0 < size <= MAX_SHARED_BYTES:
        raise bad_header("lease needs bytes: a positive integer")
    return size


def parse_release(header: dict[str, Any], payload: Sequence[Any]) -> str:
    expect_no_frames(payload, Operation.RELEASE)
    name = header.get("name")
    if not isinstance(name, str) or not 0 < len(name) <= 80:
        raise bad_header("release needs the name of the leased buffer")
    return name


def expect_no_frames(payload: Sequence[Any], operation: Operation) -> None:
    if payload:
        raise ColorizeError(
            ErrorCode.BAD_FRAMES, f"{operation.value} takes no frames, got {len(payload)}"
        )


def hello_request() -> list[bytes]:
    return [encode_header({"v": PROTOCOL_VERSION, "op": "hello"})]


def models_request() -> list[bytes]:
    return [encode_header({"v": PROTOCOL_VERSION, "op": "models"})]


def cancel_request(request_id: str) -> list[bytes]:
    return [encode_header({"v": PROTOCOL_VERSION, "op": "cancel", "id": request_id})]


def colorize_request(
    request_id: str,
    image: ImageSpec,
    pixels: bytes | memoryview,
    options: ColorizeOptions = ColorizeOptions(),
    reference: tuple[ImageSpec, bytes | memoryview] | None = None,
    progress: bool = False,
) -> list:
    """The frames of a colorize request, as the daemon parses them."""
    header: dict[str, Any] = {
        "v": PROTOCOL_VERSION,
        "op": "colorize",
        "id": request_id,
        "image": image.to_wire(),
        "progress": progress,
        **options_to_wire(options),
    }
    frames: list = [pixels]
    if reference is not None:
        header["reference"] = reference[0].to_wire()
        frames.append(reference[1])
    return [encode_header(header), *frames]


def options_to_wire(options: ColorizeOptions) -> dict[str, Any]:
    """The header fields that carry the options (unset ones left out)."""
    wire: dict[str, Any] = {
        "strength": options.strength,
        "saturation": options.saturation,
        "reference_mode": options.reference_mode.value,
    }
    if options.model:
        wire["model"] = options.model
    if options.detail_size:
        wire["detail_size"] = options.detail_size
    if options.sequence:
        wire.update(sequence=options.sequence, frame=options.frame)
    return wire


# ------------------------------------------------------------------ replies


def _reply(operation: Operation | None, request_id: str | None, **fields: Any) -> dict[str, Any]:
    header: dict[str, Any] = {"v": PROTOCOL_VERSION, "ok": True}
    if operation is not None:
        header["op"] = operation.value
    if request_id is not None:
        header["id"] = request_id
    header.update(fields)
    return header


def error_reply(
    code: ErrorCode, message: str, request_id: str | None = None, operation: Any = None
) -> dict[str, Any]:
    known = operation if isinstance(operation, str) and operation in set(Operation) else None
    header = _reply(Operation(known) if known else None, request_id)
    header.update(ok=False, error={"code": code.value, "message": message})
    return header


def hello_reply(
    identity: Identity,
    limits: Limits,
    models: list[str],
    default_model: str | None,
    providers: list[str],
    shared_memory: bool = False,
) -> dict[str, Any]:
    """Who answers (versions, install, instance, pid), its models and its limits; and
    whether it leases shared pixel buffers to clients on this machine."""
    return _reply(
        Operation.HELLO,
        None,
        protocol=PROTOCOL_VERSION,
        **asdict(identity),
        models=models,
        default_model=default_model,
        providers=providers,
        limits={**asdict(limits), "max_frame_bytes": limits.max_frame_bytes},
        max_pixels=limits.max_pixels,
        shared_memory=shared_memory,
    )


def models_reply(models: list[dict[str, Any]], default_model: str | None) -> dict[str, Any]:
    """models: name, kind, input_size and description of each installed model."""
    return _reply(Operation.MODELS, None, models=models, default_model=default_model)


def progress_reply(
    request_id: str, stage: str, done: float, queue_position: int | None = None
) -> dict[str, Any]:
    """A sign of life while a job waits or runs: its stage and the share done (0..1)."""
    fields: dict[str, Any] = {"stage": stage, "done": round(done, 3)}
    if queue_position is not None:
        fields["queue_position"] = queue_position
    return _reply(Operation.PROGRESS, request_id, **fields)


def lease_reply(name: str, size: int, path: str, request_id: str | None = None) -> dict[str, Any]:
    """A leased buffer: its name (in requests), its size, and where a local client opens it."""
    return _reply(Operation.LEASE, request_id, name=name, bytes=size, path=path)


def release_reply(released: bool, request_id: str | None = None) -> dict[str, Any]:
    return _reply(Operation.RELEASE, request_id, released=released)


def cancel_reply(request_id: str, cancelled: bool) -> dict[str, Any]:
    return _reply(Operation.CANCEL, request_id, cancelled=cancelled)


def colorize_reply(
    request_id: str,
    result: ImageSpec,
    model: str,
    provider: str,
    timings: dict[str, float],
    shared: bool = False,
) -> dict[str, Any]:
    """The header sent before the result frame (the result's size, format and samples); with
    `shared`, no frame follows: the result is in the client's shared file."""
    return _reply(
        Operation.COLORIZE,
        request_id,
        width=result.width,
        height=result.height,
        format=result.format.value,
        sample=result.sample.value,
        model=model,
        provider=provider,
        timings=timings,
        shared=shared,
    )


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
