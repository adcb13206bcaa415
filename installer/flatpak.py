"""Flatpak's sandboxed GIMP starts the daemon on the host through flatpak-spawn, which needs
a per-user override; install sets it, uninstall takes it back."""

from __future__ import annotations

import shutil
import subprocess


def flatpak_host_launch(allow: bool) -> subprocess.CompletedProcess:
    """Let Flatpak's GIMP run flatpak-spawn --host, or take that back (a per-user override)."""
    talk = "--talk-name" if allow else "--no-talk-name"
    return subprocess.run(
        ["flatpak", "override", "--user", f"{talk}=org.freedesktop.Flatpak", "org.gimp.GIMP"],
        capture_output=True,
        text=True,
    )


def allow_flatpak_host_launch() -> str:
    """Set the override on install (undone on uninstall); says how it went."""
    if not shutil.which("flatpak"):
        return "flatpak not found: start the daemon yourself (colorize-backend serve)"
    done = flatpak_host_launch(allow=True)
    return (
        "flatpak override set"
        if done.returncode == 0
        else f"flatpak override failed: {done.stderr.strip()}"
    )
