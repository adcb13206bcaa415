"""The plug-in's host-agnostic client against real daemons on loopback."""

from __future__ import annotations

import json
import sys
import threading
import time

import pytest
import zmq

from tests.helpers import REPO, loopback_endpoint, stop_pid

sys.path.insert(0, str(REPO / "plugin" / "colorize"))
from colorize_client import BackendError, Client, load_config  # noqa: E402


def client_for(endpoint: str, **extra) -> Client:
    return Client(dict(load_config("/nonexistent.json"), endpoint=endpoint, **extra))


def test_colorize_round_trip(daemon, photo):
    client = client_for(daemon)
    hello = client.ensure_daemon()
    assert hello["protocol"] == 1
    grey = photo[..., :1].tobytes()
    reply, result = client.colorize(photo.shape[1], photo.shape[0], "gray", grey, offset=(3, 4))
    assert reply["format"] == "rgb" and len(result) == photo.shape[0] * photo.shape[1] * 3


def test_refusal_is_reported_with_the_daemons_message(daemon):
    with pytest.raises(BackendError, match="unknown model 'nope'"):
        client_for(daemon).colorize(2, 2, "gray", b"\0" * 4, model="nope")


def test_payload_mismatch_is_caught_before_sending(daemon):
    with pytest.raises(BackendError, match="does not match"):
        client_for(daemon).colorize(2, 2, "rgb", b"\0" * 4)


def fake_daemon(endpoint: str, replies: list[dict | None], seen: list) -> threading.Thread:
    """A REP socket answering hello with scripted replies (None = stay silent once)."""

    def serve():
        sock = zmq.Context.instance().socket(zmq.REP)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(endpoint)
        for reply in replies:
            if reply is None:
                sock.close()  # drop the request: the client must time out and retry
                sock = zmq.Context.instance().socket(zmq.REP)
                sock.setsockopt(zmq.LINGER, 0)
                time.sleep(0.05)
                sock.bind(endpoint)
                continue
            seen.append(json.loads(sock.recv()))
            sock.send(json.dumps(reply).encode())
        sock.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_protocol_version_mismatch_is_a_clear_error():
    endpoint = loopback_endpoint()
    seen: list = []
    fake_daemon(endpoint, [{"v": 2, "ok": True, "protocol": 2}], seen)
    with pytest.raises(BackendError, match="protocol v2 but this plug-in needs v1"):
        client_for(endpoint).hello(timeout_s=5)
    assert seen[0] == {"op": "hello", "v": 1}


def test_timeout_is_retried_once_on_a_fresh_socket():
    endpoint = loopback_endpoint()
    seen: list = []
    fake_daemon(endpoint, [None, {"v": 1, "ok": True, "protocol": 1}], seen)
    reply = client_for(endpoint).hello(timeout_s=1.0, retries=1)
    assert reply["ok"] and len(seen) == 1


def test_unreachable_without_launcher_says_how_to_start_it():
    client = client_for(loopback_endpoint(), hello_timeout_s=0.2)
    with pytest.raises(BackendError, match="colorize-backend serve"):
        client.ensure_daemon()


def test_ensure_daemon_starts_it_from_the_launcher(test_manifest, tmp_path):
    endpoint = loopback_endpoint()
    launcher = [
        sys.executable,
        "-m",
        "colorize_backend.cli",
        "--manifest",
        str(test_manifest),
        "serve",
        "--endpoint",
        endpoint,
    ]
    client = client_for(
        endpoint,
        launcher=launcher,
        log_file=str(tmp_path / "daemon.log"),
        hello_timeout_s=0.5,
        start_timeout_s=60,
    )
    messages = []
    hello = client.ensure_daemon(progress=messages.append)
    try:
        assert hello["models"] == ["linear"] and messages == ["Starting the colorize backend..."]
        assert "serving on " + endpoint in (tmp_path / "daemon.log").read_text()
    finally:
        stop_pid(hello["pid"])
