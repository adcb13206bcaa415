"""Zero-copy local transport: pixels in shared memory, only the header over the socket.

A client on the same machine leases a buffer from the daemon (`lease`): an anonymous memory
file (Linux memfd) that the daemon creates, sizes and then seals, so that its size can
never change again; the client opens it through the path the lease names
(/proc/<daemon pid>/fd/<n>), writes its pixels there and sends a header-only request naming
the buffer; the daemon writes the result into the same buffer, where the client reads it,
and the client hands the buffer back (`release`). Neither side copies the image through
ZeroMQ.

The seals make the buffers safe for the daemon: a client cannot shrink one under a running
job (touching the lost pages would kill the daemon with SIGBUS), and a buffer has no name
in any shared folder, so no other daemon can delete it; it lives exactly as long as the
daemon holds it. Where sealed memory files do not exist (macOS, Windows), a daemon offers
no shared memory and the socket carries the pixels.

The daemon keeps its buffers mapped between requests and leases them again, so their
pages are never faulted in twice: a fresh 12 MP result would otherwise cost ~10 000 page
faults. Buffers are bounded in total, a lease lapses after LEASE_S (a client killed
before releasing), and idle buffers are dropped after IDLE_S.
"""

from __future__ import annotations

import logging
import mmap
import os
import secrets
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from colorize_backend.core.errors import ColorizeError, ErrorCode

LOG = logging.getLogger("colorize.shm")
LEASE_S = 60.0
IDLE_S = 30.0
GRANULE = 1 << 20  # buffer sizes are rounded up to whole MiB so they can be leased again


def available() -> bool:
    """True where sealed memory files can be shared with local clients (Linux)."""
    import fcntl

    return (
        sys.platform.startswith("linux")
        and hasattr(os, "memfd_create")
        and hasattr(fcntl, "F_ADD_SEALS")
        and os.path.isdir(f"/proc/{os.getpid()}/fd")
    )


def sealed_memory(name: str, size: int) -> int:
    """A memory file of exactly `size` bytes whose size can never change (its descriptor)."""
    import fcntl

    descriptor = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(descriptor, size)
        seals = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL
        fcntl.fcntl(descriptor, fcntl.F_ADD_SEALS, seals)
    except OSError:
        os.close(descriptor)
        raise
    return descriptor


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
    descriptor: int  # kept open: clients open the buffer through /proc/<pid>/fd/<descriptor>
    mapping: mmap.mmap
    leased_until: float = 0.0
    last_used: float = 0.0

    @property
    def path(self) -> str:
        """Where a local client opens this buffer."""
        return f"/proc/{os.getpid()}/fd/{self.descriptor}"


class BufferPool:
    """The daemon's shared buffers: leased to clients, mapped here for the daemon's life."""

    def __init__(self, max_bytes: int):
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
        name = f"colorize-{secrets.token_hex(8)}"
        descriptor = sealed_memory(name, size)
        try:
            flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
            mapping = mmap.mmap(descriptor, size, flags=flags)
        except OSError:
            os.close(descriptor)
            raise
        buffer = Buffer(name, size, descriptor, mapping)
        self._buffers[name] = buffer
        return buffer

    def held_bytes(self) -> int:
        """The memory all buffers hold (mapped and touched, so counted in the RSS)."""
        with self._lock:
            return sum(b.size for b in self._buffers.values())

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
                os.close(buffer.descriptor)
                try:
                    buffer.mapping.close()
                except BufferError:  # a view is still alive: the collector unmaps it later
                    pass

    def close(self) -> None:
        with self._lock:
            for buffer in self._buffers.values():
                buffer.leased_until = 0.0
            self._drop_idle(float("inf"), 0.0)
