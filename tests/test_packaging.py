"""A wheel of the project runs outside the checkout: the models travel as package data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
from PIL import Image

from tests.helpers import REPO

BUILD_LEFTOVERS = (".git", ".venv", "build", "out", "*.egg-info", "__pycache__", ".*_cache")


def test_wheel_colorizes_the_sample_outside_the_checkout(tmp_path):
    source = tmp_path / "source"  # a copy: setuptools leaves a build/ folder in what it builds
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*BUILD_LEFTOVERS))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("gimp_colorize-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        requires = archive.read(metadata).decode()
    assert 'onnxruntime>=1.17; extra == "cpu"' in requires  # pick the runtime: [cpu] or [gpu]
    assert 'onnxruntime-gpu>=1.17; extra == "gpu"' in requires
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
         str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    out = tmp_path / "elsewhere" / "sample.png"
    out.parent.mkdir()
    env = dict(os.environ, PYTHONPATH=str(target))  # before the checkout's editable install
    code = (
        "import sys, colorize_backend, colorize_backend.tools.cli as cli; "
        "print(colorize_backend.__file__, file=sys.stderr); sys.exit(cli.main(sys.argv[1:]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "colorize", str(REPO / "samples/sample.jpg"), "-o", str(out)],
        capture_output=True, text=True, timeout=300, cwd=out.parent, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert str(target) in done.stderr.splitlines()[0]  # the wheel's copy ran, not the checkout
    rgb = np.asarray(Image.open(out)).astype(int)
    assert np.abs(rgb[..., 0] - rgb[..., 2]).mean() > 2
