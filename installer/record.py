"""What install.py wrote, remembered so that --uninstall removes exactly that."""

from __future__ import annotations

import json
import time
from pathlib import Path

from installer.layout import Layout


def record_path(layout: Layout) -> Path:
    return layout.state_dir / "install-record.json"


def read_record(layout: Layout) -> dict:
    if layout.python.exists() and record_path(layout).exists():
        return json.loads(record_path(layout).read_text())
    return {"plugins": [], "created": [], "endpoints": []}


def write_record(layout: Layout, plugins: list[str], created: list[str], endpoint: str) -> None:
    """Add what this run wrote (and the endpoint its daemon serves) to what earlier runs did."""
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    previous = read_record(layout)
    record = {
        "repo": str(layout.repo),
        "installed_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "plugins": sorted(set(previous["plugins"]) | set(plugins)),
        "created": sorted(set(previous["created"]) | set(created)),
        "endpoints": sorted(set(previous.get("endpoints", [])) | {endpoint}),
    }
    record_path(layout).write_text(json.dumps(record, indent=2) + "\n")
