"""A daemon's life: one per endpoint (a locked pid file), `colorize-backend stop`, idle exit.

The pid file says which process serves an endpoint and from which installation, so a
second daemon on the same endpoint refuses to start with a clear message, and `stop`
finds the one to end. It is locked while the daemon lives: a stale file left by a
killed daemon is simply taken over.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

import platformdirs

from colorize_backend.core.errors import ColorizeError, ErrorCode

APP = "gimp-colorize"


def state_dir() -> Path:
    """Per-user folder for pid files, logs and the user's own models (created on use)."""
    return Path(platformdirs.user_state_dir(APP))


def user_models_dir() -> Path:
    """Where a user puts their own ONNX colorizers for the daemon to use by path."""
    return Path(platformdirs.user_data_dir(APP)) / "models"


def pid_path(endpoint: str) -> Path:
    digest = hashlib.sha1(endpoint.encode()).hexdigest()[:12]
    return state_dir() / f"daemon-{digest}.pid"


@dataclass(frozen=True)
class DaemonRecord:
    pid: int
    endpoint: str
    install: str
    instance: str
    started: float


def _lock(handle: IO[str]) -> bool:
    """Take an exclusive, non-blocking lock on an open file; False if another holds it."""
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


class PidFile:
    """Held for the daemon's life: locked, with this daemon's record inside."""

    def __init__(self, record: DaemonRecord):
        self.path = pid_path(record.endpoint)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a+")
        if not _lock(self._handle):
            other = read_record(record.endpoint)
            self._handle.close()
            who = f"pid {other.pid}, installed at {other.install}" if other else "another process"
            raise ColorizeError(
                ErrorCode.INTERNAL,
                f"another colorize daemon ({who}) already serves {record.endpoint}; "
                "stop it with `colorize-backend stop` first",
            )
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(json.dumps(asdict(record)))
        self._handle.flush()

    def release(self) -> None:
        try:
            self.path.unlink()
        except OSError:
            pass
        self._handle.close()


def read_record(endpoint: str) -> DaemonRecord | None:
    try:
        return DaemonRecord(**json.loads(pid_path(endpoint).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def is_running(endpoint: str) -> bool:
    """True while a daemon holds the lock of this endpoint's pid file."""
    path = pid_path(endpoint)
    if not path.exists():
        return False
    with open(path, "a+") as handle:
        return not _lock(handle)


def stop_daemon(endpoint: str, timeout_s: float = 20.0) -> DaemonRecord | None:
    """End the daemon serving endpoint (SIGTERM, then SIGKILL); its record, or None if none."""
    record = read_record(endpoint)
    if record is None or not is_running(endpoint):
        return None
    os.kill(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_running(endpoint):
            return record
        time.sleep(0.05)
    if sys.platform != "win32":
        os.kill(record.pid, signal.SIGKILL)
    return record


@dataclass
class IdleTimer:
    """Says when the daemon has been idle (no request, no job) for `timeout_s` (0 = never)."""

    timeout_s: float
    last_activity: float = 0.0

    def __post_init__(self) -> None:
        self.touch()

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    def expired(self, jobs: int) -> bool:
        if jobs:
            self.touch()
            return False
        return self.timeout_s > 0 and time.monotonic() - self.last_activity > self.timeout_s
