"""install.py into a temporary HOME: plug-ins in every GIMP folder, config, smoke, uninstall."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from colorize_backend.core.errors import ColorizeError
from colorize_backend.daemon.client import DaemonClient
from PIL import Image

from installer.layout import Layout
from installer.pyzmq_vendor import ensure_pyzmq
from tests.helpers import REPO, loopback_endpoint, start_daemon
from tests.onnx_models import write_linear_auto_model, write_rgb_to_ab_model

sys.path.insert(0, str(REPO / "plugin" / "colorize"))
from colorize_client import Client, load_config  # noqa: E402


def raw_hello(endpoint: str) -> dict | None:
    try:
        return DaemonClient(endpoint).hello(0.5)
    except ColorizeError:
        return None


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
    own_models = home / ".local/share/gimp-colorize/models"  # the user's own colorizers
    own_models.mkdir(parents=True)
    write_linear_auto_model(own_models / "my-colorizer.onnx")
    write_rgb_to_ab_model(own_models / "ddcolor-export.onnx", size=64)
    (own_models / "broken.onnx").write_bytes(b"not a model")
    return home


def install(home: Path, *args: str, venv: Path = VENV) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env["HOME"] = str(home)
    return subprocess.run(
        [sys.executable, str(REPO / "install.py"), "--venv", str(venv), *args],
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
    assert launcher[1:4] == ["serve", "--endpoint", endpoint]
    assert launcher[4:] == ["--log-file", config["log_file"], "--idle-timeout", "30"]
    assert config["backend_prefix"] == str(VENV)


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


def test_reinstall_keeps_the_users_own_settings(installed):
    home, endpoint, output, _ = installed
    config_file = home / ".config/GIMP/3.0/plug-ins/colorize/colorize-config.json"
    config = json.loads(config_file.read_text())
    config.update(request_timeout_s=1234, server_public_key="K" * 40)
    config_file.write_text(json.dumps(config))
    again = install(home, "--output", str(output), "--no-smoke", "--no-vendor")
    assert again.returncode == 0, again.stdout + again.stderr
    kept = json.loads(config_file.read_text())
    assert kept["request_timeout_s"] == 1234 and kept["server_public_key"] == "K" * 40
    assert kept["endpoint"] == endpoint  # the earlier install's endpoint, not the default


def test_check_probes_the_configured_endpoint(installed):
    home, endpoint, _, _ = installed
    check = install(home, "--check")
    assert f"no daemon answering at {endpoint}" in check.stdout


def test_your_own_models_are_offered_in_gimp_and_served_by_path(installed):
    home, endpoint, _, _ = installed
    plugin_folder = home / ".config/GIMP/2.10/plug-ins/colorize_gimp2"  # (3.0's has a CURVE key)
    config = json.loads((plugin_folder / "colorize-config.json").read_text())
    offered = {model["name"]: model for model in config["models"]}
    own = home / ".local/share/gimp-colorize/models"
    assert offered["my-colorizer"]["path"] == str(own / "my-colorizer.onnx")
    assert "rgb-to-ab adapter" in offered["ddcolor-export"]["description"]
    assert "broken" not in offered and "fusion-effnet" in offered
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    daemon = subprocess.Popen(config["launcher"], env=dict(env, HOME=str(home)))
    try:
        deadline = time.time() + 60
        while raw_hello(endpoint) is None:
            assert daemon.poll() is None and time.time() < deadline
        client = Client(load_config(str(plugin_folder / "colorize-config.json")))
        grey = bytes(range(256)) * 64
        for name in ("my-colorizer", "ddcolor-export"):
            reply, _ = client.colorize(128, 128, "gray", grey, {"model": name})
            assert reply["model"] == name
        client.release()
    finally:
        daemon.terminate()
        daemon.wait(30)


def test_uninstall_stops_the_daemon_and_removes_what_it_wrote_only(installed):
    home, endpoint, output, _ = installed
    config = json.loads(
        (home / ".config/GIMP/3.0/plug-ins/colorize/colorize-config.json").read_text()
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    daemon = subprocess.Popen(config["launcher"], env=dict(env, HOME=str(home)))
    deadline = time.time() + 60
    while raw_hello(endpoint) is None:
        assert daemon.poll() is None and time.time() < deadline
    done = install(home, "--uninstall")
    assert daemon.wait(30) == 0  # stopped by the uninstaller
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


def test_a_port_held_by_another_program_is_named_and_avoided(tmp_path):
    """The previous install's port is now taken by something else: the installer says what
    holds it and records a free port instead."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    home = tmp_path / "home"
    plugin = home / ".config/GIMP/3.0/plug-ins/colorize"
    plugin.mkdir(parents=True)
    (plugin / "colorize-config.json").write_text(
        json.dumps({"endpoint": f"tcp://127.0.0.1:{port}"})
    )
    try:
        done = install(home, "--no-smoke", "--no-vendor", "--no-dev")
    finally:
        holder.close()
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"port {port} is in use by" in done.stdout and f"(pid {os.getpid()})" in done.stdout
    endpoint = json.loads((plugin / "colorize-config.json").read_text())["endpoint"]
    assert endpoint.startswith("tcp://127.0.0.1:") and not endpoint.endswith(f":{port}")


