"""Films: frames colorized with the colour carried along the motion, videos through PyAV.

Needs the `video` extra (PyAV) and OpenCV; skipped without them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

av = pytest.importorskip("av")
pytest.importorskip("cv2")

from colorize_backend.core.color import rgb_to_lab  # noqa: E402
from colorize_backend.core.options import ColorizeOptions  # noqa: E402
from colorize_backend.core.temporal import TemporalColour, flicker  # noqa: E402
from colorize_backend.tools.film import FilmColorizer, FilmSettings  # noqa: E402

from tests.helpers import REPO  # noqa: E402


def textured(height: int = 120, width: int = 400, seed: int = 0) -> np.ndarray:
    """A grey photo with texture at every scale (so that flow can follow it), [H, W] u8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    grey = 128 + 50 * np.sin(x / 9.0 + seed) * np.cos(y / 13.0) + 30 * np.sin((x + 2 * y) / 31.0)
    grey += rng.normal(0, 6, grey.shape)
    return np.clip(grey, 0, 255).astype(np.uint8)


def panning(frames: int = 16, step: int = 3, seed: int = 0) -> list[np.ndarray]:
    """A camera panning over the photo by `step` pixels a frame: [h, w, 1] u8 frames."""
    photo = textured(seed=seed)
    return [photo[:, i * step : i * step + 256, None].copy() for i in range(frames)]


def lab_of(rgb: np.ndarray) -> np.ndarray:
    return rgb_to_lab(rgb.astype(np.float32) / 255)


def flicker_of(labs: list[np.ndarray]) -> float:
    return flicker([lab[..., 0] for lab in labs], [lab[..., 1:].transpose(2, 0, 1) for lab in labs])


def run_film(colorizer, frames, temporal: bool, keys=None) -> list[np.ndarray]:
    film = FilmColorizer(colorizer, ColorizeOptions(), FilmSettings(temporal=temporal))
    for index, key in (keys or {}).items():
        colorizer.sequences.set_key(film.sequence, index, key)
    return [film.frame(frame, i) for i, frame in enumerate(frames)]


def test_a_panning_shot_keeps_its_colour_better_than_frame_by_frame(colorizer):
    frames = panning()
    labs = {mode: [lab_of(f) for f in run_film(colorizer, frames, mode)] for mode in (0, 1)}
    shaky = flicker(
        [lab[..., 0] for lab in labs[0]], [lab[..., 1:].transpose(2, 0, 1) for lab in labs[0]]
    )
    steady = flicker(
        [lab[..., 0] for lab in labs[1]], [lab[..., 1:].transpose(2, 0, 1) for lab in labs[1]]
    )
    assert steady < 0.5 * shaky or steady < 0.3
    # a point of the scene keeps its colour as the camera moves (3 px a frame)
    track = np.array([labs[1][i][60, 200 - 3 * i, 1:] for i in range(len(frames))])
    assert np.abs(track - track.mean(axis=0)).max() < 3.0


def test_a_scene_cut_restarts_the_colour():
    state = TemporalColour()
    first, other = textured(seed=1)[:, :256] / 2.55, textured(seed=7)[::-1, 100:356] / 2.55
    ab = np.zeros((2,) + first.shape, np.float32)
    assert state.step(first, ab).cut  # the first frame
    assert not state.step(first, ab + 10).cut  # the same scene
    assert state.step(other, ab - 10).cut  # another scene: the prediction, not the carry
    assert np.allclose(state.ab, -10)


def test_a_key_frame_coloured_from_the_truth_steers_its_shot(colorizer):
    """Frame 0 as a person coloured it (a red-and-blue version): the shot follows it."""
    frames = panning(frames=10)
    truth = []
    for frame in frames:
        rgb = np.repeat(frame, 3, axis=2).astype(np.int16)
        rgb[..., 0] += 40  # reddish
        rgb[..., 2] -= 30
        truth.append(np.clip(rgb, 0, 255).astype(np.uint8))
    plain = run_film(colorizer, frames, temporal=True)
    keyed = run_film(colorizer, frames, temporal=True, keys={0: truth[0]})

    def error(results: list[np.ndarray]) -> float:
        return float(np.mean([np.abs(lab_of(r)[..., 1:] - lab_of(t)[..., 1:]).mean()
                              for r, t in zip(results, truth)]))  # fmt: skip

    assert error(keyed) < 0.5 * error(plain)
    assert np.abs(lab_of(keyed[-1])[..., 1:] - lab_of(truth[-1])[..., 1:]).mean() < 8


