"""A dependency-free text progress bar for the CLI (stderr, redrawn in place on a terminal)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(items: list[T], label: str = "", stream=sys.stderr) -> Iterator[T]:
    """Yield items while drawing `label [#####.....] k/n elapsed`."""
    total = len(items)
    started = time.perf_counter()
    interactive = stream.isatty()

    def draw(done: int) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        line = (
            f"{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
            f"{time.perf_counter() - started:.1f}s"
        )
        stream.write(("\r" if interactive else "") + line + ("" if interactive else "\n"))
        stream.flush()

    draw(0)
    for index, item in enumerate(items):
        yield item
        draw(index + 1)
    if interactive:
        stream.write("\n")