def test_a_port_held_by_another_installation_is_named_in_one_sentence(tmp_path):
    """The same backend reached through another path counts as another installation."""
    other_venv = tmp_path / "other-venv"
    other_venv.symlink_to(VENV)
    daemon = start_daemon(loopback_endpoint())
    port = daemon.endpoint.rsplit(":", 1)[1]
    home = tmp_path / "home"
    plugin = home / ".config/GIMP/3.0/plug-ins/colorize"
    plugin.mkdir(parents=True)
    (plugin / "colorize-config.json").write_text(json.dumps({"endpoint": daemon.endpoint}))
    try:
        done = install(home, "--no-smoke", "--no-vendor", "--no-dev", venv=other_venv)
    finally:
        daemon.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if f"port {port}:" in x)
    assert "Another installation of the colorize backend" in line, line
    assert ".;" not in line and line.endswith("instead."), line
    endpoint = json.loads((plugin / "colorize-config.json").read_text())["endpoint"]
    assert not endpoint.endswith(f":{port}")


def test_a_failure_is_one_clear_line_not_a_traceback(tmp_path):
    done = install(tmp_path, "--no-vendor", "--no-dev", "--endpoint", "tcp://127.0.0.1:notaport",
                   "--output", str(tmp_path / "out"))  # fmt: skip
    assert done.returncode == 1
    assert "[install] PROBLEM: " in done.stdout and "Traceback" not in done.stdout + done.stderr


def test_the_python_gimp_really_runs_is_the_one_beside_it(tmp_path, monkeypatch):
    """A distribution GIMP runs plug-ins with the python3 beside it, whatever python3 comes
    first on this shell's PATH; an interpreter file names it explicitly when there is one."""
    from installer.gimp import gimp_python_for

    prefix = tmp_path / "usr"
    (prefix / "bin").mkdir(parents=True)
    gimp = prefix / "bin" / "gimp-3.0"
    gimp.write_text("#!/bin/sh\n")
    gimp.chmod(0o755)
    (prefix / "bin" / "python3").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", str(prefix / "bin"))
    plugins = tmp_path / "profile" / "3.0" / "plug-ins"
    assert gimp_python_for(plugins) == [str(prefix / "bin" / "python3")]
    interpreters = prefix / "lib" / "gimp" / "3.0" / "interpreters"
    interpreters.mkdir(parents=True)
    (interpreters / "pygimp.interp").write_text(f"python={sys.executable}\n")
    assert gimp_python_for(plugins) == [sys.executable]


def test_without_gimp_the_installer_says_so_and_check_finds_the_missing_plugin(tmp_path):
    home = tmp_path / "no-gimp-home"
    home.mkdir()
    endpoint = loopback_endpoint()
    done = install(home, "--endpoint", endpoint, "--no-smoke")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no GIMP found" in done.stdout and "In GIMP:" not in done.stdout
    check = install(home, "--check")
    assert check.returncode == 1 and "installed in no GIMP" in check.stdout
    assert "everything looks fine" not in check.stdout


def test_the_smoke_step_kills_a_daemon_that_will_not_stop():
    """A daemon that ignores SIGTERM (its worker stuck) is killed, and the installer goes on."""
    from installer.smoke import stop

    stubborn = subprocess.Popen(
        [sys.executable, "-c",
         "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
         "print('ready', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert stubborn.stdout is not None and stubborn.stdout.readline() == "ready\n"
    started = time.monotonic()
    stop(stubborn, grace_s=1)
    assert stubborn.returncode == -9 and time.monotonic() - started < 10
