"""The evaluation entry points run real ONNX models through the engine on a photo folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from colorize_backend.core.manifest import MANIFEST_PATH, Manifest
from PIL import Image

from tests.onnx_models import write_manifest
from training import contact_sheet, decoder_frontier, evaluate, evaluate_guidance
from training.recognition import JUDGES
from training.sheet import LABEL_HEIGHT, TILE


def models_folder(tmp_path, guided: bool = False):
    folder = tmp_path / "models"
    folder.mkdir()
    return write_manifest(folder, guided)


@pytest.fixture
def photo_folder(tmp_path, photo):
    """Six colour photos in two folders, like the val set's layout: crops of the (black and
    white) sample photo, each tinted by its own colour gradient."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:200, 0:200] / 200.0
    for i in range(6):
        folder = tmp_path / "photos" / ("a" if i < 3 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        grey = photo[i * 10 : i * 10 + 200, i * 40 : i * 40 + 200, :1] / 255.0
        tint = 0.4 + 0.6 * rng.random((3, 1, 1)) * np.stack([x, y, 1 - x])
        colour = (grey * tint.transpose(1, 2, 0) * 255).astype(np.uint8)
        Image.fromarray(colour).save(folder / f"{i}.png")
    return tmp_path / "photos"


def test_evaluate_reports_every_metric_and_updates_the_manifest(photo_folder, tmp_path, capsys):
    manifest = models_folder(tmp_path)
    evaluate.main(["--data", str(photo_folder), "--manifest", str(manifest), "--update-manifest"])
    report = json.loads(capsys.readouterr().out)
    assert report["photos"] == 6
    assert report["psnr_db"] > 10 and 0 < report["ssim"] <= 1
    assert report["colorfulness"] > 0 and report["cpu_ms_256"] >= 0
    stored = json.loads(manifest.read_text())["models"][0]["metrics"]
    assert stored["psnr_db"] == report["psnr_db"]
    assert not Path(stored["data"]).is_absolute()  # the same record on every machine
    assert Path(stored["data"]).resolve() == photo_folder.resolve()
    assert [p.name for p in manifest.parent.iterdir() if "partial" in p.name] == []


def test_a_named_subset_of_the_metrics_is_stored_beside_the_headline(
    photo_folder, tmp_path, capsys
):
    manifest = models_folder(tmp_path)
    subset = photo_folder / "a"
    common = ["--manifest", str(manifest), "--update-manifest"]
    evaluate.main(["--data", str(subset), *common, "--metrics-key", "extra_val"])
    subset_report = json.loads(capsys.readouterr().out)
    for data in (subset, photo_folder):  # a second headline replaces the first, groups too
        evaluate.main(["--data", str(data), *common])
        headline = json.loads(capsys.readouterr().out)
    stored = json.loads(manifest.read_text())["models"][0]["metrics"]
    assert stored["photos"] == headline["photos"] == 6
    assert stored["by_group"] == headline["by_group"]
    assert stored["extra_val"] == subset_report and subset_report["photos"] == 3


def test_recognition_scores_the_photos_that_name_their_imagenet_class(
    photo_folder, tmp_path, capsys
):
    pytest.importorskip("efficientnet_lite_pytorch")
    named = photo_folder / "a" / "n01440764_tench.png"  # a WordNet id the classifier knows
    (photo_folder / "a" / "0.png").rename(named)
    manifest = models_folder(tmp_path)
    torch = pytest.importorskip("torch")
    threads_before = torch.get_num_threads()
    try:
        evaluate.main(
            ["--data", str(photo_folder), "--manifest", str(manifest), "--recognition"]
            + ["--threads", "1"]
        )
        judges_threads = torch.get_num_threads()  # --threads bounds the judges as well
    finally:
        torch.set_num_threads(threads_before)
    assert judges_threads == 1
    report = json.loads(capsys.readouterr().out)
    assert report["classified_photos"] == 1
    assert {
        f"top1_{image}_{judge}_pct" for image in ("truth", "grey", "ours") for judge in JUDGES
    } <= set(report)
    assert report["by_group"]["objects"]["photos"] == 6  # unknown folders count as objects


def test_guidance_evaluation_uses_the_installed_guided_models(photo_folder, tmp_path, capsys):
    manifest = models_folder(tmp_path, guided=True)
    evaluate_guidance.main(["--data", str(photo_folder), "--manifest", str(manifest)])
    report = json.loads(capsys.readouterr().out)
    assert report["photos"] == 6
    # painted dots come back in their own colour through the hint model's path
    assert report["hinted_pixels_mean_delta_e"] < 3
    assert report["exemplar_model"]["name"] == "exemplar" and report["hint_model"]["cpu_ms_512"] > 0


def test_contact_sheet_has_a_column_per_model(photo_folder, tmp_path, capsys):
    manifest = models_folder(tmp_path, guided=True)
    out = tmp_path / "sheet.png"
    contact_sheet.main(
        ["--data", str(photo_folder), "--manifest", str(manifest), "--out", str(out)]
    )
    with Image.open(out) as sheet:
        columns = 2 + 3  # grey, linear, exemplar, hint, truth
        assert sheet.size == (columns * TILE, LABEL_HEIGHT + 6 * TILE)
        pixels = np.asarray(sheet.convert("RGB"))
    assert pixels[LABEL_HEIGHT:].std() > 10  # photos, not blank tiles


def test_decoder_frontier_reads_the_shipped_graphs_logits_back(photo_folder, capsys):
    """Decoding the logits it reads back at the graph's temperature gives the graph's own ab,
    so the frontier's annealed-mean rows are the shipped model's."""
    manifest = Manifest.load(MANIFEST_PATH)
    default = manifest.entries[str(manifest.default)]
    graph = decoder_frontier.BinGraph(default.path)
    assert graph.temperature == pytest.approx(default.extra["annealed_mean_temperature"])
    lightness = np.random.default_rng(1).uniform(0, 100, (1, 1, 64, 96)).astype(np.float32)
    ab, logits = graph.run(lightness)
    decoded = decoder_frontier.annealed_mean(graph.centres, graph.temperature)(logits)
    np.testing.assert_allclose(decoded, ab, atol=1e-3)
    decoder_frontier.main(
        ["--model", str(default.path), "--data", str(photo_folder), "--limit", "2"]
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("2 photos") and len(lines) == 1 + 15
