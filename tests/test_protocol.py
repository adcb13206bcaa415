"""Protocol validation: every malformed request is refused, with a code, before allocation."""

import json

import pytest
from colorize_backend.core.contract import ReferenceMode
from colorize_backend.core.errors import ColorizeError
from colorize_backend.daemon.protocol import (
    PixelFormat,
    SampleType,
    decode_header,
    parse_cancel,
    parse_colorize,
)


def header(**fields):
    base = {
        "v": 2,
        "op": "colorize",
        "id": "r1",
        "image": {"width": 4, "height": 2, "format": "rgb"},
    }
    base.update(fields)
    return base


def code_of(fn, *args):
    with pytest.raises(ColorizeError) as info:
        fn(*args)
    return info.value.code


@pytest.mark.parametrize(
    "frame, code",
    [
        (b"\xff\xfe", "bad_header"),
        (b"not json", "bad_header"),
        (b"[1, 2]", "bad_header"),
        (b"[" * 5000 + b"]" * 5000, "bad_header"),  # nesting deeper than the parser goes
        (b'{"v": 2, "op": "hello", "n": ' + b"9" * 5000 + b"}", "bad_header"),  # huge integer
        (json.dumps({"op": "hello"}).encode(), "unsupported_version"),
        (json.dumps({"v": 1, "op": "hello"}).encode(), "unsupported_version"),
        (json.dumps({"v": True, "op": "hello"}).encode(), "unsupported_version"),
        (json.dumps({"v": 2.0, "op": "hello"}).encode(), "unsupported_version"),
        (json.dumps({"v": 2, "op": "rm -rf"}).encode(), "unknown_op"),
        (json.dumps({"v": 2, "op": ["hello"]}).encode(), "unknown_op"),
        (json.dumps({"v": 2, "op": "progress"}).encode(), "unknown_op"),  # daemon → client only
        (json.dumps({"v": 2, "op": "hello", "id": "x" * 65}).encode(), "bad_header"),
        (json.dumps({"v": 2, "op": "hello", "id": "a b"}).encode(), "bad_header"),
        (json.dumps({"v": 2, "op": "hello", "id": 7}).encode(), "bad_header"),
        (b"{" + b" " * 70000 + b"}", "bad_header"),
    ],
)
def test_bad_headers_are_refused(frame, code):
    assert code_of(decode_header, frame) == code


def test_valid_request_parses():
    request = parse_colorize(header(strength=0.5, progress=True), [b"\0" * 24], 100)
    assert (request.image.width, request.image.height, request.image.channels) == (4, 2, 3)
    assert request.options.strength == 0.5 and request.reference is None and request.progress
    assert request.request_id == "r1"
    assert request.options.reference_mode is ReferenceMode.DETECT


@pytest.mark.parametrize("sample, size", [("u8", 1), ("u16", 2), ("f32", 4)])
def test_sample_types_set_the_frame_size(sample, size):
    image = {"width": 4, "height": 2, "format": "graya", "sample": sample}
    request = parse_colorize(header(image=image), [b"\0" * (8 * 2 * size)], 100)
    assert request.image.sample is SampleType(sample) and request.image.format is PixelFormat.GRAYA
    assert request.image.result.format is PixelFormat.RGBA
    assert request.image.result.sample is SampleType(sample)


@pytest.mark.parametrize(
    "image, payload, code",
    [
        ({"width": 4, "height": 2, "format": "rgb"}, [b"\0" * 23], "bad_size"),
        ({"width": 4, "height": 2, "format": "rgb", "sample": "u16"}, [b"\0" * 24], "bad_size"),
        ({"width": 4, "height": 2, "format": "rgb"}, [], "bad_frames"),
        ({"width": 4, "height": 2, "format": "rgb"}, [b"\0" * 24, b"x"], "bad_frames"),
        ({"width": 0, "height": 2, "format": "rgb"}, [b""], "bad_size"),
        ({"width": -4, "height": 2, "format": "rgb"}, [b""], "bad_size"),
        ({"width": "4", "height": 2, "format": "rgb"}, [b""], "bad_size"),
        ({"width": True, "height": 2, "format": "rgb"}, [b""], "bad_size"),
        ({"width": 4.0, "height": 2, "format": "rgb"}, [b""], "bad_size"),
        ({"width": 10**40, "height": 2, "format": "rgb"}, [b""], "bad_size"),
        ({"width": 4, "height": 2, "format": "cmyk"}, [b""], "bad_format"),
        ({"width": 4, "height": 2, "format": ["rgb"]}, [b""], "bad_format"),
        ({"width": 4, "height": 2, "format": "rgb", "sample": "u32"}, [b""], "bad_format"),
        ({"width": 100000, "height": 100000, "format": "rgb"}, [b""], "too_large"),
        ({"width": 4, "height": 2, "format": "rgb", "offset": "0,0"}, [b"\0" * 24], "bad_header"),
        ({"width": 4, "height": 2, "format": "rgb", "offset": [10**20, 0]}, [b"\0" * 24],
         "bad_header"),
        ({"width": 4, "height": 2, "format": "rgb", "offset": [True, 0]}, [b"\0" * 24],
         "bad_header"),
        ("4x2", [b""], "bad_header"),
    ],
)  # fmt: skip
def test_bad_image_claims_are_refused(image, payload, code):
    assert code_of(parse_colorize, header(image=image), payload, 1000) == code


def test_reference_is_validated_like_the_image():
    ref = {"width": 2, "height": 2, "format": "rgba"}
    ok = parse_colorize(header(reference=ref), [b"\0" * 24, b"\0" * 16], 1000)
    assert ok.reference.channels == 4
    assert (
        code_of(parse_colorize, header(reference=ref), [b"\0" * 24, b"\0" * 15], 1000) == "bad_size"
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"strength": 2},
        {"strength": -1},
        {"strength": "1"},
        {"strength": True},
        {"model": 3},
        {"model": "m" * 256},
        {"model": ""},
        {"reference_mode": "guess"},
        {"reference_mode": ["hints"]},
        {"progress": 1},
        {"id": None},
    ],
)
def test_bad_options_are_refused(fields):
    assert code_of(parse_colorize, header(**fields), [b"\0" * 24], 1000) == "bad_header"


def test_cancel_names_a_job_and_carries_no_frames():
    assert parse_cancel({"v": 2, "op": "cancel", "id": "r1"}, []) == "r1"
    assert code_of(parse_cancel, {"v": 2, "op": "cancel", "id": "r1"}, [b"x"]) == "bad_frames"
    assert code_of(parse_cancel, {"v": 2, "op": "cancel"}, []) == "bad_header"
