"""The second hardening round: inputs and models that crashed the daemon, daemons that broke
each other, and ordinary files and workflows that failed. Each test reproduces one report.

Daemons run as their own processes where a crash would otherwise take the test run down.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from colorize_backend.core.atomic_file import write_text_atomically
from colorize_backend.core.contract import ReferenceMode
from colorize_backend.core.engine import Engine
from colorize_backend.core.errors import ColorizeError
from colorize_backend.core.manifest import Manifest, sha256_of
from colorize_backend.core.options import ColorizeOptions
from colorize_backend.core.pipeline import Colorizer
from colorize_backend.core.reference import Reference
from colorize_backend.daemon.client import DaemonClient

from tests.helpers import REPO, loopback_endpoint, plugin_client, start_daemon
from tests.onnx_models import write_manifest, write_misshapen_auto_model, write_nan_auto_model

HELLO = [b'{"v": 2, "op": "hello"}']


def manifest_with(folder: Path, *models: tuple[str, Path]) -> Path:
    """The test manifest plus the named extra auto models."""
    manifest = write_manifest(folder)
    data = json.loads(manifest.read_text())
    for name, path in models:
        entry = dict(data["models"][0], name=name, file=path.name, sha256=sha256_of(path))
        data["models"].append(entry)
    manifest.write_text(json.dumps(data))
    return manifest


@pytest.fixture(scope="module")
def broken_models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("broken")
    nan = write_nan_auto_model(folder / "nan.onnx")
    misshapen = write_misshapen_auto_model(folder / "misshapen.onnx")
    return manifest_with(folder, ("nan", nan), ("misshapen", misshapen))


def gradient(height: int = 96, width: int = 128) -> np.ndarray:
    """A grey ramp from black to white, [H, W, 1] u8."""
    return np.tile(np.linspace(0, 255, width, dtype=np.uint8), (height, 1))[..., None]


# 1 ------------------------------------------------------------ NaN and broken models


def test_the_kernels_survive_any_float_in_the_chroma():
    """NaN and infinities in a*b* used to index the gamma table out of bounds (exit 139);
    run in a child process, so that a crash shows as its exit status."""
    program = (
        "import numpy as np\n"
        "from colorize_backend.core import kernels\n"
        "ab = np.full((2, 4, 4), np.nan, np.float32); ab[0, 0] = np.inf; ab[1, 1] = -np.inf\n"
        "ab[0, 2] = 1e30\n"
        "out = np.empty((64, 64, 3), np.uint8)\n"
        "for gain in (1.0, np.nan, np.inf):\n"
        "    kernels.compose_u8(np.full((64, 64, 1), 128, np.uint8), ab, gain, None, None, out)\n"
        "print('survived', int(out.min()), int(out.max()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert done.returncode == 0 and "survived" in done.stdout, done.stderr[-2000:]


def test_one_nan_pixel_stays_one_pixel(colorizer):
    clean = gradient().astype(np.float32) / 255
    dirty = clean.copy()
    dirty[40, 60] = np.nan
    dirty[10, 10] = np.inf
    expected = colorizer.colorize(clean).pixels
    result = colorizer.colorize(dirty).pixels
    assert np.isfinite(result).all() and 0 <= result.min() and result.max() <= 1
    ys, xs = np.nonzero(np.abs(result - expected).max(axis=-1) > 1e-3)
    near = np.minimum(np.hypot(ys - 40, xs - 60), np.hypot(ys - 10, xs - 10)) < 24
    assert near.all()  # only around the two bad pixels (now black and white) did colour move


def test_a_model_output_with_nan_is_made_finite(broken_models):
    colorizer = Colorizer(Manifest.load(broken_models), Engine(["CPUExecutionProvider"]))
    for grey in (gradient(), gradient().astype(np.float32) / 255):
        result = colorizer.colorize(grey, ColorizeOptions(model="nan")).pixels
        assert np.isfinite(result.astype(np.float64)).all()


def test_a_model_output_of_the_wrong_shape_is_refused_naming_the_contract(broken_models):
    colorizer = Colorizer(Manifest.load(broken_models), Engine(["CPUExecutionProvider"]))
    with pytest.raises(ColorizeError, match=r"\[1, 5, 7, 3\].*\[N, 2, h, w\]"):
        colorizer.colorize(gradient(), ColorizeOptions(model="misshapen"))


@pytest.mark.parametrize("mode", ["exemplar", "hints"])
def test_a_reference_full_of_nan_does_not_kill_the_daemon(broken_models, mode):
    daemon = start_daemon(loopback_endpoint(), broken_models)
    try:
        client = DaemonClient(daemon.endpoint, timeout_s=60)
        reference = np.full((96, 128, 4), np.nan, np.float32)
        reference[..., 3] = 0.0
        reference[20:30, 20:30] = (np.nan, 0.5, np.inf, 0.5)  # half-transparent NaN paint
        if mode == "exemplar":
            reference[..., 3] = 1.0
        grey = gradient()
        for model in (None, "nan"):
            options = ColorizeOptions(model=model, reference_mode=ReferenceMode(mode))
            try:
                _, result = client.colorize(grey, options, reference)
                assert result.shape == (96, 128, 3)
            except ColorizeError as refused:  # a reference with no usable colour: told so
                assert refused.code == "bad_request"
        _, result = client.colorize(grey, ColorizeOptions(model="nan"))
        assert result.shape == (96, 128, 3)
        assert client.hello(5)["ok"]
    finally:
        log = daemon.stop()
    assert daemon.process.returncode in (0, -15), log[-3000:]


def test_nan_through_the_command_line(broken_models, tmp_path):
    import tifffile

    pixels = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    pixels[5, 5] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", pixels)
    done = subprocess.run(
        [sys.executable, "-m", "colorize_backend.tools.cli", "--manifest", str(broken_models),
         "colorize", str(tmp_path / "nan.tif"), "-o", str(tmp_path / "out.png"),
         "--model", "nan"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out.png").is_file()


def test_a_reference_keeps_its_pixels_finite():
    paint = np.full((4, 4, 4), np.nan, np.float32)
    assert np.isfinite(Reference(paint).pixels).all()


# 2, 3 ------------------------------------------------------------ shared buffers


def test_a_second_daemon_leaves_the_first_ones_buffers_alone(test_manifest):
    """A second daemon of the same user (install.py again, `bench`, another endpoint) used to
    delete the first one's buffers at its start; the plug-in's next request then failed."""
    first = start_daemon(loopback_endpoint(), test_manifest)
    second = None
    try:
        client = plugin_client(first.endpoint)
        client.hello()
        grey = gradient().tobytes()
        reply, _ = client.colorize(128, 96, "gray", grey)
        assert reply["shared"] is True
        client.release()
        second = start_daemon(loopback_endpoint(), test_manifest)
        other = plugin_client(second.endpoint)
        other.hello()
        assert other.colorize(128, 96, "gray", grey)[0]["shared"] is True
        other.release()
        reply, _ = client.colorize(128, 96, "gray", grey)  # the first daemon's buffer again
        assert reply["shared"] is True
        client.release()
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_a_client_that_truncates_its_buffer_cannot_kill_the_daemon(test_manifest):
    import zmq

    daemon = start_daemon(loopback_endpoint(), test_manifest)
    try:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.RCVTIMEO, 20000)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(daemon.endpoint)

        def ask(header: dict) -> dict:
            sock.send_multipart([b"", json.dumps(dict(header, v=2)).encode()])
            while True:
                reply = json.loads(sock.recv_multipart()[1])
                if reply.get("op") != "progress":
                    return reply

        lease = ask({"op": "lease", "id": "l", "bytes": 1 << 22})
        descriptor = os.open(lease["path"], os.O_RDWR)
        try:
            os.pwrite(descriptor, gradient(1024, 1024).tobytes(), 0)
            with pytest.raises(OSError):  # sealed: the size cannot change
                os.ftruncate(descriptor, 4096)
        finally:
            os.close(descriptor)
        image = {"width": 1024, "height": 1024, "format": "gray"}
        shared = {"name": lease["name"], "image": 0, "result": 1 << 20}
        reply = ask({"op": "colorize", "id": "c", "image": image, "shm": shared})
        assert reply["ok"] and reply["shared"]
        assert ask({"op": "hello"})["ok"]
        sock.close()
    finally:
        log = daemon.stop()
    assert daemon.process.returncode in (0, -15), log[-3000:]


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root for a PID namespace"
)
def test_the_plugin_falls_back_to_the_socket_when_a_buffer_cannot_be_opened(test_manifest):
    """A daemon offers shared memory that this GIMP cannot open (here, as in Flatpak's
    sandbox, GIMP lives in its own PID namespace and cannot see the daemon's /proc): the
    request still goes through, by the socket, and nothing is lost."""
    daemon = start_daemon(loopback_endpoint(), test_manifest)
    program = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from colorize_client import Client, load_config\n"
        "client = Client(dict(load_config('/nonexistent.json'), endpoint=sys.argv[2]))\n"
        "offered = client.hello()['shared_memory']\n"
        "reply, result = client.colorize(64, 32, 'gray', bytes(range(64)) * 32)\n"
        "reply2, _ = client.colorize(64, 32, 'gray', bytes(range(64)) * 32)\n"
        "print(offered, reply['shared'], reply2['shared'], len(result), client.shared_memory)\n"
    )
    try:
        done = subprocess.run(
            ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", program,
             str(REPO / "plugin" / "colorize"), daemon.endpoint],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        daemon.stop()
    assert done.stdout.split() == ["True", "False", "False", str(64 * 32 * 3), "False"], (
        done.stdout + done.stderr
    )


# 4 ------------------------------------------------------------ the memory guard


def test_a_client_waiting_for_its_reply_is_never_cut(make_daemon):
    """Over the memory budget, the guard cuts stalled connections, never one whose client
    waits for its job (it used to report a crash to the plug-in)."""
    endpoint = make_daemon(slow=True, memory_budget=1, stall_s=1.0)
    client = plugin_client(endpoint, heartbeat_timeout_s=5.0)
    client.hello()
    reply, result = client.colorize(128, 96, "gray", gradient().tobytes())
    assert reply["ok"] and len(result) == 128 * 96 * 3
    client.release()


def test_a_detail_size_larger_than_the_photo_costs_nothing_more(colorizer):
    """detail_size 2048 on a 64x64 image used to run a 2048² network (19 s, 3.4 GB)."""
    small = gradient(64, 64)
    plain = colorizer.colorize(small).pixels
    large = colorizer.colorize(small, ColorizeOptions(detail_size=2048)).pixels
    assert np.array_equal(plain, large)  # both at the model's own size
    from colorize_backend.core.contract import working_side

    assert working_side(2048, 256, 4000, 3000) == 2048  # a large photo gets what it asks
    assert working_side(2048, 256, 64, 64) == 256 and working_side(None, 256, 64, 64) == 256


def test_memory_the_jobs_left_behind_does_not_trip_the_guard():
    """After a large job the allocator keeps some memory; idle connections used to be cut
    for it. What the jobs explained is forgiven, what nobody explains is not."""
    import socket

    import zmq
    from colorize_backend.daemon import memory
    from colorize_backend.daemon.guard import Connection, Guard

    front = zmq.Context.instance().socket(zmq.ROUTER)
    guard = Guard(front, memory_budget=10_000_000, stall_s=0.0)
    left, right = socket.socketpair()
    try:
        guard.baseline = memory.rss_bytes() - 500_000_000  # as if 500 MB were kept by jobs
        guard.tick(explained=600_000_000, waiting=set())  # a job needed 600 MB
        guard.after_jobs()
        guard.connections[left.fileno()] = Connection(accepted=0.0)
        guard.tick(explained=0, waiting=set())
        assert left.fileno() in guard.connections  # idle, and nothing unexplained: kept
        guard.retained = 0  # the same memory, unexplained: the stalled connection goes
        guard.tick(explained=0, waiting=set())
        assert left.fileno() not in guard.connections
        assert left.recv(1) == b""  # shut down
    finally:
        guard.close()
        front.close(0)
        left.close()
        right.close()


# 5, 6, 8, 11 ------------------------------------------------------------ files


def cli(manifest: Path, *args: str, memory_limit: int | None = None):
    """colorize-backend in its own process (optionally under an address-space limit)."""
    import resource

    def limit() -> None:
        if memory_limit:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    return subprocess.run(
        [sys.executable, "-m", "colorize_backend.tools.cli", "--manifest", str(manifest), *args],
        capture_output=True, text=True, timeout=600, preexec_fn=limit,
    )  # fmt: skip


def test_a_float_tiff_bomb_is_refused_from_its_header(test_manifest, tmp_path):
    """1-2 MB of compressed zeros that decode to 20000 x 20000 float32 (1.6 GB, over 6 GB
    while being colorized): refused with the figures, never a traceback."""
    import tifffile

    tile = np.zeros((512, 512), np.float32)
    tiles = (tile for _ in range(39 * 39))
    bomb = tmp_path / "bomb.tif"
    tifffile.imwrite(bomb, tiles, shape=(19968, 19968), dtype=np.float32, tile=(512, 512),
                     compression="zlib")  # fmt: skip
    assert bomb.stat().st_size < 5_000_000
    done = cli(test_manifest, "colorize", str(bomb), "-o", str(tmp_path / "out.png"),
               memory_limit=4 << 30)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "needs about" in done.stderr and "GB" in done.stderr
    assert not list(tmp_path.glob("*out*"))


def srgb_profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_a_greyscale_file_with_an_rgb_profile_is_colorized(test_manifest, tmp_path, suffix):
    """What Pillow's convert('L') makes of a colour photo: grey data, the sRGB profile kept."""
    from colorize_backend.tools.images import read_photo
    from PIL import Image

    grey = tmp_path / f"grey{suffix}"
    Image.fromarray(gradient()[..., 0]).save(grey, icc_profile=srgb_profile())
    photo = read_photo(grey)
    assert photo.pixels.shape == (96, 128, 1)
    assert np.abs(photo.pixels.astype(int) - gradient()).max() <= 2  # sRGB: the same greys
    assert any("RGB profile" in note for note in photo.notes)
    done = cli(test_manifest, "colorize", str(grey), "-o", str(tmp_path / "out.png"))
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_profile_that_cannot_be_used_says_what_to_do(tmp_path):
    from colorize_backend.tools.images import read_photo
    from PIL import Image

    broken = tmp_path / "broken.png"
    Image.fromarray(gradient()[..., 0]).save(broken, icc_profile=b"\0" * 200)
    with pytest.raises(ColorizeError, match="Convert to Color Profile"):
        read_photo(broken)


@pytest.mark.parametrize("channels", [3, 4])
def test_float_rgb_and_rgba_tiffs_are_read(test_manifest, tmp_path, channels):
    import tifffile

    rng = np.random.default_rng(channels)
    pixels = rng.random((48, 64, channels)).astype(np.float32)
    source = tmp_path / "float.tif"
    tifffile.imwrite(source, pixels, photometric="rgb")
    done = cli(test_manifest, "colorize", str(source), "-o", str(tmp_path / "out.tif"))
    assert done.returncode == 0, done.stderr[-2000:]
    result = tifffile.imread(tmp_path / "out.tif")
    assert result.shape == (48, 64, channels) and result.dtype == np.float32
    if channels == 4:
        np.testing.assert_allclose(result[..., 3], pixels[..., 3], atol=1e-6)  # alpha kept


def test_unreadable_files_are_named_without_python_objects(test_manifest, tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "noise.png").write_bytes(os.urandom(500))
    done = cli(test_manifest, "colorize", str(tmp_path / "empty.png"), str(tmp_path / "noise.png"),
               "-o", str(tmp_path / "out"))  # fmt: skip
    assert done.returncode == 1
    assert "empty.png is empty" in done.stderr and "noise.png cannot be read" in done.stderr
    assert " object at 0x" not in done.stderr and "Traceback" not in done.stderr


def test_a_broken_model_behind_a_link_reveals_no_path(colorizer, tmp_path):
    """A model a client names must not tell it where files lie, nor where links point."""
    own, hidden = tmp_path / "own", tmp_path / "secret-place"
    own.mkdir()
    hidden.mkdir()
    (hidden / "private-target.onnx").write_bytes(b"not an onnx file")
    (own / "mine.onnx").symlink_to(hidden / "private-target.onnx")
    daemon_side = Colorizer(
        colorizer.manifest, colorizer.engine, model_dirs=[own], any_model_path=False
    )
    with pytest.raises(ColorizeError) as refused:
        daemon_side.colorize(gradient(), ColorizeOptions(model="mine"))
    message = refused.value.message
    assert "model mine cannot be loaded" in message
    assert "secret-place" not in message and "private-target" not in message
    assert str(tmp_path) not in message


def test_an_ipc_socket_file_goes_with_its_daemon(test_manifest, tmp_path):
    path = tmp_path / "colorize.sock"
    daemon = start_daemon(f"ipc://{path}", test_manifest)
    assert path.exists()
    daemon.stop()
    assert not path.exists()


# 12 ------------------------------------------------------------ diagnostics


def test_bench_prints_a_table_for_people_and_json_for_machines(test_manifest):
    quick = ["bench", "--megapixels", "0.05", "--repeat", "1", "--batch", "0", "--cold", "0"]
    people = cli(test_manifest, *quick)
    assert people.returncode == 0, people.stderr[-2000:]
    assert "median ms" in people.stdout and "runtime check:" in people.stdout
    machines = cli(test_manifest, *quick, "--json")
    report = json.loads(machines.stdout)
    assert report["photos"]["0.05MP"]["daemon_socket"]["median_ms"] > 0


def test_doctor_lists_the_runtimes_in_the_engines_order(test_manifest):
    from colorize_backend.core.engine import runtime_order

    done = cli(test_manifest, "doctor", "--json")
    texts = [check["text"] for check in json.loads(done.stdout)["checks"]]
    line = next(t for t in texts if t.startswith("runtimes"))
    assert line.endswith(", ".join(runtime_order()))
    assert line.index("CPUExecutionProvider") == len(line) - len("CPUExecutionProvider")


# 13 ------------------------------------------------------------ a crowd, served in turn


def test_a_crowd_of_clients_waits_in_turn_instead_of_racing(colorizer):
    """32 GIMP-like clients at once, with the daemon's default limits: every request is
    queued (served round-robin), none told `busy` (which made them race for places, and
    some wait 24 s at p99)."""
    import zmq
    from colorize_backend.daemon.front import Daemon, DaemonConfig

    endpoint = loopback_endpoint()
    daemon = Daemon(colorizer, DaemonConfig(endpoint=endpoint, workers=1))
    daemon.start()
    context = zmq.Context.instance()
    sockets = []
    try:
        pixels = gradient(48, 64)
        for i in range(32):
            sock = context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(endpoint)
            header = {"v": 2, "op": "colorize", "id": f"c{i}",
                      "image": {"width": 64, "height": 48, "format": "gray"}}  # fmt: skip
            sock.send_multipart([b"", json.dumps(header).encode(), pixels.tobytes()])
            sockets.append(sock)
        replies = []
        for sock in sockets:
            assert sock.poll(60000), "no reply"
            replies.append(json.loads(sock.recv_multipart()[1]))
        assert all(r["ok"] for r in replies), [r.get("error") for r in replies if not r["ok"]]
    finally:
        for sock in sockets:
            sock.close()
        daemon.stop()


def test_a_replaced_file_is_never_half_written(tmp_path):
    """The manifest and the runtime-choices cache are written whole or not at all."""
    target = tmp_path / "manifest.json"
    write_text_atomically(target, '{"models": []}\n')
    assert json.loads(target.read_text()) == {"models": []}
    with pytest.raises(UnicodeEncodeError):  # fails halfway through writing
        write_text_atomically(target, '{"models": ["' + "x" * 100_000 + '\ud800"]}')
    assert json.loads(target.read_text()) == {"models": []}
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_a_retry_writes_over_the_partial_a_killed_writer_left(tmp_path):
    """kill -9 mid-write leaves the hidden partial; the photo's next write (the cluster's
    retry on another worker) takes it over, so no partial outlives the retry."""
    from colorize_backend.tools.images import Photo, write_photo
    from PIL import Image

    target = tmp_path / "17.png"
    stale = tmp_path / ".17.png.partial"
    stale.write_bytes(b"\x89PNG half a photo")  # what the killed worker left
    write_photo(target, Photo(np.full((8, 8, 3), 200, np.uint8)))
    assert np.asarray(Image.open(target)).shape == (8, 8, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["17.png"]
