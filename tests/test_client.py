"""The plug-in's host-agnostic client against real daemons on loopback."""

from __future__ import annotations

import json
import sys
import threading
import time

import pytest
import zmq

from tests.helpers import REPO, loopback_endpoint, stop_pid
from tests.helpers import plugin_client as client_for

sys.path.insert(0, str(REPO / "plugin" / "colorize"))
from colorize_client import BackendError  # noqa: E402


def launcher_for(manifest, endpoint: str) -> list[str]:
    return [
        sys.executable, "-m", "colorize_backend.tools.cli", "--manifest", str(manifest),
        "serve", "--endpoint", endpoint,
    ]  # fmt: skip


def test_colorize_round_trip_with_progress(daemon, photo):
    client = client_for(daemon)
    hello = client.ensure_daemon()
    assert hello["protocol"] == 2 and client.limits["max_pixels"] == 4_000_000
    grey = photo[..., :1].tobytes()
    stages = []
    reply, result = client.colorize(
        photo.shape[1], photo.shape[0], "gray", grey, offset=(3, 4),
        progress=lambda stage, done: stages.append(stage),
    )  # fmt: skip
    assert reply["format"] == "rgb" and len(result) == photo.shape[0] * photo.shape[1] * 3
    assert "network" in stages


def test_refusal_is_reported_with_the_daemons_message(daemon):
    with pytest.raises(BackendError, match="unknown model 'nope'"):
        client_for(daemon).colorize(2, 2, "gray", b"\0" * 4, {"model": "nope"})


def test_payload_mismatch_is_caught_before_sending(daemon):
    with pytest.raises(BackendError, match="does not match"):
        client_for(daemon).colorize(2, 2, "rgb", b"\0" * 4)


def test_a_layer_over_the_limits_is_refused_before_sending(daemon):
    client = client_for(daemon)
    client.hello()
    with pytest.raises(BackendError, match="accepts at most 4000000"):
        client.colorize(2001, 2000, "gray", b"\0" * (2001 * 2000))


def fake_daemon(endpoint: str, replies: list, seen: list) -> threading.Thread:
    """A REP socket answering hello with scripted replies (None = stay silent once; bytes =
    sent as they are)."""

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
            sock.send(reply if isinstance(reply, bytes) else json.dumps(reply).encode())
        sock.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_protocol_version_mismatch_is_a_clear_error():
    endpoint = loopback_endpoint()
    seen: list = []
    fake_daemon(endpoint, [{"v": 1, "ok": True, "protocol": 1}], seen)
    with pytest.raises(BackendError, match="protocol v1 but this plug-in needs v2"):
        client_for(endpoint).hello(timeout_s=5)
    assert seen[0] == {"op": "hello", "v": 2}


def test_a_daemon_of_another_installation_is_named():
    endpoint = loopback_endpoint()
    other = {"v": 2, "ok": True, "protocol": 2, "install": "/old/checkout/.venv", "pid": 42}
    fake_daemon(endpoint, [other], [])
    client = client_for(endpoint, backend_prefix="/new/.venv")
    with pytest.raises(BackendError, match="Another installation.*/old/checkout/.venv.*stop"):
        client.hello(timeout_s=5)


def test_a_foreign_program_on_the_port_is_named_not_a_traceback():
    endpoint = loopback_endpoint()
    fake_daemon(endpoint, [b"HTTP/1.1 400 Bad Request"], [])
    with pytest.raises(BackendError, match="not the colorize backend answers"):
        client_for(endpoint).hello(timeout_s=5)


def test_hello_timeout_is_retried_on_a_fresh_socket():
    endpoint = loopback_endpoint()
    seen: list = []
    fake_daemon(endpoint, [None, {"v": 2, "ok": True, "protocol": 2}], seen)
    reply = client_for(endpoint).hello(timeout_s=1.0, retries=1)
    assert reply["ok"] and len(seen) == 1


def test_unreachable_without_launcher_says_how_to_start_it():
    client = client_for(loopback_endpoint(), hello_timeout_s=0.2)
    with pytest.raises(BackendError, match="colorize-backend serve"):
        client.ensure_daemon()