def write_clip(path: Path, frames: list[np.ndarray], audio_seconds: float | None = None):
    with av.open(str(path), "w") as out:
        video = out.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        sound = None
        if audio_seconds:
            sound = out.add_stream("aac", rate=22050)
            sound.layout = "mono"
        for frame in frames:
            picture = av.VideoFrame.from_ndarray(np.repeat(frame, 3, axis=2), format="rgb24")
            for packet in video.encode(picture):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if sound is not None:
            t = np.arange(int(22050 * audio_seconds)) / 22050
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            for start in range(0, tone.shape[1], 1024):
                chunk = av.AudioFrame.from_ndarray(tone[:, start : start + 1024], format="fltp",
                                                   layout="mono")  # fmt: skip
                chunk.sample_rate = 22050
                for packet in sound.encode(chunk):
                    out.mux(packet)
            for packet in sound.encode(None):
                out.mux(packet)


def cli(manifest: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "colorize_backend.tools.cli", "--manifest", str(manifest),
         "colorize", *args],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip


def test_a_video_keeps_its_frames_rate_and_sound(test_manifest, tmp_path):
    source, target = tmp_path / "film.mp4", tmp_path / "film-colour.mp4"
    write_clip(source, panning(frames=20), audio_seconds=2.0)
    done = cli(test_manifest, str(source), "-o", str(target))
    assert done.returncode == 0, done.stderr[-2000:]
    with av.open(str(source)) as before, av.open(str(target)) as after:
        assert after.streams.video[0].average_rate == before.streams.video[0].average_rate
        assert after.streams.audio and after.streams.audio[0].codec_context.name == "aac"
        frames = [f.to_ndarray(format="rgb24") for f in after.decode(video=0)]
        assert abs(float(after.duration or 0) - float(before.duration or 0)) < 2e5  # µs
    assert len(frames) == 20
    assert np.ptp(frames[5].astype(int), axis=-1).mean() > 2  # colour, not grey
    assert not list(tmp_path.glob(".*partial*"))


def test_a_corrupt_video_is_refused_and_nothing_is_written(test_manifest, tmp_path):
    source = tmp_path / "broken.mp4"
    source.write_bytes(b"\x00\x00\x00\x18ftypmp42" + np.random.default_rng(0).bytes(3000))
    done = cli(test_manifest, str(source), "-o", str(tmp_path / "out.mp4"))
    assert done.returncode == 2 and "cannot be read or written as a film" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4"]


def test_a_frame_folder_in_natural_order_resumes_where_it_stopped(test_manifest, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, frame in enumerate(panning(frames=12)):
        Image.fromarray(frame[..., 0]).save(frames / f"frame{i}.png")  # frame10 after frame9
    out = tmp_path / "out"
    whole = cli(test_manifest, str(frames), "-o", str(out), "--sequence")
    assert whole.returncode == 0, whole.stderr[-2000:]
    complete = {p.name: np.asarray(Image.open(p)).astype(int) for p in out.iterdir()}
    for name in ("frame9.png", "frame10.png", "frame11.png"):
        (out / name).unlink()
    again = cli(test_manifest, str(frames), "-o", str(out), "--sequence")
    assert again.returncode == 0 and "colorized 3 frame(s)" in again.stderr
    assert "9 already done" in again.stderr
    for name in ("frame9.png", "frame10.png", "frame11.png"):
        resumed = np.asarray(Image.open(out / name)).astype(int)
        assert np.abs(resumed - complete[name]).mean() < 1.0  # carried on, not restarted


def test_frames_of_another_size_start_a_new_shot():
    state = TemporalColour()
    frame = textured()[:, :256] / 2.55
    ab = np.zeros((2,) + frame.shape, np.float32)
    state.step(frame, ab)
    smaller = frame[:, :200]
    assert state.step(smaller, ab[:, :, :200] + 5).cut
