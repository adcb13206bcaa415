"""Files replaced whole: written beside their place, then renamed over it, so that a reader
(another daemon, the installer, a crash halfway) never sees half a manifest or cache."""

from __future__ import annotations

import os
from pathlib import Path


def write_text_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        partial.write_text(text)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
