"""The shipped models, checked against their sha256 before anything runs them."""

from __future__ import annotations

import hashlib
import json

from installer.layout import Layout, say


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_models(layout: Layout) -> list[str]:
    """Problems with the shipped model files (missing or changed); says which are fine."""
    manifest = json.loads((layout.models / "manifest.json").read_text())
    problems = []
    for entry in manifest["models"]:
        path = layout.models / entry["file"]
        if not path.exists():
            problems.append(f"{entry['name']}: {path} is missing")
        elif sha256_of(path) != entry["sha256"]:
            problems.append(f"{entry['name']}: {path} does not match its sha256 (corrupted?)")
        else:
            say(f"model {entry['name']} ({entry['kind']}) ok: sha256 {entry['sha256'][:12]}…")
    return problems
