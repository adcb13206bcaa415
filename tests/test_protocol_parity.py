"""The plug-in's own client (stdlib + pyzmq, Python 2.7-compatible) speaks the backend's
protocol: same constants, and what it sends parses as the daemon parses it."""

from __future__ import annotations

import sys
from dataclasses import fields

import pytest
from colorize_backend.core.contract import ReferenceMode
from colorize_backend.core.options import ColorizeOptions
from colorize_backend.daemon import protocol

from installer import main as installer_main
from tests.helpers import REPO

sys.path.insert(0, str(REPO / "plugin" / "colorize"))
import colorize_client  # noqa: E402


def test_constants_agree():
    assert colorize_client.PROTOCOL_VERSION == protocol.PROTOCOL_VERSION
    assert colorize_client.DEFAULT_ENDPOINT == protocol.DEFAULT_ENDPOINT
    assert colorize_client.DEFAULTS["endpoint"] == protocol.DEFAULT_ENDPOINT
    assert installer_main.DEFAULT_ENDPOINT == protocol.DEFAULT_ENDPOINT
    formats = {f.value: f.channels for f in protocol.PixelFormat}
    assert colorize_client.FORMAT_CHANNELS == formats
    assert colorize_client.SAMPLE_SIZES == {s.value: s.size for s in protocol.SampleType}
    assert set(colorize_client.REFERENCE_MODES) == {m.value for m in ReferenceMode}
    assert colorize_client.OPTION_NAMES == tuple(f.name for f in fields(ColorizeOptions))
    assert colorize_client.DEFAULTS["heartbeat_timeout_s"] >= 3 * protocol.HEARTBEAT_S


class RecordingClient(colorize_client.Client):
    """The plug-in's client with the socket replaced by a recorder of what it would send."""

    def _request_with_retries(self, frames, request_id, progress):
        self.sent = list(frames)
        header = protocol.decode_header(frames[0])
        image = header["image"]
        fmt = protocol.PixelFormat(image["format"]).result
        size = image["width"] * image["height"] * fmt.channels
        size *= protocol.SampleType(image["sample"]).size
        return {"format": fmt.value}, [b"\0" * size]


@pytest.mark.parametrize("mode", colorize_client.REFERENCE_MODES)
@pytest.mark.parametrize("sample", sorted(colorize_client.SAMPLE_SIZES))
def test_a_colorize_request_parses_as_the_daemon_parses_it(mode, sample):
    client = RecordingClient(dict(colorize_client.DEFAULTS))
    size = colorize_client.SAMPLE_SIZES[sample]
    reference = (2, 1, "rgba", b"\1" * 8 * size, (5, 6), sample)
    options = {"model": "m", "reference_mode": mode, "strength": 0.25, "detail_size": 96}
    client.colorize(
        3, 2, "graya", b"\0" * 12 * size, options, reference=reference, offset=(1, 2),
        sample=sample,
    )  # fmt: skip
    header = protocol.decode_header(client.sent[0])
    request = protocol.parse_colorize(header, client.sent[1:], max_pixels=100)
    assert (request.image.width, request.image.height) == (3, 2)
    assert request.image.format is protocol.PixelFormat.GRAYA and request.image.offset == (1, 2)
    assert request.image.sample is protocol.SampleType(sample) and request.progress
    assert request.reference is not None and request.reference.offset == (5, 6)
    assert request.options == ColorizeOptions("m", 0.25, 1.0, 96, ReferenceMode(mode))


def test_v1_clients_reference_mode_auto_still_means_detect():
    header = {"v": 2, "op": "colorize", "id": "x", "image": {"width": 1, "height": 1,
              "format": "gray"}}  # fmt: skip
    request = protocol.parse_colorize(dict(header, reference_mode="auto"), [b"\0"], 10)
    assert request.options.reference_mode is ReferenceMode.DETECT
