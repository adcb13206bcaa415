"""Where the installer reads from and writes to."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent


def _plugin_client() -> ModuleType:
    """The plug-in's own client module (standard library, pyzmq optional): what it names
    (endpoint, config file) the installer writes for it, from this one place."""
    path = REPO / "plugin" / "colorize" / "colorize_client.py"
    spec = importlib.util.spec_from_file_location("colorize_client", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PLUGIN_CLIENT = _plugin_client()
STATE_DIR_QUESTION = "from colorize_backend.daemon.lifecycle import state_dir; print(state_dir())"
CONFIG_NAME: str = PLUGIN_CLIENT.CONFIG_NAME  # the plug-in's config file, beside the plug-in
DEFAULT_ENDPOINT: str = PLUGIN_CLIENT.DEFAULT_ENDPOINT


def say(message: str) -> None:
    print(f"[install] {message}", flush=True)


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
    def state_dir(self) -> Path:
        """The per-user folder of the install record and the daemon's log: the backend's own
        rule (colorize_backend.daemon.lifecycle, platformdirs), asked of the installed backend
        so that installer and daemon never disagree."""
        if not self.python.exists():
            raise RuntimeError(f"the backend is not installed in {self.venv}: run install.py")
        asked = subprocess.run(
            [str(self.python), "-c", STATE_DIR_QUESTION],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return Path(asked.stdout.strip())

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
