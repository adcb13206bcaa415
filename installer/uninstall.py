"""install.py --uninstall: remove everything the install record lists, and nothing else."""

from __future__ import annotations

import shutil
from pathlib import Path

from installer.flatpak import flatpak_host_launch
from installer.gimp import FLATPAK_MARK
from installer.layout import say, state_dir
from installer.record import read_record


def uninstall() -> int:
    record = read_record()
    if any(FLATPAK_MARK in p for p in record["plugins"]) and shutil.which("flatpak"):
        flatpak_host_launch(allow=False)
    for path in [*record["plugins"], *record["created"], str(state_dir())]:
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
