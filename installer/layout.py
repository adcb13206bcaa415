"""Where the installer reads from and writes to."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIG_NAME = "colorize-config.json"  # the plug-in's config file, beside the plug-in


def say(message: str) -> None:
    print(f"[install] {message}", flush=True)


def state_dir() -> Path:
    """Where the install record and the daemon log live (per user)."""
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "gimp-colorize"
    return (
        Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "gimp-colorize"
    )


@dataclass(frozen=True)
class Layout:
    """The checkout, the backend's virtualenv and the folder the sample result goes to."""

    repo: Path = REPO
    venv: Path = REPO / ".venv"
    output: Path = REPO / "out"

    @property
    def plugin_src(self) -> Path:
        return self.repo / "plugin"

    @property
    def sample(self) -> Path:
        return self.repo / "samples" / "sample.jpg"

    @property
    def models(self) -> Path:
        return self.repo / "models"

    @property
    def python(self) -> Path:
        return self.venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")

    @property
    def launcher(self) -> Path:
        name = "Scripts/colorize-backend.exe" if os.name == "nt" else "bin/colorize-backend"
        return self.venv / name


def is_windows() -> bool:
    return os.name == "nt"


def is_macos() -> bool:
    return sys.platform == "darwin"
