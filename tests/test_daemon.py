"""A real daemon on loopback: operations, concurrency, progress, cancel, and CURVE."""

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import zmq
from colorize_backend.core.errors import ColorizeError
from colorize_backend.core.options import ColorizeOptions
from colorize_backend.daemon.client import CurveKeys, DaemonClient
from colorize_backend.daemon.front import Daemon, DaemonConfig, is_loopback
from colorize_backend.daemon.protocol import Limits

from tests.helpers import colorize_frames, raw_call

HELLO = b'{"v": 2, "op": "hello"}'


def dealer(endpoint: str, timeout_s: float = 30.0) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, int(timeout_s * 1000))
    sock.connect(endpoint)
    return sock


def test_hello_reports_protocol_identity_limits_and_providers(daemon):
    reply, frames = raw_call(daemon, [HELLO])
    assert reply["ok"] and reply["protocol"] == 2 and reply["op"] == "hello"
    assert reply["models"] == ["linear"] and "CPUExecutionProvider" in reply["providers"]
    assert reply["pid"] > 0 and len(reply["instance"]) == 32 and reply["install"]
    assert reply["limits"]["max_pixels"] == 4_000_000 and reply["limits"]["heartbeat_s"] == 1.0
    assert frames == []


def test_models_lists_kind_and_size(daemon):
    reply, _ = raw_call(daemon, [b'{"v": 2, "op": "models"}'])
    assert reply["models"][0]["kind"] == "auto" and reply["default_model"] == "linear"


def test_colorize_returns_full_size_colour(daemon, photo):
    reply, frames = raw_call(daemon, colorize_frames(photo[..., :1]))
    assert reply["ok"] and reply["format"] == "rgb" and reply["model"] == "linear"
    assert reply["sample"] == "u8"
    assert set(reply["timings"]) >= {"queue", "preprocess", "network", "postprocess"}
    result = np.frombuffer(frames[0], np.uint8).reshape(photo.shape[0], photo.shape[1], 3)
    assert np.abs(result[..., 0].astype(int) - result[..., 2]).mean() > 5


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_high_bit_depth_in_and_out(daemon, photo, dtype):
    grey = photo[..., :1].astype(np.float32) / 255.0
    pixels = (grey * 65535).astype(np.uint16) if dtype == np.uint16 else grey
    header, result = DaemonClient(daemon).colorize(pixels)
    assert header["sample"] == ("u16" if dtype == np.uint16 else "f32")
    assert result.dtype == dtype and result.shape == photo.shape[:2] + (3,)


def test_saturation_and_detail_size_travel_with_the_request(daemon, photo):
    client = DaemonClient(daemon)
    _, plain = client.colorize(photo[..., :1])
    _, grey = client.colorize(photo[..., :1], ColorizeOptions(saturation=0.0))
    _, vivid = client.colorize(photo[..., :1], ColorizeOptions(saturation=2.0, detail_size=96))
    chroma = [np.ptp(result.astype(int), axis=-1).mean() for result in (grey, plain, vivid)]
    assert chroma[0] <= 1 < chroma[1] < chroma[2]
    with pytest.raises(ColorizeError, match="detail_size"):
        client.colorize(photo[..., :1], ColorizeOptions(detail_size=20))


def test_progress_messages_come_before_the_result(daemon, photo):
    seen = []
    header, _ = DaemonClient(daemon).colorize(photo[..., :1], on_progress=seen.append)
    assert header["op"] == "colorize"
    stages = [message["stage"] for message in seen]
    assert stages[:3] == ["preprocess", "network", "compose"]
    assert all(0 <= message["done"] <= 1 for message in seen)