def test_ensure_daemon_starts_it_from_the_launcher(test_manifest, tmp_path):
    endpoint = loopback_endpoint()
    launcher = launcher_for(test_manifest, endpoint) + ["--log-file", str(tmp_path / "d.log")]
    client = client_for(
        endpoint,
        launcher=launcher,
        log_file=str(tmp_path / "d.log"),
        hello_timeout_s=0.5,
        start_timeout_s=60,
    )
    messages = []
    hello = client.ensure_daemon(progress=messages.append)
    try:
        assert hello["models"] == ["linear"] and messages == ["Starting the colorizer..."]
        assert "serving on " + endpoint in (tmp_path / "d.log").read_text()
    finally:
        stop_pid(hello["pid"])


def test_wake_starts_the_daemon_without_waiting_and_only_once(test_manifest, tmp_path):
    """As a dialog opens, the daemon starts in the background; OK then finds it warm."""
    endpoint = loopback_endpoint()
    launcher = launcher_for(test_manifest, endpoint) + ["--log-file", str(tmp_path / "d.log")]
    client = client_for(endpoint, launcher=launcher, log_file=str(tmp_path / "d.log"))
    started = time.monotonic()
    client.wake()
    assert time.monotonic() - started < 2.0 and client.daemon is not None  # did not wait
    launched = client.daemon.pid
    client.wake()  # a second dialog opening: nothing started twice
    hello = client.ensure_daemon()
    try:
        assert hello["pid"] == launched
    finally:
        stop_pid(hello["pid"])


def test_a_launcher_that_fails_is_reported_at_once(test_manifest, tmp_path):
    """The daemon exits at once (here: the endpoint is not valid); the client says why
    within seconds instead of waiting for the start timeout."""
    endpoint = loopback_endpoint()
    launcher = launcher_for(test_manifest, "tcp://127.0.0.1:notaport")
    client = client_for(
        endpoint, launcher=launcher, log_file=str(tmp_path / "d.log"), hello_timeout_s=0.3,
        start_timeout_s=60,
    )  # fmt: skip
    started = time.monotonic()
    with pytest.raises(BackendError, match="could not start"):
        client.ensure_daemon()
    assert time.monotonic() - started < 30


def test_a_missing_log_folder_does_not_stop_the_launch(test_manifest, tmp_path):
    endpoint = loopback_endpoint()
    log = tmp_path / "not" / "yet" / "there" / "d.log"
    client = client_for(
        endpoint, launcher=launcher_for(test_manifest, endpoint), log_file=str(log),
        hello_timeout_s=0.5,
    )  # fmt: skip
    hello = client.ensure_daemon()
    stop_pid(hello["pid"])


def test_a_local_client_passes_pixels_through_shared_memory(daemon, photo):
    client = client_for(daemon)
    client.hello()
    assert client.shared_memory
    grey = photo[..., :1]
    reply, result = client.colorize(photo.shape[1], photo.shape[0], "gray", grey.tobytes())
    assert reply["shared"] is True and isinstance(result, memoryview)
    via_socket = client_for(daemon)  # the same request through the socket (no hello: no shm)
    _, expected = via_socket.colorize(photo.shape[1], photo.shape[0], "gray", grey.tobytes())
    assert bytes(result) == bytes(expected)
    first = client.shared.name
    client.release()
    client.colorize(photo.shape[1], photo.shape[0], "gray", grey.tobytes())
    assert client.shared.name == first  # the daemon leased the same buffer again
    client.release()


def test_the_daemon_refuses_buffers_it_did_not_lease(daemon):
    from colorize_backend.daemon.client import DaemonClient

    header = {"v": 2, "op": "colorize", "id": "s", "image": {"width": 2, "height": 2,
              "format": "gray"}, "shm": {"image": 0, "result": 8}}  # fmt: skip
    for name in ("../../etc/passwd", "colorize-0123456789abcdef.buf"):
        header["shm"]["name"] = name
        reply = json.loads(DaemonClient(daemon).call([json.dumps(header).encode()])[0])
        assert reply["error"]["code"] == "bad_request" and "not leased" in reply["error"]["message"]


def test_the_plugin_asks_the_daemon_which_models_it_serves(daemon):
    served = client_for(daemon).models()
    assert [(m["name"], m["kind"], m["default"]) for m in served] == [("linear", "auto", True)]
    assert all("path" not in m for m in served)  # no server paths go to clients
