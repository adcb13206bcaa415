"""colorize-backend's commands, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from tests.helpers import REPO


def cli(manifest, *args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "colorize_backend.tools.cli", "--manifest", str(manifest), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def test_colorize_one_file(test_manifest, tmp_path):
    out = tmp_path / "out.png"
    done = cli(test_manifest, "colorize", str(REPO / "samples/sample.jpg"), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "1/1" in done.stderr  # the progress bar
    result = Image.open(out)
    assert result.mode == "RGB" and result.size == Image.open(REPO / "samples/sample.jpg").size


def test_colorize_folder_and_glob_keep_names_and_alpha(test_manifest, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    grey = np.asarray(Image.open(REPO / "samples/sample.jpg"))
    Image.fromarray(grey).save(src / "a.jpg")
    Image.fromarray(np.dstack([grey, grey, grey, np.full_like(grey, 90)])).save(src / "sub/b.png")
    (src / "notes.txt").write_text("not an image")
    folder = cli(test_manifest, "colorize", str(src), "-o", str(tmp_path / "out"))
    assert folder.returncode == 0, folder.stderr
    assert (tmp_path / "out/a.png").exists()
    assert np.asarray(Image.open(tmp_path / "out/sub/b.png"))[..., 3].max() == 90
    globbed = cli(test_manifest, "colorize", str(src / "*.jpg"), "-o", str(tmp_path / "g"))
    assert globbed.returncode == 0 and (tmp_path / "g/a.png").exists()


def test_colorize_with_hints_file(test_manifest, tmp_path):
    grey = Image.open(REPO / "samples/sample.jpg")
    hints = np.zeros((grey.height, grey.width, 4), np.uint8)
    hints[100:104, 200:204] = (30, 60, 220, 255)
    Image.fromarray(hints).save(tmp_path / "hints.png")
    out = tmp_path / "hinted.png"
    done = cli(
        test_manifest,
        "colorize",
        str(REPO / "samples/sample.jpg"),
        "--hints",
        str(tmp_path / "hints.png"),
        "-o",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    r, g, b = np.asarray(Image.open(out))[101, 201].astype(int)
    assert b > r + 20 and b > g


def test_missing_input_is_a_clear_error(test_manifest, tmp_path):
    done = cli(test_manifest, "colorize", str(tmp_path / "nothing*.jpg"), "-o", str(tmp_path))
    assert done.returncode == 2 and "no images found" in done.stderr


def test_unreadable_file_fails_that_file_only(test_manifest, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in/broken.jpg").write_bytes(b"not a jpeg")
    Image.open(REPO / "samples/sample.jpg").save(tmp_path / "in/good.jpg")
    done = cli(test_manifest, "colorize", str(tmp_path / "in"), "-o", str(tmp_path / "out"))
    assert done.returncode == 1 and "broken.jpg" in done.stderr
    assert (tmp_path / "out/good.png").exists()


def test_models_lists_kind_size_and_provider(test_manifest):
    done = cli(test_manifest, "models", "--json", "--verify")
    assert done.returncode == 0, done.stderr
    (entry,) = json.loads(done.stdout)
    assert entry["name"] == "linear" and entry["default"] and entry["kind"] == "auto"
    assert entry["runtime"] in ("CPUExecutionProvider", "OpenVINO (CPU)") and entry["size_mb"] >= 0
    table = cli(test_manifest, "models")
    assert table.stdout.startswith(" NAME") and table.stderr == ""  # no log lines before it


def test_doctor_reports_corrupted_model(test_manifest, tmp_path):
    healthy = cli(test_manifest, "doctor", "--endpoint", "tcp://127.0.0.1:9")
    assert healthy.returncode == 0, healthy.stdout
    assert "runtimes, tried in this order:" in healthy.stdout
    assert "CPUExecutionProvider\n" in healthy.stdout
    as_json = json.loads(
        cli(test_manifest, "doctor", "--json", "--endpoint", "tcp://127.0.0.1:9").stdout
    )
    assert as_json["problems"] == [] and any("numba" in c["text"] for c in as_json["checks"])
    manifest = json.loads(test_manifest.read_text())
    manifest["models"][0]["sha256"] = "0" * 64
    broken = tmp_path / "manifest.json"
    broken.write_text(json.dumps(manifest))
    (tmp_path / "linear.onnx").write_bytes((test_manifest.parent / "linear.onnx").read_bytes())
    done = cli(broken, "doctor", "--endpoint", "tcp://127.0.0.1:9")
    assert done.returncode == 1 and "sha256" in done.stdout


def test_serve_refuses_public_address_without_curve(test_manifest):
    done = cli(test_manifest, "serve", "--endpoint", "tcp://0.0.0.0:5599", timeout=30)
    assert done.returncode == 2 and "CURVE" in done.stderr


def test_user_model_by_path(test_manifest, tmp_path):
    out = tmp_path / "o.png"
    done = cli(
        test_manifest,
        "colorize",
        str(REPO / "samples/sample.jpg"),
        "--model",
        str(test_manifest.parent / "linear.onnx"),
        "-o",
        str(out),
    )
    assert done.returncode == 0, done.stderr and out.exists()
