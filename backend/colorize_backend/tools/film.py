"""Films on the command line: a video file (PyAV, the maintained FFmpeg binding) or a folder
of numbered frames, colorized frame by frame with the colour carried along the motion
(core.temporal), so that surfaces keep their colour from frame to frame.

- A video keeps its frame rate, its timestamps and its audio (copied, not re-encoded); the
  result is written under a temporary name and renamed, so nothing half-written remains.
- Frames of a folder are taken in natural order (frame2 before frame10) and written under
  the output folder with their names; a run started again resumes after the last frame
  written, carrying on from that frame's colour.
- A key frame (`--key-frame N=coloured.png`, a frame a person coloured) keeps its colour,
  and the rest of its shot follows it: the colour carried from it, and the key frame as the
  exemplar for each following frame until the next scene cut.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from colorize_backend.core.atomic_file import replaced_on_success
from colorize_backend.core.contract import ReferenceMode
from colorize_backend.core.errors import ColorizeError, ErrorCode
from colorize_backend.core.options import ColorizeOptions
from colorize_backend.core.pipeline import Colorizer
from colorize_backend.core.reference import Reference
from colorize_backend.tools.images import Photo, WriteOptions, read_photo, write_photo

VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".gif", ".mpg", ".mpeg"}
VIDEO_OUTPUTS = {".mp4", ".mkv", ".mov", ".avi", ".webm"}
SEQUENCE = "film"


@dataclass(frozen=True)
class FilmSettings:
    """How a film is colorized and written."""

    temporal: bool = True  # carry colour along the motion (False: every frame on its own)
    key_frames: dict[int, Path] = field(default_factory=dict)  # frame index → coloured frame
    codec: str | None = None  # None: H.264 where FFmpeg has it, else MPEG-4
    crf: int = 18  # H.264/H.265 quality (lower: better, larger)


@dataclass
class FilmSummary:
    frames: int = 0
    skipped: int = 0
    seconds: float = 0.0


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def natural_key(path: Path) -> list:
    """frame2 before frame10: digits compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


class FilmColorizer:
    """Frames in order → colour, with the temporal state and key frames of one film."""

    def __init__(self, colorizer: Colorizer, options: ColorizeOptions, settings: FilmSettings):
        self.colorizer, self.options, self.settings = colorizer, options, settings
        self.sequence = f"{SEQUENCE}-{id(self)}" if settings.temporal else None
        if settings.key_frames and self.sequence is None:
            raise ColorizeError(
                ErrorCode.BAD_REQUEST,
                "key frames steer a shot through its motion: drop --per-frame",
            )
        for index, path in settings.key_frames.items():
            self.colorizer.sequences.set_key(self.sequence or "", index, read_photo(path).pixels)

    def frame(self, pixels: np.ndarray, index: int) -> np.ndarray:
        """One frame's colour; frames must come in order."""
        options = replace(self.options, sequence=self.sequence, frame=index)
        reference = None
        key = self.colorizer.sequences.active_key(self.sequence) if self.sequence else None
        if key is not None and self.options.reference_mode is not ReferenceMode.HINTS:
            options = replace(options, reference_mode=ReferenceMode.EXEMPLAR)
            reference = Reference(key)
        return self.colorizer.colorize(pixels, options, reference).pixels


def colorize_video(
    film: FilmColorizer, source: Path, target: Path, overwrite: bool = False
) -> FilmSummary:
    """Decode, colorize and encode a video file; audio and timestamps are kept."""
    import av
    from tqdm import tqdm

    if target.suffix.lower() not in VIDEO_OUTPUTS:
        raise ColorizeError(
            ErrorCode.BAD_REQUEST,
            f"cannot write a film as {target.suffix or 'a file without suffix'}: use "
            f"{', '.join(sorted(VIDEO_OUTPUTS))}",
        )
    if target.exists() and not overwrite:
        raise ColorizeError(ErrorCode.BAD_REQUEST, f"{target} exists (--overwrite replaces it)")
    summary, started = FilmSummary(), time.perf_counter()
    try:
        with av.open(str(source)) as inp, replaced_on_success(target, keep_suffix=True) as partial:
            if not inp.streams.video:
                raise ColorizeError(ErrorCode.BAD_REQUEST, f"{source.name} has no video stream")
            video = inp.streams.video[0]
            audio = list(inp.streams.audio)
            with av.open(str(partial), "w") as out:
                encoder = _video_stream(out, video, film.settings)
                copies = {a.index: out.add_stream_from_template(a) for a in audio}
                bar = tqdm(total=video.frames or None, unit="frame", file=sys.stderr)
                with bar:
                    for packet in inp.demux(video, *audio):
                        if packet.stream.type == "audio":
                            _copy_audio(out, packet, copies)
                            continue
                        for frame in packet.decode():
                            _encode(out, encoder, frame, film, summary.frames)
                            summary.frames += 1
                            bar.update(1)
                for packet in encoder.encode(None):
                    out.mux(packet)
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise ColorizeError(
            ErrorCode.BAD_REQUEST, f"{source.name} cannot be read or written as a film: {exc}"
        ) from None
    summary.seconds = time.perf_counter() - started
    return summary


def _video_stream(out, video, settings: FilmSettings):
    import av

    codec = settings.codec or ("libx264" if "libx264" in av.codecs_available else "mpeg4")
    rate = video.average_rate or video.guessed_rate or 25
    stream = out.add_stream(codec, rate=rate)
    stream.width, stream.height = video.width // 2 * 2, video.height // 2 * 2
    stream.pix_fmt = "yuv420p"
    stream.time_base = video.time_base
    if codec in ("libx264", "libx265"):
        stream.options = {"crf": str(settings.crf), "preset": "veryfast"}
    return stream


def _copy_audio(out, packet, copies: dict) -> None:
    if packet.dts is None:  # a flushing packet: nothing to copy
        return
    packet.stream = copies[packet.stream.index]
    out.mux(packet)


def _encode(out, encoder, frame, film: FilmColorizer, index: int) -> None:
    import av

    rgb = frame.to_ndarray(format="rgb24")
    coloured = film.frame(rgb, index)[: encoder.height, : encoder.width]
    result = av.VideoFrame.from_ndarray(np.ascontiguousarray(coloured), format="rgb24")
    result.pts, result.time_base = frame.pts, frame.time_base
    for packet in encoder.encode(result):
        out.mux(packet)


def colorize_frames(
    film: FilmColorizer, frames: list[Path], target: Path, write: WriteOptions, overwrite: bool
) -> FilmSummary:
    """Numbered frame files in natural order into `target`, resuming after the last frame an
    earlier run wrote (its colour is where this run carries on from)."""
    from tqdm import tqdm

    frames = sorted(frames, key=natural_key)
    outputs = [target / path.name for path in frames]
    first = 0 if overwrite else next((i for i, o in enumerate(outputs) if not o.exists()), None)
    summary, started = FilmSummary(), time.perf_counter()
    if first is None:
        summary.skipped = len(frames)
        return summary
    summary.skipped = first
    if first > 0 and film.sequence is not None:  # carry on from the last frame written
        written = read_photo(outputs[first - 1]).pixels
        film.colorizer.sequences.set_key(film.sequence, first - 1, written, steers=False)
        film.frame(read_photo(frames[first - 1]).pixels, first - 1)
    for index in tqdm(range(first, len(frames)), unit="frame", file=sys.stderr):
        photo = read_photo(frames[index])
        pixels = film.frame(photo.pixels, index)
        write_photo(outputs[index], Photo(pixels, photo.exif, photo.dpi), write)
        summary.frames += 1
    summary.seconds = time.perf_counter() - started
    return summary
