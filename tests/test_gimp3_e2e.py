"""End to end in real GIMP 3.0.4 (Debian trixie chroot): plug-in ↔ live daemon on loopback.

Builds the chroot on first use (tests/gimp/build_chroot.sh, needs root and a Debian
mirror), installs the plug-in with install.py's own code, runs both procedures on
the bundled photograph and checks the new layer's pixels.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
from colorize_backend.core.color import lightness_from_u8, lightness_of, rgb_to_lab
from colorize_backend.core.manifest import Manifest
from PIL import Image

from installer.layout import Layout
from installer.plugins import install_plugins
from tests.helpers import REPO, loopback_endpoint, start_daemon
from training.metrics import colorfulness

pytestmark = pytest.mark.gimp
CHROOT = Path(os.environ.get("GIMP3_CHROOT", "/var/tmp/colorize-gimp3"))
GIMP_HOME = "/root"  # inside the chroot
HINT_DOTS = [(20, 20), (60, 40), (100, 60)]  # in the hint layer's own coordinates
HINT_COLOURS = [(200, 40, 40), (40, 160, 60), (40, 80, 200)]
HINT_LAYER_OFFSET, SOURCE_OFFSET = (64, 40), (24, 12)


@pytest.fixture(scope="module")
def chroot():
    if os.geteuid() != 0:
        pytest.skip("real-GIMP tests need root for the chroot")
    build = subprocess.run(
        ["bash", str(REPO / "tests/gimp/build_chroot.sh"), str(CHROOT)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if build.returncode != 0:
        pytest.fail(f"could not build the GIMP chroot:\n{build.stdout}\n{build.stderr}")
    return CHROOT


@pytest.fixture(scope="module")
def live_daemon(tmp_path_factory):
    """The real daemon with the shipped default model, as users run it."""
    log = tmp_path_factory.mktemp("daemon") / "daemon.log"
    daemon = start_daemon(loopback_endpoint(), None, "--log-file", str(log))
    daemon.log = log
    yield daemon
    daemon.stop()


@contextlib.contextmanager
def proc_in(chroot: Path):
    """/proc inside the chroot, as a GIMP on the same machine sees it: the daemon's shared
    buffers are opened through /proc/<daemon pid>/fd."""
    inside = chroot / "proc"
    mounted = subprocess.run(["mountpoint", "-q", str(inside)]).returncode == 0
    if not mounted:
        subprocess.run(["mount", "-t", "proc", "proc", str(inside)], check=True)
    try:
        yield
    finally:
        if not mounted:
            subprocess.run(["umount", str(inside)], check=False)


@pytest.fixture(scope="module")
def installed(chroot, live_daemon):
    profile = chroot / GIMP_HOME.lstrip("/") / ".config/GIMP/3.0"
    shutil.rmtree(profile / "plug-ins" / "colorize", ignore_errors=True)
    install_plugins(Layout(), [profile], live_daemon.endpoint, vendor=False)
    assert os.access(profile / "plug-ins/colorize/colorize.py", os.X_OK)
    return profile


def run_gimp(chroot: Path, cases: list[str], env: dict[str, str] | None = None) -> dict:
    work = chroot / "tmp/colorize-e2e"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copy(REPO / "samples/sample.jpg", work / "photo.jpg")
    shutil.copy(REPO / "tests/gimp/drive_colorize.py", work / "drive.py")
    (work / "adobe.icc").write_bytes(imagecodecs.cms_profile("adobergb"))
    Image.fromarray(colour_photo()).save(work / "colour.png")
    params = {
        "cases": cases,
        "hint_dots": HINT_DOTS,
        "hint_colours": HINT_COLOURS,
        "hint_layer_offset": HINT_LAYER_OFFSET,
        "source_offset": SOURCE_OFFSET,
    }
    (work / "params.json").write_text(json.dumps(params))
    environment = ["HOME=" + GIMP_HOME, "LANG=C.UTF-8"] + [
        f"{k}={v}" for k, v in (env or {}).items()
    ]
    started = time.perf_counter()
    with proc_in(chroot):
        proc = run_in_chroot(chroot, environment)
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, f"GIMP failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    facts = json.loads((work / "facts.json").read_text())
    facts["_seconds"] = elapsed
    facts["_work"] = str(work)
    print(f"GIMP run {cases}: {elapsed:.1f} s")
    return facts


def run_in_chroot(chroot: Path, environment: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "chroot",
            str(chroot),
            "env",
            *environment,
            "gimp-console-3.0",
            "-i",
            "--batch-interpreter=python-fu-eval",
            "-b",
            "exec(open('/tmp/colorize-e2e/drive.py').read())",
            "--quit",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


def colour_photo() -> np.ndarray:
    """A colour "photo" to borrow from: warm at the top, green in the middle, blue below."""
    rows = np.linspace(0, 1, 240)[:, None, None]
    top, middle, bottom = np.array([220, 120, 60]), np.array([70, 160, 60]), np.array([50, 90, 200])
    rgb = np.where(
        rows < 0.5, top + (middle - top) * rows * 2, middle + (bottom - middle) * (rows - 0.5) * 2
    )
    return np.repeat(rgb, 320, axis=1).astype(np.uint8)


def pixels(facts: dict, case: str, name: str) -> np.ndarray:
    layer = facts[case][name]
    raw = (Path(facts["_work"]) / f"{case}-{name.replace('_', '-')}.rgba").read_bytes()
    return np.frombuffer(raw, np.uint8).reshape(layer["height"], layer["width"], 4)


CASES = [
    "auto", "reference", "grey_hints", "sixteen", "selection", "profile", "variants", "detail",
    "all", "exemplar_other", "exemplar_in_grey", "animation",
]  # fmt: skip


@pytest.fixture(scope="module")
def gimp_run(chroot, installed):
    return run_gimp(chroot, CASES)


@pytest.mark.parametrize("case", ["auto", "reference", "sixteen", "selection", "profile"])
def test_new_layer_above_source_with_same_geometry(gimp_run, case):
    facts = gimp_run[case]
    assert facts["status"] == "success", facts["error"]
    assert facts["menu"] == ["<Image>/Filters/Colorize"]
    source = facts["source_before"]
    result = facts["result"]
    assert result["name"] == source["name"] + " (colorized)"
    assert (result["width"], result["height"]) == (source["width"], source["height"])
    assert result["offsets"] == source["offsets"] == list(SOURCE_OFFSET)
    above = 2 if case == "reference" else 1  # above the hint layer too, which lies above it
    assert facts["result_position"] == facts["source_position"] - above
    if case == "reference":
        names = facts["layers_after"]
        assert names.index(result["name"]) < names.index("hints")  # visible, not hidden


@pytest.mark.parametrize("case", ["auto", "reference"])
def test_source_unchanged_lightness_kept_and_colour_added(gimp_run, case):
    before = pixels(gimp_run, case, "source_before")
    after = pixels(gimp_run, case, "source_after")
    np.testing.assert_array_equal(before, after)
    result = pixels(gimp_run, case, "result")[..., :3]
    unclipped = (result > 0).all(-1) & (result < 255).all(-1)
    delta = np.abs(lightness_from_u8(before[..., :3]) - lightness_from_u8(result))[unclipped]
    assert delta.mean() < 1.0
    assert colorfulness(result) > 0


def test_painted_hint_dots_come_out_in_their_colours(gimp_run):
    result = pixels(gimp_run, "reference", "result")[..., :3]
    lab = rgb_to_lab(result.astype(np.float32) / 255)
    shift = np.subtract(HINT_LAYER_OFFSET, SOURCE_OFFSET)
    for (x, y), colour in zip(HINT_DOTS, HINT_COLOURS):
        sx, sy = x + shift[0], y + shift[1]
        got = np.median(lab[sy - 1 : sy + 2, sx - 1 : sx + 2, 1:].reshape(-1, 2), axis=0)
        want = rgb_to_lab(np.array(colour, np.float32) / 255)[1:]
        cosine = got @ want / (np.linalg.norm(got) * np.linalg.norm(want))
        assert cosine > 0.9 and np.linalg.norm(got) > 10, (colour, got, want)


def test_grey_hints_say_what_to_do_and_change_nothing(gimp_run):
    facts = gimp_run["grey_hints"]
    assert facts["status"] == "execution-error"
    assert "convert the image to RGB" in facts["error"]
    assert facts["layers_after"] == facts["layers_before"]  # no result layer
    assert facts["base_type"] == facts["base_before"] == "gray"  # not even converted
    before = pixels(gimp_run, "grey_hints", "source_before")
    assert np.array_equal(before, pixels(gimp_run, "grey_hints", "source_after"))


def test_frames_of_an_animation_are_colorized_in_one_step(gimp_run, live_daemon):
    facts = gimp_run["animation"]
    assert facts["status"] == "success", facts["error"]
    results = [n for n in facts["layers_after"] if n.endswith("(colorized)")]
    assert len(results) == 7  # the photo and its six panned frames
    log = live_daemon.log.read_text()
    assert "sequence=gimp-" in log  # sent as frames of one sequence, in order


def test_an_exemplar_from_another_open_image_lends_its_colour(gimp_run):
    facts = gimp_run["exemplar_other"]
    assert facts["status"] == "success", facts["error"]
    assert facts["other_image_layers"] == 1  # the exemplar's own image is left alone
    result = pixels(gimp_run, "exemplar_other", "result")[..., :3]
    before = pixels(gimp_run, "exemplar_other", "source_before")
    assert np.array_equal(before, pixels(gimp_run, "exemplar_other", "source_after"))
    assert colorfulness(result) > 5


def test_an_exemplar_in_a_greyscale_image_says_why_and_what_to_do(gimp_run):
    facts = gimp_run["exemplar_in_grey"]
    assert facts["status"] == "execution-error"
    assert "greyscale image" in facts["error"] and "File > Open" in facts["error"]
    assert facts["layers_after"] == facts["layers_before"]


def test_a_16_bit_image_gets_a_16_bit_result_that_keeps_its_lightness(gimp_run):
    facts = gimp_run["sixteen"]
    assert facts["status"] == "success", facts["error"]
    assert facts["precision"] == "u16-non-linear"
    work = Path(gimp_run["_work"])
    height, width = facts["result"]["height"], facts["result"]["width"]
    source = np.frombuffer((work / "sixteen-source.u16").read_bytes(), "<u2").reshape(
        height, width, 1
    )
    result = np.frombuffer((work / "sixteen-result.u16").read_bytes(), "<u2")
    result = result.reshape(height, width, 3)
    assert (source % 257 != 0).mean() > 0.9  # the source really uses the 16-bit steps
    assert (result % 257 != 0).mean() > 0.9  # and so does the result: not an 8-bit layer
    unclipped = (result > 0).all(-1) & (result < 65535).all(-1)
    delta = np.abs(lightness_of(source) - lightness_of(result))[unclipped]
    assert unclipped.mean() > 0.5 and delta.mean() < 0.05


def test_a_selection_masks_the_result_with_its_feathering(gimp_run):
    facts = gimp_run["selection"]
    assert facts["status"] == "success", facts["error"] and facts["result_has_mask"]
    work = Path(gimp_run["_work"])
    mask = np.frombuffer((work / "selection-result.mask").read_bytes(), np.uint8)
    selection = np.frombuffer((work / "selection-selection.mask").read_bytes(), np.uint8)
    image_w = facts["result"]["width"] + 40  # the image is the layer plus the margins
    shape = (facts["result"]["height"], facts["result"]["width"])
    x0, y0 = SOURCE_OFFSET
    selection = selection.reshape(-1, image_w)[y0 : y0 + shape[0], x0 : x0 + shape[1]]
    mask = mask.reshape(shape)
    assert np.abs(mask.astype(int) - selection).max() <= 1
    soft = (mask > 0) & (mask < 255)
    assert soft.sum() > 100  # feathered edges kept, not a hard cut


def test_the_image_profile_is_honoured_and_kept(gimp_run):
    facts = gimp_run["profile"]
    assert facts["status"] == "success", facts["error"]
    adobe = (Path(gimp_run["_work"]) / "adobe.icc").read_bytes()
    assert bytes.fromhex(facts["profile"]) == adobe  # the image keeps its own profile
    before = pixels(gimp_run, "profile", "source_after")[..., :3]
    result = pixels(gimp_run, "profile", "result")[..., :3]
    unclipped = (result > 0).all(-1) & (result < 255).all(-1)
    delta = np.abs(lightness_from_u8(before) - lightness_from_u8(result))[unclipped]
    assert delta.mean() < 1.0


def test_the_dialog_offers_the_installed_models_and_variants(gimp_run):
    assert gimp_run["model_choices"][0] == "default"
    automatic = {e.name for e in Manifest.load().entries.values() if e.kind.value == "auto"}
    assert set(gimp_run["model_choices"][1:]) == automatic  # guided models need a reference
    variants = [n for n in gimp_run["variants"]["layers_after"] if "(colorized: " in n]
    assert len(variants) == 3 and len(set(variants)) == 3


def test_detail_size_and_saturation_reach_the_daemon(gimp_run, live_daemon):
    default = Manifest.load()
    assert gimp_run["detail_size_default"] == default.entries[default.default].input_size
    assert gimp_run["detail"]["status"] == "success", gimp_run["detail"]["error"]
    auto = pixels(gimp_run, "auto", "result")[..., :3].astype(int)
    detail = pixels(gimp_run, "detail", "result")[..., :3].astype(int)
    chroma = [np.ptp(result, axis=-1).mean() for result in (auto, detail)]
    assert chroma[1] > chroma[0] * 1.2  # saturation 1.5 at another working size
    log = live_daemon.log.read_text()
    assert "detail=96 saturation=1.5" in log
    assert log.count("detail=") == 1  # left at its default, each model works at its own


def test_colorize_all_layers_colorizes_each_layer(gimp_run):
    facts = gimp_run["all"]
    assert facts["status"] == "success", facts["error"]
    results = [n for n in facts["layers_after"] if n.endswith("(colorized)")]
    source = facts["source_before"]["name"]
    assert sorted(results) == sorted([f"{source} (colorized)", "Second (colorized)"])
    assert facts["layers_after"].index("Second (colorized)") == 0  # above its own source


def test_the_pixels_travel_through_shared_memory(gimp_run, live_daemon):
    """GIMP's Python (3.13 in the chroot) wrote the layer into the daemon's shared file and
    read the result from it: the request went without pixel frames."""
    requests = [
        line for line in live_daemon.log.read_text().splitlines() if " INFO request " in line
    ]  # served ones
    assert requests and all(" shared " in line for line in requests), requests


def test_daemon_down_gives_clear_error_and_leaves_image_untouched(chroot, installed, tmp_path):
    config = {
        "endpoint": loopback_endpoint(),
        "launcher": ["/nonexistent/backend"],
        "hello_timeout_s": 0.5,
        "start_timeout_s": 2,
    }
    (chroot / "tmp/colorize-down.json").write_text(json.dumps(config))
    facts = run_gimp(chroot, ["auto"], {"COLORIZE_CONFIG": "/tmp/colorize-down.json"})["auto"]
    assert facts["status"] == "execution-error"
    assert "colorize backend" in facts["error"]
    assert facts["layers_after"] == facts["layers_before"]
    assert facts["base_type"] == "gray"  # not even converted to RGB
    np.testing.assert_array_equal(
        pixels({"auto": facts, "_work": str(chroot / "tmp/colorize-e2e")}, "auto", "source_before"),
        pixels({"auto": facts, "_work": str(chroot / "tmp/colorize-e2e")}, "auto", "source_after"),
    )
