"""Files replaced whole: written beside their place, then renamed over it, so that a reader
(another daemon, the installer, a crash halfway) never sees half a photo, film, manifest,
cache or checkpoint, and a failed write leaves the old file as it was."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replaced_on_success(path: Path, keep_suffix: bool = False, writer: str = "") -> Iterator[Path]:
    """A hidden partial file beside `path` for the block to write; renamed over `path` when
    the block succeeds, removed when it fails. It ends in .partial, so that a process killed
    halfway never leaves what looks like a finished photo, and it is one name per target, so
    that the retry after such a kill writes over the dead attempt's partial; `writer` (a pid)
    separates processes that write the same file at the same time. `keep_suffix` puts the
    suffix last instead, for writers that take the format from it (PyAV)."""
    tag = f".{writer}" if writer else ""
    name = (
        f".{path.stem}{tag}.partial{path.suffix}" if keep_suffix else f".{path.name}{tag}.partial"
    )
    partial = path.with_name(name)
    try:
        yield partial
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def write_text_atomically(path: Path, text: str) -> None:
    """For files that several processes rewrite (the manifest, the runtime-choices cache)."""
    with replaced_on_success(path, writer=str(os.getpid())) as partial:
        partial.write_text(text)
