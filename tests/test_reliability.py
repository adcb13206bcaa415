"""The daemon and the plug-in's client never hang, never lose track, and stay bounded.

Each test reproduces one of the failures reported in the robustness issue, on loopback,
bounded in time and count: a daemon killed mid-request, an oversized layer, a port held
by another program, a client that goes away, a crowd of simultaneous clients, a thin
strip image, unfinished multipart messages, model paths, memory after a large request,
idle connections, a damaged model, malformed messages, the log, CURVE, and the daemon's
lifecycle. docs/reliability.md has the measured figures.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
from colorize_backend.core.engine import Engine
from colorize_backend.core.errors import ColorizeError
from colorize_backend.core.manifest import Manifest, sha256_of
from colorize_backend.core.options import ColorizeOptions
from colorize_backend.core.pipeline import Colorizer
from colorize_backend.daemon.front import Daemon, DaemonConfig
from colorize_backend.daemon.protocol import Limits
from colorize_backend.daemon.stuck import EXIT_STUCK

from tests.helpers import (
    REPO,
    SlowColorizer,
    free_port,
    loopback_endpoint,
    plugin_client,
    raw_call,
    start_daemon,
    stop_pid,
)
from tests.onnx_models import write_endless_auto_model, write_manifest

sys.path.insert(0, str(REPO / "plugin" / "colorize"))
from colorize_client import BackendError  # noqa: E402

HELLO = b'{"v": 2, "op": "hello"}'


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def grey_photo(megapixels: float) -> np.ndarray:
    side = int((megapixels * 1e6) ** 0.5)
    y, x = np.mgrid[0:side, 0:side]
    return (128 + 100 * np.sin(x / 50.0) * np.cos(y / 40.0)).astype(np.uint8)[..., None]


# 1 ------------------------------------------------------------ a daemon killed mid-request


def test_a_daemon_killed_mid_request_is_noticed_within_10_s(test_manifest):
    daemon = start_daemon(loopback_endpoint(), test_manifest)
    client = plugin_client(daemon.endpoint)
    pixels = grey_photo(50)  # long enough to be killed in the middle of it
    killed = []

    def kill():
        os.kill(daemon.process.pid, signal.SIGKILL)
        killed.append(time.monotonic())

    timer = threading.Timer(0.2, kill)
    try:
        timer.start()
        with pytest.raises(BackendError) as failure:
            client.colorize(pixels.shape[1], pixels.shape[0], "gray", pixels.tobytes())
        noticed = time.monotonic() - killed[0]
    finally:
        timer.cancel()
        daemon.stop()
    assert failure.value.code == "dead" and "stopped responding" in failure.value.message
    assert noticed < 10


def test_a_colorize_request_is_never_sent_twice():
    """A daemon that takes the request, signs life once and then falls silent."""
    endpoint = loopback_endpoint()
    received = []

    def silent_daemon():
        sock = zmq.Context.instance().socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(endpoint)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            if sock.poll(100):
                frames = sock.recv_multipart()
                header = json.loads(frames[2])
                received.append(header["op"])
                progress = {"v": 2, "ok": True, "op": "progress", "id": header["id"],
                            "stage": "network", "done": 0.3}  # fmt: skip
                sock.send_multipart(frames[:2] + [json.dumps(progress).encode()])
        sock.close()

    thread = threading.Thread(target=silent_daemon, daemon=True)
    thread.start()
    client = plugin_client(endpoint, heartbeat_timeout_s=1.5)
    with pytest.raises(BackendError, match="stopped responding"):
        client.colorize(4, 4, "gray", b"\0" * 16)
    thread.join()
    assert received == ["colorize"]


# 2 ------------------------------------------------------------ the largest valid request


def test_the_largest_valid_layer_fits_the_frame_limit(make_daemon):
    endpoint = make_daemon(limits=Limits(max_pixels=10_000))
    rgba_float = np.full((100, 100, 4), 0.5, np.float32)
    from colorize_backend.daemon.client import DaemonClient

    header, result = DaemonClient(endpoint).colorize(rgba_float)
    assert header["format"] == "rgba" and result.dtype == np.float32
    too_many_pixels = np.zeros((101, 100, 1), np.uint8)  # answered, not dropped
    with pytest.raises(ColorizeError, match="at most 10000"):
        DaemonClient(endpoint).colorize(too_many_pixels)


# 3 ------------------------------------------------------------ a port held by another program


def test_a_daemon_that_cannot_bind_is_reported_at_once(test_manifest, tmp_path):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    endpoint = f"tcp://127.0.0.1:{holder.getsockname()[1]}"
    launcher = [sys.executable, "-m", "colorize_backend.tools.cli", "--manifest",
                str(test_manifest), "serve", "--endpoint", endpoint]  # fmt: skip
    client = plugin_client(endpoint, launcher=launcher, log_file=str(tmp_path / "d.log"),
                           hello_timeout_s=0.3)  # fmt: skip
    started = time.monotonic()
    try:
        with pytest.raises(BackendError, match="could not start.*Address already in use"):
            client.ensure_daemon()
    finally:
        holder.close()
    assert time.monotonic() - started < 15


# 4 ------------------------------------------------------------ progress, cancel, gone clients


def test_a_client_that_goes_away_has_its_job_cancelled(colorizer, caplog):
    caplog.set_level("INFO")
    endpoint = loopback_endpoint()
    slow = SlowColorizer(colorizer.manifest, colorizer.engine)
    server = Daemon(slow, DaemonConfig(endpoint=endpoint, workers=1))
    server.start()
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    pixels = grey_photo(1)
    header = {
        "v": 2,
        "op": "colorize",
        "id": "gone",
        "progress": True,
        "image": {"width": pixels.shape[1], "height": pixels.shape[0], "format": "gray"},
    }
    try:
        sock.send_multipart([b"", json.dumps(header).encode(), pixels.tobytes()])  # fmt: skip
        assert sock.poll(10_000)  # the first sign of life: the job is running
        sock.close()  # as GIMP does when the user presses Cancel: it ends the plug-in
        deadline = time.monotonic() + 5
        while "cancelled while running" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "client of request gone is gone: job cancelled" in caplog.text
        assert "request gone cancelled while running" in caplog.text
        assert raw_call(endpoint, [HELLO])[0]["ok"]
    finally:
        server.stop()


# 5 ------------------------------------------------------------ many clients at once


def test_sixteen_simultaneous_clients_all_get_their_colour(make_daemon, photo):
    endpoint = make_daemon(workers=1, limits=Limits(queue_size=4, max_queued_per_client=1))
    small = photo[:96, :128, :1]
    outcomes: list = []

    def one_user():
        try:
            reply, _ = plugin_client(endpoint).colorize(128, 96, "gray", small.tobytes())
            outcomes.append(reply["ok"])
        except BackendError as exc:
            outcomes.append(exc.message)

    users = [threading.Thread(target=one_user) for _ in range(16)]
    for user in users:
        user.start()
    for user in users:
        user.join(120)
    assert outcomes == [True] * 16


# 6 ------------------------------------------------------------ extreme aspect ratios


@pytest.mark.parametrize("width, height", [(20000, 50), (100000, 10)])
def test_a_thin_strip_is_colorized_quickly_in_bounded_memory(colorizer, width, height):
    from colorize_backend.daemon import memory

    strip = (np.arange(width * height) % 251).astype(np.uint8).reshape(height, width, 1)
    memory.trim()
    if not memory.reset_peak():
        pytest.skip("this kernel cannot reset the peak memory figure")
    before = memory.rss_bytes()
    started = time.perf_counter()
    result = colorizer.colorize(strip).pixels
    elapsed = time.perf_counter() - started
    assert result.shape == (height, width, 3) and elapsed < 10
    assert memory.peak_rss_bytes() - before < 300_000_000  # was 8.3-8.8 GiB


# 7 ------------------------------------------------------------ unfinished multipart messages


def zmtp_peer(port: int) -> socket.socket:
    """A raw TCP peer that completes the ZMTP 3.0 NULL handshake as a DEALER."""
    peer = socket.create_connection(("127.0.0.1", port))
    greeting = b"\xff" + b"\0" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\0")
    peer.sendall(greeting + b"\0" + b"\0" * 31)
    body = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", 6) + b"DEALER"
    peer.sendall(b"\x04" + bytes([len(body)]) + body)
    return peer


def test_an_unfinished_multipart_message_cannot_grow_the_daemon(test_manifest):
    port = free_port()
    daemon = start_daemon(f"tcp://127.0.0.1:{port}", test_manifest, "--memory-budget-mb", "100")
    try:
        baseline = rss_mb(daemon.process.pid)
        attacker = zmtp_peer(port)
        frame = b"\x03" + struct.pack(">Q", 8_000_000) + b"\0" * 8_000_000  # MORE | LONG
        sent = 0
        try:
            for _ in range(40):  # 320 MB, never finished
                attacker.sendall(frame)
                sent += 1
        except OSError:
            pass  # the guard cut the connection while we were still sending
        deadline = time.monotonic() + 20
        while rss_mb(daemon.process.pid) > baseline + 150 and time.monotonic() < deadline:
            time.sleep(0.2)
        held = rss_mb(daemon.process.pid) - baseline
        attacker.close()
        assert held < 150, f"{held:.0f} MB still held after {sent} frames"
        assert raw_call(daemon.endpoint, [HELLO])[0]["ok"]
    finally:
        daemon.stop()


# 8 ------------------------------------------------------------ models by path


def test_models_by_path_only_from_allowed_folders_without_revealing_files(tmp_path):
    (tmp_path / "shipped").mkdir()
    manifest = Manifest.load(write_manifest(tmp_path / "shipped"))
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    for folder in (allowed, outside):
        folder.mkdir()
        shutil.copy(tmp_path / "shipped/linear.onnx", folder / "mine.onnx")
    engine = Engine(["CPUExecutionProvider"], threads=1, max_sessions=2)
    colorizer = Colorizer(manifest, engine, model_dirs=[allowed], any_model_path=False)
    grey = np.full((64, 64, 1), 100, np.uint8)
    assert colorizer.colorize(grey, ColorizeOptions(model="mine")).model == "mine"  # by name
    for spelling in range(20):  # one file, many spellings: one session
        name = str(allowed / ("./" * spelling) / "mine.onnx")
        assert colorizer.colorize(grey, ColorizeOptions(model=name)).model == "mine"
    assert len(engine._runners) == 1
    messages = []
    for name in (str(outside / "mine.onnx"), str(outside / "missing.onnx"), "/etc/passwd", "../x"):
        with pytest.raises(ColorizeError) as refused:
            colorizer.colorize(grey, ColorizeOptions(model=name))
        assert str(allowed) not in refused.value.message  # no server folder is revealed
        messages.append(
            re.sub(r"unknown model '.*?';", "unknown model NAME;", refused.value.message)
        )
    assert len(set(messages)) == 1  # a file outside and a missing one read alike


# 9 ------------------------------------------------------------ memory after a large request


def test_memory_is_released_after_a_large_request(test_manifest):
    daemon = start_daemon(loopback_endpoint(), test_manifest)
    client = plugin_client(daemon.endpoint)
    try:
        small = grey_photo(0.5)
        client.colorize(small.shape[1], small.shape[0], "gray", small.tobytes())
        baseline = rss_mb(daemon.process.pid)
        large = grey_photo(30)
        client.colorize(large.shape[1], large.shape[0], "gray", large.tobytes())
        time.sleep(2.0)  # the daemon hands memory back after a second without work
        after = rss_mb(daemon.process.pid)
    finally:
        daemon.stop()
    assert after - baseline < 120, f"{after - baseline:.0f} MB kept after a 30 MP request"


# 10 ------------------------------------------------------------ idle connections


def test_idle_connections_cannot_lock_clients_out(test_manifest):
    port = free_port()
    daemon = start_daemon(f"tcp://127.0.0.1:{port}", test_manifest, "--max-connections", "50")
    idle = []
    try:
        for _ in range(200):  # handshaken and then silent: held until the guard sheds them
            idle.append(zmtp_peer(port))
        idle += [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]  # no handshake
        time.sleep(0.5)
        assert raw_call(daemon.endpoint, [HELLO], timeout_s=10)[0]["ok"]
        open_fds = len(os.listdir(f"/proc/{daemon.process.pid}/fd"))
        assert open_fds < 200, f"{open_fds} descriptors open"
    finally:
        for peer in idle:
            peer.close()
        daemon.stop()


# 11 ------------------------------------------------------------ a damaged model file


def test_a_damaged_model_is_refused_with_a_clear_message(tmp_path, photo):
    manifest_path = write_manifest(tmp_path)
    model = tmp_path / "linear.onnx"
    data = bytearray(model.read_bytes())
    data[-64:] = bytes(255 - b for b in data[-64:])  # flip 64 weight bytes
    model.write_bytes(bytes(data))
    colorizer = Colorizer(Manifest.load(manifest_path), Engine(["CPUExecutionProvider"]))
    with pytest.raises(ColorizeError, match="does not match the manifest's sha256"):
        colorizer.colorize(photo[..., :1])


# 12 ------------------------------------------------------------ fuzzed messages


def malformed_messages(count: int, seed: int = 7) -> list[list[bytes]]:
    """Random malformed requests: junk, wrong types, bad sizes, odd frames, deep JSON."""
    rng = random.Random(seed)
    values = [None, True, 1.5, -1, 0, 2**70, "", "x" * 300, [], {}, [1, 2], {"a": 1}, "gray"]
    fields = ["v", "op", "id", "image", "reference", "model", "strength", "reference_mode",
              "progress", "width", "height", "format", "sample", "offset"]  # fmt: skip
    messages = []
    for _ in range(count):
        kind = rng.randrange(6)
        if kind == 0:
            messages.append([rng.randbytes(rng.randrange(0, 200))])
            continue
        image = {"width": rng.choice([4, 0, -3, "4", 4.0, 10**9]), "height": 4,
                 "format": rng.choice(["gray", "rgb", "cmyk", 3]), "sample": "u8"}  # fmt: skip
        header = {"v": 2, "op": rng.choice(["colorize", "hello", "cancel", "models", "nope"]),
                  "id": rng.choice(["a", "b c", 5, "x" * 80]), "image": image}  # fmt: skip
        for _ in range(rng.randrange(1, 4)):
            target = image if rng.random() < 0.4 else header
            target[rng.choice(fields)] = rng.choice(values)
        body = json.dumps(header).encode()
        if kind == 1:
            body = b"[" * rng.randrange(500, 3000) + body
        elif kind == 2:
            body = body[: rng.randrange(1, len(body))]
        frames = [body] + [rng.randbytes(rng.randrange(0, 64)) for _ in range(rng.randrange(3))]
        messages.append(frames)
    return messages


def test_two_thousand_malformed_messages_each_get_an_error_reply(daemon):
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 10_000)
    sock.connect(daemon)
    answered = refused = 0
    for frames in malformed_messages(2000):
        sock.send_multipart(frames)
        reply = json.loads(sock.recv_multipart()[0])
        answered += 1
        refused += reply["ok"] is False
        assert reply["ok"] is False or reply.get("op") in ("hello", "models", "cancel")
    sock.close()
    assert answered == 2000 and refused > 1900


# 14 ------------------------------------------------------------ the log


def test_junk_requests_do_not_flood_the_log(test_manifest, tmp_path):
    log = tmp_path / "daemon.log"
    daemon = start_daemon(loopback_endpoint(), test_manifest, "--log-file", str(log))
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 10_000)
    sock.connect(daemon.endpoint)
    junk = json.dumps({"v": 2, "op": "colorize", "id": "j", "model": "m" * 60_000}).encode()
    try:
        for _ in range(1000):
            sock.send(junk)
            sock.recv()
    finally:
        sock.close()
        daemon.stop()
    text = "".join(p.read_text() for p in tmp_path.glob("daemon.log*"))
    assert max(len(line) for line in text.splitlines()) < 600
    assert len(text) < 1000 * 600


# 15 ------------------------------------------------------------ CURVE


def test_an_unknown_curve_client_is_told_and_logged(make_daemon, tmp_path, caplog):
    caplog.set_level("INFO")
    import zmq.auth

    keys = tmp_path / "keys"
    keys.mkdir()
    public, secret = zmq.auth.create_certificates(str(keys), "server")
    endpoint = make_daemon(curve_secret_key=Path(secret))
    server_key = zmq.auth.load_certificate(public)[0].decode()
    strangers = tmp_path / "elsewhere"
    strangers.mkdir()
    _, unknown = zmq.auth.create_certificates(str(strangers), "stranger")
    client = plugin_client(
        endpoint, server_public_key=server_key, client_key_file=unknown, hello_timeout_s=0.5
    )
    for _ in range(2):
        with pytest.raises(BackendError, match="authentication failed"):
            client.hello()
    assert caplog.text.count("refused a client with unknown key") == 1  # rate-limited


# 18 ------------------------------------------------------------ lifecycle


def test_stop_ends_the_daemon_and_a_second_one_is_refused(test_manifest):
    endpoint = loopback_endpoint()
    first = start_daemon(endpoint, test_manifest)
    try:
        second = subprocess.run(
            [sys.executable, "-m", "colorize_backend.tools.cli", "--manifest", str(test_manifest),
             "serve", "--endpoint", endpoint],
            capture_output=True, text=True, timeout=60, cwd=REPO,
        )  # fmt: skip
        assert second.returncode == 2
        assert f"pid {first.process.pid}" in second.stderr and "already serves" in second.stderr
        stop = subprocess.run(
            [sys.executable, "-m", "colorize_backend.tools.cli", "stop", "--endpoint", endpoint],
            capture_output=True, text=True, timeout=60, cwd=REPO,
        )  # fmt: skip
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert first.process.wait(20) == 0
    finally:
        first.stop()


def test_an_idle_daemon_exits_by_itself(test_manifest):
    daemon = start_daemon(loopback_endpoint(), test_manifest, "--idle-timeout", "0.05")
    try:
        assert daemon.process.wait(30) == 0  # 3 s of idleness, then a clean exit
    finally:
        daemon.stop()
    stop_pid(daemon.process.pid)


def test_a_stuck_job_gets_every_client_an_answer_and_a_fresh_daemon(tmp_path):
    """A worker that never returns (a model that runs for an hour stands in for a runtime
    deadlocked in native code: neither can be interrupted) must not leave its client, or the
    clients queued behind it, waiting: past the stage bound each gets a request to retry,
    the log gets every thread's stack, the daemon exits, and the next request starts one."""
    manifest = write_manifest(tmp_path)
    endless = write_endless_auto_model(tmp_path / "endless.onnx")
    listing = json.loads(manifest.read_text())
    listing["models"].append(dict(listing["models"][0], name="endless", file=endless.name,
                                  sha256=sha256_of(endless)))  # fmt: skip
    manifest.write_text(json.dumps(listing))
    endpoint = loopback_endpoint()
    daemon = start_daemon(endpoint, manifest, "--stage-timeout", "2")
    pixels = grey_photo(0.01)
    height, width = pixels.shape[:2]
    answers: dict[str, BackendError] = {}

    def colorize(name: str, model: str) -> None:
        client = plugin_client(endpoint, request_timeout_s=60.0)
        try:
            client.colorize(width, height, "gray", pixels.tobytes(), options={"model": model})
        except BackendError as exc:
            answers[name] = exc

    try:
        started = time.monotonic()
        stuck = threading.Thread(target=colorize, args=("stuck", "endless"))
        stuck.start()
        time.sleep(0.5)
        queued = threading.Thread(target=colorize, args=("queued", "linear"))
        queued.start()
        stuck.join(60)
        queued.join(60)
        answered = time.monotonic() - started
        status = daemon.process.wait(30)
    finally:
        log = daemon.stop()
    assert set(answers) == {"stuck", "queued"}, answers
    for answer in answers.values():
        assert answer.code == "internal" and "got stuck" in answer.message
        assert "'network' stage" in answer.message and "try again" in answer.message
    assert answered < 30
    assert status == EXIT_STUCK
    assert "thread colorize-worker-0:" in log and "colorize_backend/core/engine.py" in log
    log_file = str(tmp_path / "restarted.log")
    launcher = [sys.executable, "-m", "colorize_backend.tools.cli", "--manifest", str(manifest),
                "serve", "--endpoint", endpoint, "--log-file", log_file]  # fmt: skip
    client = plugin_client(endpoint, launcher=launcher, log_file=log_file, start_timeout_s=60.0)
    hello = client.ensure_daemon()  # as the plug-in does before each request
    try:
        reply, _ = client.colorize(width, height, "gray", pixels.tobytes())
        assert reply["model"] == "linear" and hello["pid"] != daemon.process.pid
    finally:
        stop_pid(hello["pid"])
