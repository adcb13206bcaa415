"""A real daemon on loopback: operations, concurrency, and survival of hostile input."""

import json
import threading

import numpy as np
import pytest
import zmq

from colorize_backend.daemon import Daemon, DaemonConfig, is_loopback
from tests.conftest import free_port

SMALL_RGB_HEADER = b'{"v":1,"op":"colorize","image":{"width":10,"height":10,"format":"rgb"}}'


def call(endpoint, frames, timeout_ms=20000):
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
    sock.setsockopt(zmq.SNDTIMEO, timeout_ms)
    sock.connect(endpoint)
    try:
        sock.send_multipart(frames)
        reply = sock.recv_multipart()
    finally:
        sock.close()
    return json.loads(reply[0]), reply[1:]


def colorize_frames(pixels, **extra):
    fmt = {1: "gray", 2: "graya", 3: "rgb", 4: "rgba"}[pixels.shape[2]]
    header = {
        "v": 1,
        "op": "colorize",
        "id": extra.pop("id", "t"),
        "image": {"width": pixels.shape[1], "height": pixels.shape[0], "format": fmt},
    }
    header.update(extra)
    return [json.dumps(header).encode(), pixels.tobytes()]


def test_hello_reports_protocol_models_and_providers(daemon):
    reply, frames = call(daemon, [b'{"v": 1, "op": "hello", "id": 7}'])
    assert reply["ok"] and reply["protocol"] == 1 and reply["id"] == 7
    assert reply["models"] == ["linear"] and "CPUExecutionProvider" in reply["providers"]
    assert frames == []


def test_models_lists_kind_and_size(daemon):
    reply, _ = call(daemon, [b'{"v": 1, "op": "models"}'])
    assert reply["models"][0]["kind"] == "auto" and reply["default_model"] == "linear"


def test_colorize_returns_full_size_colour(daemon, photo):
    reply, frames = call(daemon, colorize_frames(photo[..., :1]))
    assert reply["ok"] and reply["format"] == "rgb" and reply["model"] == "linear"
    assert set(reply["timings"]) >= {"queue", "preprocess", "network", "postprocess"}
    result = np.frombuffer(frames[0], np.uint8).reshape(photo.shape[0], photo.shape[1], 3)
    assert np.abs(result[..., 0].astype(int) - result[..., 2]).mean() > 5


def test_two_clients_at_once_get_their_own_replies(daemon, photo):
    results = {}

    def client(name, image):
        results[name] = call(daemon, colorize_frames(image, id=name))

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
    reply, _ = call(daemon, frames)
    assert reply["ok"] is False and reply["error"]["code"] == code and reply["error"]["message"]
    again, _ = call(daemon, [b'{"v": 1, "op": "hello"}'])
    assert again["ok"]


def test_raw_router_garbage_without_envelope_does_not_kill_daemon(daemon):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    sock.connect(daemon)
    sock.send_multipart([b"\x00" * 10, b"", b"", b"more"])  # no delimiter, odd frames
    assert json.loads(sock.recv_multipart()[0])["ok"] is False
    sock.close()
    assert call(daemon, [b'{"v": 1, "op": "hello"}'])[0]["ok"]


def test_frame_larger_than_any_valid_image_is_dropped_unread(engine):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    server = Daemon(engine, DaemonConfig(endpoint=endpoint, max_pixels=10_000))
    server.start()
    try:
        with pytest.raises(zmq.Again):  # the connection is cut; no reply ever comes
            call(endpoint, [SMALL_RGB_HEADER, b"\0" * 200_000], timeout_ms=1000)
        assert call(endpoint, [b'{"v": 1, "op": "hello"}'])[0]["ok"]
    finally:
        server.stop()


def test_full_queue_answers_busy(engine, photo):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    server = Daemon(engine, DaemonConfig(endpoint=endpoint, workers=1, queue_size=1))
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


def test_non_loopback_without_curve_is_refused(engine):
    with pytest.raises(ValueError, match="CURVE"):
        Daemon(engine, DaemonConfig(endpoint="tcp://0.0.0.0:5599"))


def test_curve_daemon_admits_only_clients_with_a_known_certificate(engine, tmp_path):
    import zmq.auth

    keys = tmp_path / "keys"
    keys.mkdir()
    server_public, server_secret = zmq.auth.create_certificates(str(keys), "server")
    _, client_secret = zmq.auth.create_certificates(str(keys), "client")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    server = Daemon(engine, DaemonConfig(endpoint=endpoint, curve_secret_key=server_secret))
    server.start()

    def hello(client_keys, timeout_ms=3000):
        sock = zmq.Context.instance().socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
        sock.setsockopt(zmq.SNDTIMEO, timeout_ms)  # a refused handshake leaves no peer to send to
        sock.curve_publickey, sock.curve_secretkey = client_keys
        sock.curve_serverkey = zmq.auth.load_certificate(server_public)[0]
        sock.connect(endpoint)
        try:
            sock.send_multipart([b'{"v": 1, "op": "hello"}'])
            return json.loads(sock.recv_multipart()[0])
        finally:
            sock.close()

    try:
        assert hello(zmq.auth.load_certificate(client_secret))["ok"]
        with pytest.raises(zmq.Again):  # an unknown client key is turned away
            hello(zmq.curve_keypair(), timeout_ms=700)
        with pytest.raises(zmq.Again):  # so is a plain-text client
            call(endpoint, [b'{"v": 1, "op": "hello"}'], timeout_ms=500)
    finally:
        server.stop()
