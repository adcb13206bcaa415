"""Protocol validation: every malformed request is refused before allocation."""

import json

import pytest

from colorize_backend.errors import ColorizeError
from colorize_backend.protocol import decode_header, parse_colorize


def header(**fields):
    base = {"v": 1, "op": "colorize", "image": {"width": 4, "height": 2, "format": "rgb"}}
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
        (json.dumps({"op": "hello"}).encode(), "unsupported_version"),
        (json.dumps({"v": 2, "op": "hello"}).encode(), "unsupported_version"),
        (json.dumps({"v": 1, "op": "rm -rf"}).encode(), "unknown_op"),
        (b"{" + b" " * 70000 + b"}", "bad_header"),
    ],
)
def test_bad_headers_are_refused(frame, code):
    assert code_of(decode_header, frame) == code


def test_valid_request_parses():
    request = parse_colorize(header(strength=0.5), [b"\0" * 24], 100)
    assert (request.image.width, request.image.height, request.image.channels) == (4, 2, 3)
    assert request.strength == 0.5 and request.reference is None


@pytest.mark.parametrize(
    "image, payload, code",
    [
        ({"width": 4, "height": 2, "format": "rgb"}, [b"\0" * 23], "bad_size"),
        ({"width": 4, "height": 2, "format": "rgb"}, [], "bad_frames"),
        ({"width": 4, "height": 2, "format": "rgb"}, [b"\0" * 24, b"x"], "bad_frames"),
        ({"width": 0, "height": 2, "format": "rgb"}, [b""], "bad_size"),
        ({"width": -4, "height": 2, "format": "rgb"}, [b""], "bad_size"),
        ({"width": "4", "height": 2, "format": "rgb"}, [b""], "bad_size"),
        ({"width": True, "height": 2, "format": "rgb"}, [b""], "bad_size"),
        ({"width": 4, "height": 2, "format": "cmyk"}, [b""], "bad_format"),
        ({"width": 100000, "height": 100000, "format": "rgb"}, [b""], "too_large"),
        ({"width": 4, "height": 2, "format": "rgb", "offset": "0,0"}, [b"\0" * 24], "bad_header"),
        ("4x2", [b""], "bad_header"),
    ],
)
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
    "fields", [{"strength": 2}, {"strength": "1"}, {"model": 3}, {"reference_mode": "guess"}]
)
def test_bad_options_are_refused(fields):
    assert code_of(parse_colorize, header(**fields), [b"\0" * 24], 1000) == "bad_header"
