"""One way every benchmark hands over its figures: JSON on stdout, and into --output."""

from __future__ import annotations

import json
from pathlib import Path


def emit(report: dict, output: Path | str | None) -> None:
    text = json.dumps(report, indent=2)
    print(text)
    if output:
        Path(output).write_text(text + "\n")
