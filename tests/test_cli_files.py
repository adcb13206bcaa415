"""Real files through `colorize-backend colorize`: bit depths, colour profiles, EXIF and
resolution, and the rules that keep a user's files safe."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import imagecodecs
import numpy as np
import pytest
import tifffile
from colorize_backend.core.color import lightness_of
from colorize_backend.core.errors import ColorizeError
from colorize_backend.tools.images import read_photo
from PIL import Image, ImageCms

from tests.helpers import REPO


def cli(manifest, *args, timeout=180):
    return subprocess.run(
        [sys.executable, "-m", "colorize_backend.tools.cli", "--manifest", str(manifest), *args],
        capture_output=True, text=True, timeout=timeout, cwd=REPO,
    )  # fmt: skip


def ramp16(height: int = 120, width: int = 160) -> np.ndarray:
    """A grey ramp that uses the 16-bit steps (values off the 8-bit grid)."""
    values = np.linspace(3000, 62000, height * width).reshape(height, width)
    return (values + (np.arange(width) % 97)).astype(np.uint16)


def mean_lightness_error(source: np.ndarray, result: np.ndarray) -> float:
    top = 65535 if result.dtype == np.uint16 else 1.0 if result.dtype.kind == "f" else 255
    unclipped = (result > 0).all(-1) & (result < top * (1 - 1e-5)).all(-1)
    assert unclipped.mean() > 0.5
    return float(np.abs(lightness_of(source) - lightness_of(result))[unclipped].mean())


def test_a_16_bit_grey_png_gives_a_16_bit_result_with_its_lightness(test_manifest, tmp_path):
    source = ramp16()
    Image.fromarray(source).save(tmp_path / "scan.png")  # Pillow writes 16-bit grey (I;16)
    done = cli(test_manifest, "colorize", str(tmp_path / "scan.png"), "-o", str(tmp_path / "o.png"))
    assert done.returncode == 0, done.stderr
    result = imagecodecs.png_decode((tmp_path / "o.png").read_bytes())
    assert result.dtype == np.uint16 and result.shape == source.shape + (3,)
    assert mean_lightness_error(source[..., None], result) < 0.05
    assert Image.open(tmp_path / "o.png").info.get("icc_profile")  # the sRGB profile travels


def test_16_bit_colour_and_float_tiffs_keep_their_depth(test_manifest, tmp_path):
    colour = np.repeat(ramp16()[..., None], 3, axis=-1)
    tifffile.imwrite(tmp_path / "colour16.tif", colour, photometric="rgb")
    floats = (ramp16() / 65535.0).astype(np.float32)
    tifffile.imwrite(tmp_path / "float.tif", floats)
    for name, dtype in (("colour16", np.uint16), ("float", np.float32)):
        out = tmp_path / f"{name}-out.tif"
        done = cli(test_manifest, "colorize", str(tmp_path / f"{name}.tif"), "-o", str(out))
        assert done.returncode == 0, done.stderr
        result = tifffile.imread(out)
        assert result.dtype == dtype and result.shape == (120, 160, 3)
        source = colour if dtype == np.uint16 else floats[..., None]
        assert mean_lightness_error(source, result) < (0.05 if dtype == np.uint16 else 0.01)


def test_a_16_bit_colour_png_is_read_at_16_bits(tmp_path):
    colour = np.repeat(ramp16()[..., None], 3, axis=-1)
    (tmp_path / "c.png").write_bytes(imagecodecs.png_encode(colour))
    photo = read_photo(tmp_path / "c.png")
    assert photo.pixels.dtype == np.uint16 and np.array_equal(photo.pixels, colour)


def lstar_grey_profile() -> bytes:
    """A grey ICC profile whose tone curve is CIE L* (value/255 = L/100)."""
    lightness = np.linspace(0, 100, 4096)
    y = np.where(lightness > 8, ((lightness + 16) / 116) ** 3, lightness / 903.3)
    return imagecodecs.cms_profile("gray", transferfunction=y.astype(np.float32))


def test_an_embedded_profile_is_honoured(test_manifest, tmp_path):
    values = np.linspace(10, 245, 160).astype(np.uint8)
    grey = np.repeat(values[None, :], 120, axis=0)
    Image.fromarray(grey).save(tmp_path / "lstar.png", icc_profile=lstar_grey_profile())
    done = cli(
        test_manifest, "colorize", str(tmp_path / "lstar.png"), "-o", str(tmp_path / "o.png")
    )
    assert done.returncode == 0, done.stderr
    result = np.asarray(Image.open(tmp_path / "o.png"))
    meant = grey.astype(np.float32) / 255 * 100  # what the L* profile says these values are
    unclipped = (result > 0).all(-1) & (result < 255).all(-1)
    error = np.abs(lightness_of(result) - meant)[unclipped].mean()
    naive = np.abs(lightness_of(grey[..., None]) - meant).mean()
    assert error < 0.6 < naive  # ignoring the profile was off by several L units


def test_an_adobe_rgb_photo_is_converted_as_pillows_imagecms_does(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(30, 220, (40, 50, 3), dtype=np.uint8)
    adobe = imagecodecs.cms_profile("adobergb")
    Image.fromarray(pixels).save(tmp_path / "adobe.png", icc_profile=adobe)
    ours = read_photo(tmp_path / "adobe.png").pixels
    reference = ImageCms.profileToProfile(
        Image.fromarray(pixels), ImageCms.ImageCmsProfile(io.BytesIO(adobe)),
        ImageCms.createProfile("sRGB"),
    )  # fmt: skip
    assert np.abs(ours.astype(int) - np.asarray(reference)).max() <= 2
    assert np.abs(ours.astype(int) - pixels).max() > 10  # the conversion did something


def test_exif_orientation_exif_and_resolution_are_kept(test_manifest, tmp_path):
    grey = np.repeat(np.linspace(20, 230, 160).astype(np.uint8)[None], 100, axis=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: turn 90° clockwise to view
    exif[0x010F] = "ScanMaker 9000"  # make
    Image.fromarray(grey).save(tmp_path / "s.jpg", exif=exif.tobytes(), dpi=(600, 600))
    done = cli(test_manifest, "colorize", str(tmp_path / "s.jpg"), "-o", str(tmp_path / "o.png"))
    assert done.returncode == 0, done.stderr
    result = Image.open(tmp_path / "o.png")
    assert result.size == (100, 160)  # upright
    assert result.getexif().get(0x010F) == "ScanMaker 9000"
    assert result.getexif().get(0x0112, 1) == 1
    assert tuple(round(v) for v in result.info["dpi"]) == (600, 600)


def test_no_input_is_ever_overwritten_and_results_only_with_overwrite(test_manifest, tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    Image.open(REPO / "samples/sample.jpg").save(folder / "a.png")
    original = (folder / "a.png").read_bytes()
    same = cli(test_manifest, "colorize", str(folder), "-o", str(folder))
    assert same.returncode == 1 and "would overwrite an input" in same.stderr
    assert (folder / "a.png").read_bytes() == original
    out = tmp_path / "out"
    assert cli(test_manifest, "colorize", str(folder), "-o", str(out)).returncode == 0
    first = (out / "a.png").stat().st_mtime_ns
    again = cli(test_manifest, "colorize", str(folder), "-o", str(out))
    assert again.returncode == 0 and "exists (--overwrite replaces it)" in again.stderr
    assert (out / "a.png").stat().st_mtime_ns == first
    forced = cli(test_manifest, "colorize", str(folder), "-o", str(out), "--overwrite")
    assert forced.returncode == 0 and (out / "a.png").stat().st_mtime_ns != first


def test_an_animated_gif_is_refused_and_the_batch_goes_on(test_manifest, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    frames = [Image.new("L", (40, 30), v) for v in (50, 150)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:])
    Image.open(REPO / "samples/sample.jpg").save(folder / "still.jpg")
    done = cli(test_manifest, "colorize", str(folder), "-o", str(tmp_path / "out"))
    assert done.returncode == 1 and "has 2 frames" in done.stderr
    assert (tmp_path / "out/still.png").exists() and "colorized 1 of 2" in done.stderr


def test_output_names_and_formats_are_checked_before_anything_runs(test_manifest, tmp_path):
    sample = str(REPO / "samples/sample.jpg")
    gif = cli(test_manifest, "colorize", sample, "-o", str(tmp_path / "out.gif"))
    assert gif.returncode == 2 and "cannot write .gif" in gif.stderr
    assert not (tmp_path / "out.gif").exists()
    many = cli(test_manifest, "colorize", sample, sample.replace("sample", "*"), "-o",
               str(tmp_path / "one.png"))  # fmt: skip
    assert many.returncode == 2 and "give a folder" in many.stderr
    jpg = cli(test_manifest, "colorize", sample, "-o", str(tmp_path / "o.jpg"), "--quality", "80")
    assert jpg.returncode == 0 and Image.open(tmp_path / "o.jpg").format == "JPEG"


@pytest.mark.parametrize(
    "option, value, message",
    [("--strength", "-1", "outside 0..1"), ("--strength", "1.8", "outside 0..1"),
     ("--saturation", "3", "outside 0..2"), ("--png-compression", "12", "outside 0..9"),
     ("--detail-size", "10", "outside 64..2048"), ("--strength", "much", "not a number")],
)  # fmt: skip
def test_options_out_of_range_are_refused_with_a_message(test_manifest, tmp_path, option, value,
                                                         message):  # fmt: skip
    done = cli(test_manifest, "colorize", str(REPO / "samples/sample.jpg"), "-o",
               str(tmp_path / "o.png"), option, value)  # fmt: skip
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_an_unreadable_reference_is_a_clear_error(test_manifest, tmp_path):
    (tmp_path / "ref.jpg").write_bytes(b"not an image")
    done = cli(test_manifest, "colorize", str(REPO / "samples/sample.jpg"), "--reference",
               str(tmp_path / "ref.jpg"), "-o", str(tmp_path / "o.png"))  # fmt: skip
    assert done.returncode == 2 and "ref.jpg cannot be read" in done.stderr
    assert "Traceback" not in done.stderr


def test_grey_hints_are_refused_with_what_to_do_and_nothing_is_written(test_manifest, tmp_path):
    dots = np.zeros((120, 160, 2), np.uint8)  # painted on a grayscale image: grey + alpha
    dots[50:54, 60:64] = (180, 255)
    Image.fromarray(dots, "LA").save(tmp_path / "dots.png")
    done = cli(test_manifest, "colorize", str(REPO / "samples/sample.jpg"), "--hints",
               str(tmp_path / "dots.png"), "-o", str(tmp_path / "o.png"))  # fmt: skip
    assert done.returncode != 0 and "convert the image to RGB" in done.stderr
    assert not (tmp_path / "o.png").exists()


def test_a_huge_image_is_refused_by_its_header(tmp_path):
    Image.new("L", (2000, 1500)).save(tmp_path / "big.png")
    with pytest.raises(ColorizeError, match=r"2000x1500 \(3 MP\); at most 1 MP"):
        read_photo(tmp_path / "big.png", max_pixels=1_000_000)


def test_saturation_and_detail_size_reach_the_result(test_manifest, tmp_path):
    sample = str(REPO / "samples/sample.jpg")
    outputs = {}
    for name, extra in (("plain", []), ("muted", ["--saturation", "0.3"])):
        done = cli(test_manifest, "colorize", sample, "-o", str(tmp_path / f"{name}.png"), *extra)
        assert done.returncode == 0, done.stderr
        outputs[name] = np.asarray(Image.open(tmp_path / f"{name}.png")).astype(int)
    spread = {k: np.abs(v[..., 0] - v[..., 2]).mean() for k, v in outputs.items()}
    assert spread["muted"] < 0.5 * spread["plain"]


def test_models_and_doctor_speak_json(test_manifest):
    models = json.loads(cli(test_manifest, "models", "--json").stdout)
    assert models[0]["name"] == "linear"
    doctor = json.loads(cli(test_manifest, "doctor", "--json").stdout)
    assert {"system", "checks", "problems"} <= set(doctor)
