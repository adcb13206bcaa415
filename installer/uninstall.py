"""install.py --uninstall: stop the daemon, then remove everything the install record lists,
and nothing else."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from installer.flatpak import flatpak_host_launch
from installer.gimp import FLATPAK_MARK
from installer.layout import Layout, say
from installer.record import read_record


def stop_daemons(layout: Layout, endpoints: list[str]) -> None:
    if not layout.launcher.exists():
        return
    for endpoint in endpoints:
        done = subprocess.run(
            [str(layout.launcher), "stop", "--endpoint", endpoint],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode == 0:
            say(done.stdout.strip())


def uninstall(layout: Layout) -> int:
    if not layout.python.exists():
        say(f"the backend is not installed in {layout.venv}: nothing recorded to remove")
        return 0
    record = read_record(layout)
    state_dir = layout.state_dir
    stop_daemons(layout, record.get("endpoints", []))
    if any(FLATPAK_MARK in p for p in record["plugins"]) and shutil.which("flatpak"):
        flatpak_host_launch(allow=False)
    for path in [*record["plugins"], *record["created"], str(state_dir)]:
        target = Path(path)
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        elif target.exists():
            target.unlink()
        else:
            continue
        say(f"removed {path}")
    say("uninstalled")
    return 0
