"""install.py into a temporary HOME: plug-ins in every GIMP folder, config, smoke, uninstall."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from installer.layout import Layout
from installer.pyzmq_vendor import ensure_pyzmq
from tests.helpers import REPO, loopback_endpoint

VENV = Path(sys.prefix)  # the virtualenv running the tests; install.py reuses it


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    for profile in (
        ".config/GIMP/3.0",
        ".config/GIMP/2.10",
        ".var/app/org.gimp.GIMP/config/GIMP/3.0",
    ):
        (home / profile).mkdir(parents=True)
    return home


def install(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env["HOME"] = str(home)
    return subprocess.run(
        [sys.executable, str(REPO / "install.py"), "--venv", str(VENV), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def installed(home):
    endpoint = loopback_endpoint()
    output = home / "colorized"
    first = install(home, "--endpoint", endpoint, "--output", str(output))
    assert first.returncode == 0, first.stdout + first.stderr
    return home, endpoint, output, first.stdout


PLUGINS = {
    ".config/GIMP/3.0/plug-ins/colorize": "colorize.py",
    ".var/app/org.gimp.GIMP/config/GIMP/3.0/plug-ins/colorize": "colorize.py",
    ".config/GIMP/2.10/plug-ins/colorize_gimp2": "colorize_gimp2.py",
}


@pytest.mark.parametrize("folder, entry", PLUGINS.items())
def test_plugin_installed_in_every_gimp_folder(installed, folder, entry):
    home, endpoint, _, _ = installed
    target = home / folder
    assert os.access(target / entry, os.X_OK)
    assert (target / "colorize_client.py").read_text() == (
        REPO / "plugin/colorize/colorize_client.py"
    ).read_text()
    config = json.loads((target / "colorize-config.json").read_text())
    assert config["endpoint"] == endpoint
    launcher = config["launcher"]
    if ".var/app" in folder:  # Flatpak's sandboxed GIMP starts the daemon on the host
        assert launcher[:2] == ["flatpak-spawn", "--host"]
        launcher = launcher[2:]
    assert Path(launcher[0]) == VENV / "bin" / "colorize-backend"
    assert launcher[1:] == ["serve", "--endpoint", endpoint]


def test_install_ends_with_a_colorized_sample(installed):
    _, _, output, stdout = installed
    assert "through the daemon" in stdout
    result = np.asarray(Image.open(output / "sample-colorized.png").convert("RGB")).astype(int)
    sample = Image.open(REPO / "samples/sample.jpg")
    assert result.shape[:2] == (sample.height, sample.width)
    assert np.abs(result[..., 0] - result[..., 2]).mean() > 2  # not grey any more


def test_install_twice_and_check(installed):
    home, endpoint, output, _ = installed
    again = install(home, "--endpoint", endpoint, "--output", str(output), "--no-smoke")
    assert again.returncode == 0, again.stderr
    check = install(home, "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "everything looks fine" in check.stdout


def test_check_reports_a_broken_plugin(installed):
    home = installed[0]
    entry = home / ".config/GIMP/2.10/plug-ins/colorize_gimp2/colorize_gimp2.py"
    entry.chmod(0o644)
    try:
        check = install(home, "--check")
        assert check.returncode == 1 and "not executable" in check.stdout
    finally:
        entry.chmod(0o755)


def test_uninstall_removes_what_it_wrote_only(installed):
    home, _, output, _ = installed
    done = install(home, "--uninstall")
    assert done.returncode == 0, done.stderr
    for folder in PLUGINS:
        assert not (home / folder).exists()
    assert (home / ".config/GIMP/3.0").is_dir()  # GIMP's own profile stays
    assert not (output / "sample-colorized.png").exists()
    assert not (home / ".local/state/gimp-colorize").exists()
    assert VENV.is_dir()  # it existed before install.py ran, so it is kept


def test_pyzmq_is_vendored_for_a_gimp_python_without_it(tmp_path):
    """A GIMP whose Python lacks pyzmq gets a matching wheel unpacked into the plug-in folder."""
    bare = tmp_path / "gimp-python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    python = str(bare / "bin" / "python")
    assert subprocess.run([python, "-c", "import zmq"], capture_output=True).returncode != 0
    layout = Layout(REPO, VENV, tmp_path / "out")
    target = tmp_path / "colorize"
    target.mkdir()
    note = ensure_pyzmq(layout, target, [python])
    assert note.startswith("vendored pyzmq-"), note
    probe = "import sys; sys.path.insert(0, sys.argv[1]); import zmq; print(zmq.zmq_version())"
    done = subprocess.run(
        [python, "-c", probe, str(target / "vendor")], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.strip(), done.stderr
