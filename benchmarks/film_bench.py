"""Figures for docs/film.md: flicker, per-frame PSNR and speed of film colorization.

python benchmarks/film_bench.py CLIP [CLIP ...] [--photo PHOTO] [--frames 120]
        [--sheet docs/film-sheet.jpg] [--output FILE]

Each clip (a colour video or GIF; its colour is the truth) is reduced to its lightness and
colorized three ways with the shipped default model: frame by frame, with the colour
carried along the motion (the default), and carried from frame 0 coloured from the truth
(a key frame). A colour photo panned and zoomed along a camera path is a further clip.
- flicker: mean |Δa*b*| between consecutive frames on the pixels whose lightness is stable
  after motion compensation (core.temporal.flicker); the truth's own is given beside it;
- PSNR: per frame against the truth, averaged over the clip;
- frames/s of the carried mode (network, flow and composition; decoding and encoding not
  included), and of a whole `colorize-backend colorize CLIP -o out.mp4` command.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from colorize_backend.core.color import lab_to_u8, rgb_to_lab
from colorize_backend.core.engine import Engine
from colorize_backend.core.manifest import Manifest
from colorize_backend.core.options import ColorizeOptions
from colorize_backend.core.pipeline import Colorizer
from colorize_backend.core.temporal import flicker
from colorize_backend.tools.film import FilmColorizer, FilmSettings
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's training/
from report import emit  # noqa: E402

from training.metrics import psnr  # noqa: E402


def clip_frames(path: Path, limit: int) -> list[np.ndarray]:
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == limit:
                break
    return frames


def camera_path(photo: Path, count: int) -> list[np.ndarray]:
    """A photo seen by a camera that pans right and slowly zooms in: 480 x 360 frames."""
    with Image.open(photo) as image:
        source = image.convert("RGB").resize((960, 720), Image.BICUBIC)
    frames = []
    for t in range(count):
        zoom = 1.0 + 0.3 * t / count
        width, height = 600 / zoom, 450 / zoom
        left, top = 40 + 300 * t / count, 120 + 40 * t / count
        box = (left, top, left + width, top + height)
        frames.append(np.asarray(source.resize((480, 360), Image.BILINEAR, box=box)))
    return frames


def grey(rgb: np.ndarray) -> np.ndarray:
    lightness = rgb_to_lab(rgb.astype(np.float32) / 255)[..., 0]
    return lab_to_u8(lightness, np.zeros(lightness.shape + (2,), np.float32))[..., :1]


def colorize(colorizer: Colorizer, frames: list[np.ndarray], temporal: bool, key=None):
    film = FilmColorizer(colorizer, ColorizeOptions(), FilmSettings(temporal=temporal))
    if key is not None:
        colorizer.sequences.set_key(film.sequence or "", 0, key)
    started = time.perf_counter()
    results = [film.frame(frame, i) for i, frame in enumerate(frames)]
    return results, len(frames) / (time.perf_counter() - started)


def measures(results: list[np.ndarray], truth: list[np.ndarray]) -> dict:
    labs = [rgb_to_lab(r.astype(np.float32) / 255) for r in results]
    return {
        "flicker": round(
            flicker([x[..., 0] for x in labs], [x[..., 1:].transpose(2, 0, 1) for x in labs]), 3
        ),  # fmt: skip
        "psnr_db": round(float(np.mean([psnr(r, t) for r, t in zip(results, truth)])), 2),
    }


def whole_command_fps(clip: Path) -> float:
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "colorize_backend.tools.cli", "colorize", str(clip),
                        "-o", f"{folder}/out.mp4"], check=True, capture_output=True)  # fmt: skip
        seconds = time.perf_counter() - started
    return len(clip_frames(clip, 100000)) / seconds


def sheet(rows: list[list[np.ndarray]], path: Path) -> None:
    """Rows of tiles (grey | frame by frame | carried | key frame 0 | truth), 160 px high."""
    tiles = [[Image.fromarray(np.repeat(t, 3, 2) if t.shape[2] == 1 else t) for t in row]
             for row in rows]  # fmt: skip
    height = 160
    scaled = [[t.resize((int(t.width * height / t.height), height)) for t in row] for row in tiles]
    width = max(sum(t.width for t in row) for row in scaled)
    canvas = Image.new("RGB", (width, height * len(scaled)), "white")
    for r, row in enumerate(scaled):
        x = 0
        for tile in row:
            canvas.paste(tile, (x, r * height))
            x += tile.width
    canvas.save(path, quality=88)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("clips", type=Path, nargs="+")
    parser.add_argument("--photo", type=Path, help="a colour photo for the camera-path clip")
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--sheet", type=Path)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    colorizer = Colorizer(Manifest.load(), Engine(["CPUExecutionProvider"], threads=2))
    clips = {clip.name: clip_frames(clip, args.frames) for clip in args.clips}
    if args.photo:
        clips["camera path over " + args.photo.name] = camera_path(args.photo, args.frames)
    report, rows = {}, []
    for name, truth in clips.items():
        frames = [grey(t) for t in truth]
        alone, _ = colorize(colorizer, frames, temporal=False)
        carried, fps = colorize(colorizer, frames, temporal=True)
        keyed, _ = colorize(colorizer, frames, temporal=True, key=truth[0])
        row = {"frames": len(frames), "size": f"{truth[0].shape[1]}x{truth[0].shape[0]}"}
        row["truth_flicker"] = measures(truth, truth)["flicker"]
        row["frame_by_frame"] = measures(alone, truth)
        row["carried"] = measures(carried, truth)
        row["key_frame_0"] = measures(keyed, truth)
        row["carried_frames_per_s"] = round(fps, 1)
        row["flicker_ratio"] = round(
            row["carried"]["flicker"] / row["frame_by_frame"]["flicker"], 3
        )
        report[name] = row
        middle = len(frames) // 2
        rows.append([frames[middle], alone[middle], carried[middle], keyed[middle], truth[middle]])
    for clip in args.clips:
        if clip.suffix in (".mp4", ".mkv", ".avi", ".mov"):
            report[clip.name]["whole_command_frames_per_s"] = round(whole_command_fps(clip), 1)
    if args.sheet:
        sheet(rows, args.sheet)
    emit(report, args.output)


if __name__ == "__main__":
    main()
