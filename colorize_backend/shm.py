"""Zero-copy local transport: pixels in a shared file, only the header over the socket.

A client on the same machine writes its pixels into a file it creates in the daemon's
private folder (announced in `hello`: on Linux a tmpfs, /dev/shm), and names the file in
its request; the daemon maps the file, reads the pixels where they lie and writes the
result into the same file, where the client reads it. Neither side copies the image
through ZeroMQ. The daemon accepts only plain file names in its own folder, files of its
own user, regions inside the file that do not overlap; a name it cannot use reads like a
missing one. Files a killed client left behind are removed after a while.
"""

from __future__ import annotations

import logging
import mmap
import os
import re
import stat
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from colorize_backend.errors import ColorizeError, ErrorCode

LOG = logging.getLogger("colorize.shm")
NAME = re.compile(r"colorize-[A-Za-z0-9_]{1,60}\.buf")
STALE_S = 15 * 60


def shm_dir() -> Path:
    """The daemon's private folder for shared buffers (tmpfs on Linux)."""
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    return base / f"gimp-colorize-{user}"


def prepare_dir(folder: Path) -> Path | None:
    """Create the folder (0700) or check an existing one is ours and private; None if not."""
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


class SharedBuffer:
    """A client's shared file, mapped for one job; arrays are views into it."""

    def __init__(self, folder: Path, name: str, regions: list[Region]):
        if not NAME.fullmatch(name):
            raise ColorizeError(ErrorCode.BAD_HEADER, "shm.name is not a shared buffer's name")
        unusable = ColorizeError(ErrorCode.BAD_REQUEST, "shared buffer not found")
        try:
            flags = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
            descriptor = os.open(folder / name, flags)
        except OSError:
            raise unusable from None
        try:
            info = os.fstat(descriptor)
            mine = not hasattr(os, "getuid") or info.st_uid == os.getuid()
            needed = max(region.end for region in regions)
            if not stat.S_ISREG(info.st_mode) or not mine or info.st_size < needed:
                raise unusable
            self._map = mmap.mmap(descriptor, info.st_size)
        finally:
            os.close(descriptor)

    def array(self, region: Region, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return np.ndarray(shape, dtype=dtype, buffer=self._map, offset=region.offset)

    def close(self) -> None:
        try:
            self._map.close()
        except BufferError:  # a view is still alive: the mapping goes when it does
            LOG.debug("shared buffer still referenced; closed later by the collector")


def reap(folder: Path, now: float | None = None) -> int:
    """Remove buffers older than STALE_S (left by clients that were killed)."""
    now = now or time.time()
    removed = 0
    for path in folder.glob("colorize-*.buf"):
        try:
            if now - path.stat().st_mtime > STALE_S:
                path.unlink()
                removed += 1
        except OSError:
            continue
    return removed
