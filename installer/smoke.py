"""The installer's last step: the bundled sample colorized through the daemon, with the
plug-in's own client, exactly as GIMP would ask for it.

smoke_test() runs in install.py's Python; it starts the daemon if none answers and runs
this module's main() in the backend's virtualenv (which has Pillow):

    python -m installer.smoke PLUGIN_DIR CONFIG SAMPLE OUT
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from installer.endpoint import who_answers
from installer.layout import Layout, say
from installer.plugins import plugin_config

SMOKE_TIMEOUT_S = 240  # the sample takes under a second; the client gives up after this


def smoke_test(layout: Layout, endpoint: str) -> Path:
    """Colorize the bundled sample through the daemon with the plug-in's own client."""
    layout.output.mkdir(parents=True, exist_ok=True)
    result = layout.output / "sample-colorized.png"
    state_dir = layout.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    config_file = state_dir / "smoke-config.json"
    config = plugin_config(layout, endpoint)
    config_file.write_text(json.dumps(config))
    daemon = None
    if who_answers(layout, endpoint) != "ours":
        startup = open(config["log_file"] + ".startup", "wb")
        daemon = subprocess.Popen(config["launcher"], stdout=startup, stderr=subprocess.STDOUT)
    try:
        command = [layout.python, "-m", "installer.smoke", layout.plugin_src / "colorize"]
        try:
            out = subprocess.run(
                [str(c) for c in command + [config_file, layout.sample, result]],
                capture_output=True,
                text=True,
                cwd=layout.repo,
                timeout=SMOKE_TIMEOUT_S + 60,  # the client's own bound comes first
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                f"the sample was not colorized within {SMOKE_TIMEOUT_S + 60} s through the "
                f"daemon at {endpoint} (daemon log: {config['log_file']})"
            ) from None
        if out.returncode != 0:
            last = (out.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(
                f"the sample could not be colorized through the daemon at {endpoint}: {last} "
                f"(daemon log: {config['log_file']})"
            )
        info = json.loads(out.stdout.strip().splitlines()[-1])
        say(
            f"sample colorized by {info['model']} on {info['provider']} in {info['seconds']} s "
            "through the daemon"
        )
    finally:
        if daemon is not None:
            stop(daemon)
        config_file.unlink(missing_ok=True)
    return result


def stop(daemon: subprocess.Popen, grace_s: float = 40) -> None:
    """Stop the daemon this step started: SIGTERM, and SIGKILL if it has not ended within
    grace_s (a busy worker delays a daemon's exit by up to 30 s)."""
    daemon.terminate()
    try:
        daemon.wait(grace_s)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait(10)


def main(argv: list[str]) -> None:
    """Colorize SAMPLE into OUT through the daemon CONFIG names; print a JSON summary."""
    plugin_dir, config_path, sample, out = argv
    sys.path.insert(0, plugin_dir)
    from colorize_client import BackendError, Client, load_config
    from PIL import Image

    image = Image.open(sample)
    fmt = {"L": "gray", "LA": "graya", "RGB": "rgb", "RGBA": "rgba"}.get(image.mode)
    if fmt is None:
        image, fmt = image.convert("RGB"), "rgb"
    client = Client(dict(load_config(config_path), request_timeout_s=SMOKE_TIMEOUT_S))
    deadline = time.time() + 90
    while True:
        try:
            hello = client.hello()
            break
        except BackendError as exc:
            if exc.code != "timeout" or time.time() > deadline:
                raise SystemExit(exc.message) from None
    started = time.perf_counter()
    try:
        reply, pixels = client.colorize(image.width, image.height, fmt, image.tobytes())
    except BackendError as exc:
        raise SystemExit(exc.message) from None
    mode = "RGBA" if reply["format"] == "rgba" else "RGB"
    Image.frombytes(mode, image.size, pixels).save(out)
    summary = {
        "model": reply["model"],
        "provider": reply["provider"],
        "seconds": round(time.perf_counter() - started, 3),
        "backend": hello["backend_version"],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main(sys.argv[1:])