def test_two_clients_at_once_get_their_own_replies(daemon, photo):
    results = {}

    def client(name, image):
        results[name] = raw_call(daemon, colorize_frames(image, id=name))

    small = photo[:64, :80, :1]
    threads = [
        threading.Thread(target=client, args=("big", photo[..., :1])),
        threading.Thread(target=client, args=("small", small)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results["big"][0]["id"] == "big" and results["big"][0]["width"] == photo.shape[1]
    assert results["small"][0]["id"] == "small" and results["small"][0]["width"] == 80
    assert len(results["small"][1][0]) == 64 * 80 * 3


COLORIZE_10x10 = b'{"v":2,"op":"colorize","id":"a","image":{"width":10,"height":10,"format":"rgb"}}'


@pytest.mark.parametrize(
    "frames, code",
    [
        ([b"garbage"], "bad_header"),
        ([COLORIZE_10x10.replace(b"10,", b"100000,").replace(b":10}", b":100000}"), b"x"],
         "too_large"),
        ([COLORIZE_10x10, b"\0" * 299], "bad_size"),
        ([COLORIZE_10x10], "bad_frames"),
        ([b'{"v": 2, "op": "hello"}', b"extra"], "bad_frames"),
        ([b'{"v": 2, "op": "models"}', b"extra"], "bad_frames"),
        ([COLORIZE_10x10.replace(b'"id":"a",', b""), b"\0" * 300], "bad_header"),
        ([COLORIZE_10x10.replace(b'"id":"a"', b'"id":"a","model":"nope"'), b"\0" * 300],
         "bad_request"),
        ([COLORIZE_10x10.replace(b'"id":"a"', b'"id":"a","model":"' + b"m" * 5000 + b'"'),
          b"\0" * 300], "bad_header"),
        ([b'{"v": 9, "op": "hello"}'], "unsupported_version"),
        ([b'{"v": true, "op": "hello"}'], "unsupported_version"),
        ([b"\x80\x04\x95pickle"], "bad_header"),
    ],
)  # fmt: skip
def test_malformed_requests_get_errors_and_daemon_survives(daemon, frames, code):
    reply, _ = raw_call(daemon, frames)
    assert reply["ok"] is False and reply["error"]["code"] == code and reply["error"]["message"]
    again, _ = raw_call(daemon, [HELLO])
    assert again["ok"]


def test_raw_router_garbage_without_envelope_does_not_kill_daemon(daemon):
    sock = dealer(daemon, 5)
    sock.send_multipart([b"\x00" * 10, b"", b"", b"more"])  # no delimiter, odd frames
    assert json.loads(sock.recv_multipart()[0])["ok"] is False
    sock.close()
    assert raw_call(daemon, [HELLO])[0]["ok"]


def test_frame_larger_than_any_valid_image_is_dropped_unread(make_daemon):
    endpoint = make_daemon(limits=Limits(max_pixels=10_000))
    with pytest.raises(ColorizeError, match="no reply"):  # the connection is cut
        raw_call(endpoint, [COLORIZE_10x10, b"\0" * 200_000], timeout_s=1.0)
    assert raw_call(endpoint, [HELLO])[0]["ok"]


def test_full_queue_answers_busy(make_daemon, photo):
    endpoint = make_daemon(workers=1, limits=Limits(queue_size=1, max_queued_per_client=1))
    sock = dealer(endpoint)
    for i in range(6):
        sock.send_multipart([b""] + colorize_frames(photo[..., :1], id=str(i)))
    replies = [json.loads(sock.recv_multipart()[1]) for _ in range(6)]
    sock.close()
    codes = [r["error"]["code"] for r in replies if not r["ok"]]
    assert codes and set(codes) == {"busy"}
    assert any(r["ok"] for r in replies)


def test_a_queued_job_can_be_cancelled(make_daemon, photo):
    limits = Limits(queue_size=4, max_queued_per_client=4)
    endpoint = make_daemon(slow=True, workers=1, limits=limits)  # "first" runs for 1.5 s
    sock = dealer(endpoint)
    for name in ("first", "second"):
        sock.send_multipart([b""] + colorize_frames(photo[..., :1], id=name))
    sock.send_multipart([b"", b'{"v": 2, "op": "cancel", "id": "second"}'])
    replies = {}
    for _ in range(3):
        reply = json.loads(sock.recv_multipart()[1])
        replies[(reply["op"], reply["id"])] = reply
    sock.close()
    assert replies[("colorize", "first")]["ok"]
    assert replies[("colorize", "second")]["error"]["code"] == "cancelled"
    assert replies[("cancel", "second")]["cancelled"] is True


@pytest.mark.parametrize(
    "endpoint, loopback",
    [
        ("tcp://127.0.0.1:5557", True),
        ("tcp://127.3.2.1:1", True),
        ("tcp://[::1]:5557", True),
        ("tcp://localhost:5557", True),
        ("ipc:///tmp/x", True),
        ("tcp://0.0.0.0:5557", False),
        ("tcp://192.168.1.20:5557", False),
        ("tcp://*:5557", False),
    ],
)
def test_loopback_detection(endpoint, loopback):
    assert is_loopback(endpoint) is loopback


def test_non_loopback_without_curve_is_refused(colorizer):
    with pytest.raises(ValueError, match="CURVE"):
        Daemon(colorizer, DaemonConfig(endpoint="tcp://0.0.0.0:5599"))


def test_curve_daemon_admits_only_clients_with_a_known_certificate(make_daemon, tmp_path):
    import zmq.auth

    keys = tmp_path / "keys"
    keys.mkdir()
    server_public, server_secret = zmq.auth.create_certificates(str(keys), "server")
    _, client_secret = zmq.auth.create_certificates(str(keys), "client")
    endpoint = make_daemon(curve_secret_key=Path(server_secret))
    server_key = zmq.auth.load_certificate(server_public)[0]

    def hello(certificate, timeout_s=3.0):
        return DaemonClient(endpoint, curve=CurveKeys(server_key, certificate)).hello(timeout_s)

    assert hello(Path(client_secret))["ok"]
    with pytest.raises(ColorizeError):  # an unknown client key is turned away
        hello(None, timeout_s=0.7)
    with pytest.raises(ColorizeError):  # so is a plain-text client
        raw_call(endpoint, [HELLO], timeout_s=0.5)
    # a certificate added while the daemon runs is admitted without a restart
    _, late_secret = zmq.auth.create_certificates(str(keys), "late")
    assert hello(Path(late_secret))["ok"]
