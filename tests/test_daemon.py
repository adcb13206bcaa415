"""A real daemon on loopback: operations, concurrency, and survival of hostile input."""

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import zmq

from colorize_backend.client import CurveKeys, DaemonClient
from colorize_backend.daemon import Daemon, DaemonConfig, is_loopback
from colorize_backend.errors import ColorizeError
from tests.helpers import colorize_frames, loopback_endpoint, raw_call

SMALL_RGB_HEADER = b'{"v":1,"op":"colorize","image":{"width":10,"height":10,"format":"rgb"}}'


def test_hello_reports_protocol_models_and_providers(daemon):
    reply, frames = raw_call(daemon, [b'{"v": 1, "op": "hello", "id": 7}'])
    assert reply["ok"] and reply["protocol"] == 1 and reply["id"] == 7
    assert reply["models"] == ["linear"] and "CPUExecutionProvider" in reply["providers"]
    assert frames == []


def test_models_lists_kind_and_size(daemon):
    reply, _ = raw_call(daemon, [b'{"v": 1, "op": "models"}'])
    assert reply["models"][0]["kind"] == "auto" and reply["default_model"] == "linear"


def test_colorize_returns_full_size_colour(daemon, photo):
    reply, frames = raw_call(daemon, colorize_frames(photo[..., :1]))
    assert reply["ok"] and reply["format"] == "rgb" and reply["model"] == "linear"
    assert set(reply["timings"]) >= {"queue", "preprocess", "network", "postprocess"}
    result = np.frombuffer(frames[0], np.uint8).reshape(photo.shape[0], photo.shape[1], 3)
    assert np.abs(result[..., 0].astype(int) - result[..., 2]).mean() > 5


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


@pytest.mark.parametrize(
    "frames, code",
    [
        ([b"garbage"], "bad_header"),
        (
            [
                b'{"v": 1, "op": "colorize", "image": {"width": 100000, "height": 100000, '
                b'"format": "rgb"}}',
                b"x",
            ],
            "too_large",
        ),
        (
            [
                SMALL_RGB_HEADER,
                b"\0" * 299,
            ],
            "bad_size",
        ),
        (
            [b'{"v": 1, "op": "colorize", "image": {"width": 10, "height": 10, "format": "rgb"}}'],
            "bad_frames",
        ),
        (
            [
                b'{"v": 1, "op": "colorize", "model": "nope", "image": {"width": 4, "height": 4, '
                b'"format": "gray"}}',
                b"\0" * 16,
            ],
            "bad_request",
        ),
        ([b'{"v": 9, "op": "hello"}'], "unsupported_version"),
        ([b"\x80\x04\x95pickle"], "bad_header"),
    ],
)
def test_malformed_requests_get_errors_and_daemon_survives(daemon, frames, code):
    reply, _ = raw_call(daemon, frames)
    assert reply["ok"] is False and reply["error"]["code"] == code and reply["error"]["message"]
    again, _ = raw_call(daemon, [b'{"v": 1, "op": "hello"}'])
    assert again["ok"]


def test_raw_router_garbage_without_envelope_does_not_kill_daemon(daemon):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    sock.connect(daemon)
    sock.send_multipart([b"\x00" * 10, b"", b"", b"more"])  # no delimiter, odd frames
    assert json.loads(sock.recv_multipart()[0])["ok"] is False
    sock.close()
    assert raw_call(daemon, [b'{"v": 1, "op": "hello"}'])[0]["ok"]


def test_frame_larger_than_any_valid_image_is_dropped_unread(colorizer):
    endpoint = loopback_endpoint()
    server = Daemon(colorizer, DaemonConfig(endpoint=endpoint, max_pixels=10_000))
    server.start()
    try:
        with pytest.raises(ColorizeError, match="no reply"):  # the connection is cut
            raw_call(endpoint, [SMALL_RGB_HEADER, b"\0" * 200_000], timeout_s=1.0)
        assert raw_call(endpoint, [b'{"v": 1, "op": "hello"}'])[0]["ok"]
    finally:
        server.stop()


def test_full_queue_answers_busy(colorizer, photo):
    endpoint = loopback_endpoint()
    server = Daemon(colorizer, DaemonConfig(endpoint=endpoint, workers=1, queue_size=1))
    server.start()
    try:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, 30000)
        sock.connect(endpoint)
        for i in range(6):
            sock.send_multipart([b""] + colorize_frames(photo[..., :1], id=i))
        replies = [json.loads(sock.recv_multipart()[1]) for _ in range(6)]
        sock.close()
        codes = [r["error"]["code"] for r in replies if not r["ok"]]
        assert codes and set(codes) == {"busy"}
        assert any(r["ok"] for r in replies)
    finally:
        server.stop()


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


def test_curve_daemon_admits_only_clients_with_a_known_certificate(colorizer, tmp_path):
    import zmq.auth

    keys = tmp_path / "keys"
    keys.mkdir()
    server_public, server_secret = zmq.auth.create_certificates(str(keys), "server")
    _, client_secret = zmq.auth.create_certificates(str(keys), "client")
    endpoint = loopback_endpoint()
    server = Daemon(colorizer, DaemonConfig(endpoint=endpoint, curve_secret_key=server_secret))
    server.start()

    def hello(certificate, timeout_s=3.0):
        server_key = zmq.auth.load_certificate(server_public)[0]
        return DaemonClient(endpoint, curve=CurveKeys(server_key, certificate)).hello(timeout_s)

    try:
        assert hello(Path(client_secret))["ok"]
        with pytest.raises(ColorizeError):  # an unknown client key is turned away
            hello(None, timeout_s=0.7)
        with pytest.raises(ColorizeError):  # so is a plain-text client
            raw_call(endpoint, [b'{"v": 1, "op": "hello"}'], timeout_s=0.5)
    finally:
        server.stop()
