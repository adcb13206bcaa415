"""Process memory: reading the resident set, and handing freed memory back to the system.

numpy frees a 12 MP image's buffers after each request, but glibc's allocator keeps
large freed blocks in its heap (and raises its mmap threshold after each large free),
so a daemon that once served a 60 MP request would stay that large. A fixed mmap
threshold makes large buffers come from mmap (returned on free), and malloc_trim
returns what is left after each request.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 20


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


LIBC = _libc()


def configure_allocator() -> None:
    """Serve large allocations from mmap so that freeing them returns them (glibc only)."""
    if LIBC is not None and hasattr(LIBC, "mallopt"):
        LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def trim() -> None:
    """Return free heap memory to the system (glibc only; elsewhere the allocator decides)."""
    if LIBC is not None and hasattr(LIBC, "malloc_trim"):
        LIBC.malloc_trim(0)


def rss_bytes() -> int:
    """Current resident set size of this process (0 where it cannot be read)."""
    try:
        with open(f"/proc/{os.getpid()}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def peak_rss_bytes() -> int:
    """Peak resident set size of this process since it started (or since reset_peak)."""
    try:
        with open(f"/proc/{os.getpid()}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def reset_peak() -> bool:
    """Restart peak RSS accounting (Linux ≥ 4.0: write 5 to clear_refs); False if not possible."""
    try:
        with open(f"/proc/{os.getpid()}/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False
