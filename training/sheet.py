"""Labelled grids of equally sized RGB images: the contact sheets in docs/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

TILE = 160
LABEL_HEIGHT = 18


def draw_sheet(labels: list[str], rows: list[list[np.ndarray]], path: Path) -> None:
    """One column per label, one row per list of images; PNG, or JPEG by the path's suffix."""
    sheet = Image.new("RGB", (len(labels) * TILE, LABEL_HEIGHT + len(rows) * TILE), "white")
    draw = ImageDraw.Draw(sheet)
    for c, label in enumerate(labels):
        draw.text((c * TILE + 4, 3), label, fill="black")
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            tile = Image.fromarray(image).resize((TILE, TILE))
            sheet.paste(tile, (c * TILE, LABEL_HEIGHT + r * TILE))
    options: dict[str, Any] = {"optimize": True}
    if path.suffix.lower() in (".jpg", ".jpeg"):
        options["quality"] = 88
    sheet.save(path, **options)
