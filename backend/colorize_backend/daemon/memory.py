"""Process memory: reading the resident set, and handing freed memory back to the system.

numpy frees a request's buffers when it is done, but glibc's allocator keeps freed blocks
of up to 32 MB in its heap, so a daemon that once served a 60 MP request would stay
large. malloc_trim hands that memory back. The daemon does it once it has been idle for
a moment, not after every request: memory handed back must be faulted in again by the
next request, which costs several milliseconds per megapixel on a busy queue.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


LIBC = _libc()


def trim() -> None:
    """Return free heap memory to the system (glibc only; elsewhere the allocator decides)."""
    if LIBC is not None and hasattr(LIBC, "malloc_trim"):
        LIBC.malloc_trim(0)


# glibc's mallopt parameters, and the ceiling its dynamic mmap threshold grows to on 64-bit
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
DYNAMIC_MMAP_CEILING = 32 * 2**20


def keep_freed_blocks() -> bool:
    """Let freed photo-sized blocks be reused, in a process started with MALLOC_TRIM_THRESHOLD_
    (Dask's nanny sets 64 kB for every worker). Setting it freezes glibc's mmap threshold at
    128 kB, so every 1-MP array is mapped, faulted in page by page and unmapped again: 11 ms
    more CPU per 1-MP photo measured in a worker (benchmarks/README.md). This restores what
    the dynamic threshold would reach (blocks up to 32 MB from the heap, trimmed past twice
    that). False where nothing was changed (no such setting, or not glibc)."""
    if LIBC is None or "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return False
    mapped = LIBC.mallopt(M_MMAP_THRESHOLD, DYNAMIC_MMAP_CEILING)
    trimmed = LIBC.mallopt(M_TRIM_THRESHOLD, 2 * DYNAMIC_MMAP_CEILING)
    return bool(mapped and trimmed)


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
