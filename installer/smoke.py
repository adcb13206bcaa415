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

from installer.layout import Layout, say, state_dir
from installer.plugins import plugin_config


def smoke_test(layout: Layout, endpoint: str) -> Path:
    """Colorize the bundled sample through the daemon with the plug-in's own client."""
    layout.output.mkdir(parents=True, exist_ok=True)
    result = layout.output / "sample-colorized.png"
    state_dir().mkdir(parents=True, exist_ok=True)
    config_file = state_dir() / "smoke-config.json"
    config = plugin_config(layout, endpoint)
    config_file.write_text(json.dumps(config))
    daemon = None
    if not _daemon_answers(layout, config_file):
        log = open(config["log_file"], "ab")
        daemon = subprocess.Popen(config["launcher"], stdout=log, stderr=subprocess.STDOUT)
    try:
        command = [layout.python, "-m", "installer.smoke", layout.plugin_src / "colorize"]
        out = subprocess.run(
            [str(c) for c in command + [config_file, layout.sample, result]],
            capture_output=True,
            text=True,
            check=True,
            cwd=layout.repo,
        )
        info = json.loads(out.stdout.strip().splitlines()[-1])
        say(
            f"sample colorized by {info['model']} on {info['provider']} in {info['seconds']} s "
            "through the daemon"
        )
    finally:
        if daemon is not None:
            daemon.terminate()
            daemon.wait(10)
        config_file.unlink(missing_ok=True)
    return result


def _daemon_answers(layout: Layout, config_file: Path) -> bool:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from colorize_client import Client, "
        "load_config; Client(load_config(sys.argv[2])).hello()"
    )
    probe = [layout.python, "-c", code, layout.plugin_src / "colorize", config_file]
    return subprocess.run([str(c) for c in probe], capture_output=True).returncode == 0


def main(argv: list[str]) -> None:
    """Colorize SAMPLE into OUT through the daemon CONFIG names; print a JSON summary."""
    plugin_dir, config_path, sample, out = argv
    sys.path.insert(0, plugin_dir)
    from colorize_client import Client, load_config
    from PIL import Image

    image = Image.open(sample)
    fmt = {"L": "gray", "LA": "graya", "RGB": "rgb", "RGBA": "rgba"}.get(image.mode)
    if fmt is None:
        image, fmt = image.convert("RGB"), "rgb"
    client = Client(load_config(config_path))
    deadline = time.time() + 90
    while True:
        try:
            hello = client.hello()
            break
        except Exception:
            if time.time() > deadline:
                raise
    started = time.perf_counter()
    reply, pixels = client.colorize(image.width, image.height, fmt, image.tobytes())
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
