"""Zero-copy local transport: pixels in shared memory, only the header over the socket.

A client on the same machine leases a buffer from the daemon (`lease`), maps the file the
daemon names in its private folder (a tmpfs on Linux: /dev/shm), writes its pixels there
and sends a header-only request naming the buffer; the daemon writes the result into the
same buffer, where the client reads it, and the client hands the buffer back (`release`).
Neither side copies the image through ZeroMQ.

The daemon keeps its buffers mapped between requests and leases them again, so their
pages are never faulted in twice: a fresh 12 MP result would otherwise cost ~10 000 page
faults. Buffers are bounded in total, a lease lapses after LEASE_S (a client killed
before releasing), and idle buffers are deleted after IDLE_S.
"""

from __future__ import annotations

import logging
import mmap
import os
import secrets
import stat
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from colorize_backend.core.errors import ColorizeError, ErrorCode

LOG = logging.getLogger("colorize.shm")
LEASE_S = 60.0
IDLE_S = 30.0
GRANULE = 1 << 20  # buffer sizes are rounded up to whole MiB so they can be leased again


def shm_dir() -> Path:
    """The daemon's private folder for shared buffers (tmpfs on Linux)."""
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    return base / f"gimp-colorize-{user}"


def prepare_dir(folder: Path) -> Path | None:
    """Create the folder (0700) or check an existing one is ours and private; None if not.
    Buffers a killed daemon left behind are deleted."""
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
    except OSError as exc:
        LOG.warning("no shared-memory transport: %s", exc)
        return None
    mine = not hasattr(os, "getuid") or info.st_uid == os.getuid()
    private = sys.platform == "win32" or not info.st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    if not stat.S_ISDIR(info.st_mode) or not mine or not private:
        LOG.warning("no shared-memory transport: %s is not a private folder of this user", folder)
        return None
    for stale in folder.glob("colorize-*.buf"):
        stale.unlink(missing_ok=True)
    return folder


@dataclass(frozen=True)
class Region:
    offset: int
    nbytes: int

    @property
    def end(self) -> int:
        return self.offset + self.nbytes

    def overlaps(self, other: Region) -> bool:
        return self.offset < other.end and other.offset < self.end


@dataclass
class Buffer:
    name: str
    size: int
    mapping: mmap.mmap
    leased_until: float = 0.0
    last_used: float = 0.0


class BufferPool:
    """The daemon's shared buffers: leased to clients, mapped here for the daemon's life."""

    def __init__(self, folder: Path, max_bytes: int):
        self.folder = folder
        self.max_bytes = max_bytes
        self._buffers: dict[str, Buffer] = {}
        self._lock = threading.Lock()

    def lease(self, nbytes: int) -> Buffer:
        """A free buffer of at least nbytes (the smallest that fits), else a new one."""
        size = -(-nbytes // GRANULE) * GRANULE
        now = time.monotonic()
        with self._lock:
            free = [b for b in self._buffers.values() if b.leased_until < now and b.size >= size]
            buffer = min(free, key=lambda b: b.size) if free else self._create(size)
            buffer.leased_until = now + LEASE_S
            buffer.last_used = now
            return buffer

    def _create(self, size: int) -> Buffer:
        if sum(b.size for b in self._buffers.values()) + size > self.max_bytes:
            self._drop_idle(time.monotonic(), idle_s=0.0)
            if sum(b.size for b in self._buffers.values()) + size > self.max_bytes:
                raise ColorizeError(ErrorCode.BUSY, "shared memory is all leased; retry shortly")
        name = f"colorize-{secrets.token_hex(8)}.buf"
        descriptor = os.open(self.folder / name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(descriptor, size)
            flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
            mapping = mmap.mmap(descriptor, size, flags=flags)
        finally:
            os.close(descriptor)
        buffer = Buffer(name, size, mapping)
        self._buffers[name] = buffer
        return buffer

    def release(self, name: str) -> bool:
        with self._lock:
            buffer = self._buffers.get(name)
            if buffer is None:
                return False
            buffer.leased_until = 0.0
            buffer.last_used = time.monotonic()
            return True

    def view(self, name: str, region: Region, shape: tuple, dtype: np.dtype) -> np.ndarray:
        """An array over part of a leased buffer; a name not leased reads like a missing one."""
        with self._lock:
            buffer = self._buffers.get(name)
            if buffer is None or buffer.leased_until < time.monotonic():
                raise ColorizeError(ErrorCode.BAD_REQUEST, "shared buffer not leased")
            if region.end > buffer.size:
                raise ColorizeError(ErrorCode.BAD_HEADER, "shm: the pixels overrun the buffer")
            buffer.leased_until = max(buffer.leased_until, time.monotonic() + LEASE_S)
            return np.ndarray(shape, dtype=dtype, buffer=buffer.mapping, offset=region.offset)

    def trim(self) -> None:
        """Delete buffers nobody has used for IDLE_S (memory back to the system)."""
        with self._lock:
            self._drop_idle(time.monotonic(), IDLE_S)

    def _drop_idle(self, now: float, idle_s: float) -> None:
        for name, buffer in list(self._buffers.items()):
            if buffer.leased_until < now and now - buffer.last_used >= idle_s:
                del self._buffers[name]
                (self.folder / name).unlink(missing_ok=True)
                try:
                    buffer.mapping.close()
                except BufferError:  # a view is still alive: the collector unmaps it later
                    pass

    def close(self) -> None:
        with self._lock:
            for buffer in self._buffers.values():
                buffer.leased_until = 0.0
            self._drop_idle(float("inf"), 0.0)
