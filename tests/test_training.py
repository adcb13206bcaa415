"""Every architecture trains a few steps, exports to ONNX by the contract, and runs in the engine.

Needs the `train` extra (PyTorch, EfficientNet-Lite0); skipped without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")

from colorize_backend.core.contract import ReferenceMode  # noqa: E402
from colorize_backend.core.engine import Engine  # noqa: E402
from colorize_backend.core.manifest import MANIFEST_PATH, Manifest  # noqa: E402
from colorize_backend.core.options import ColorizeOptions  # noqa: E402
from colorize_backend.core.pipeline import Colorizer  # noqa: E402
from colorize_backend.core.reference import Reference  # noqa: E402

from tests.helpers import REPO  # noqa: E402
from tests.onnx_models import write_linear_auto_model  # noqa: E402
from training import (  # noqa: E402
    exemplar_cache,
    export,
    interpolate,
    train,
    train_semantic_exemplar,
)
from training.arch import ARCHITECTURES, TRAINED_END_TO_END  # noqa: E402


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A dozen colour photos in two folders: real training photos where the dataset is beside
    the checkout, else smooth synthetic colour fields."""
    from PIL import Image

    root = tmp_path_factory.mktemp("photos")
    dataset = REPO.parent / "shared/datasets/train"
    rng = np.random.default_rng(0)
    for folder in ("lfw", "scenes"):
        (root / folder).mkdir()
        if dataset.is_dir():
            for source in sorted((dataset / folder).iterdir())[:6]:
                shutil.copy(source, root / folder / source.name)
            continue
        for i in range(6):
            y, x = np.mgrid[0:96, 0:96] / 96.0
            colour = rng.random((3, 1, 1)) * np.stack([x, y, 1 - x * y]) * 255
            Image.fromarray(colour.transpose(1, 2, 0).astype(np.uint8)).save(
                root / folder / f"{i}.png"
            )
    return root


def colour_photo(root) -> np.ndarray:
    from PIL import Image

    with Image.open(sorted(root.rglob("*.*"))[0]) as image:
        return np.asarray(image.convert("RGB"))


def red_dots(shape: tuple[int, int]) -> np.ndarray:
    """A transparent hint layer with a few opaque red dots."""
    hints = np.zeros(shape + (4,), np.uint8)
    hints[10:14, 10:14] = hints[-14:-10, -14:-10] = (200, 30, 30, 255)
    return hints


@pytest.mark.parametrize("name", TRAINED_END_TO_END)
def test_architecture_trains_exports_and_colorizes(name, photos, tmp_path, photo):
    out = tmp_path / "run"
    args = [
        "--arch",
        name,
        "--data",
        str(photos),
        "--val",
        str(photos),
        "--out",
        str(out),
        "--cache",
        str(tmp_path / "cache"),
        "--cache-size",
        "64",
        "--crop",
        "64",
        "--batch",
        "4",
        "--epochs",
        "1",
        "--val-limit",
        "8",
        "--threads",
        "2",
    ]
    checkpoint = train.train(train.parse_args(args))
    record = json.loads((out / "history.jsonl").read_text().splitlines()[-1])
    assert record["step"] == 3 and np.isfinite(record["val_loss"])

    manifest = tmp_path / "models" / "manifest.json"
    manifest.parent.mkdir()
    export.main([str(checkpoint), "--name", name, "--manifest", str(manifest)])
    entry = json.loads(manifest.read_text())["models"][0]
    assert entry["kind"] == ARCHITECTURES[name].kind and len(entry["sha256"]) == 64
    if ARCHITECTURES[name].objective == "bins":  # judged at the shipped default's temperature
        shipped = json.loads(MANIFEST_PATH.read_text())
        default = next(m for m in shipped["models"] if m["name"] == shipped["default"])
        assert entry["annealed_mean_temperature"] == default["annealed_mean_temperature"]

    colorizer = Colorizer(Manifest.load(manifest), Engine(["CPUExecutionProvider"], threads=2))
    grey = photo[..., :1]
    reference = {"auto": None, "exemplar": Reference(colour_photo(photos))}.get(
        entry["kind"], Reference(red_dots(grey.shape[:2]))
    )
    if entry["kind"] == "auto":
        result = colorizer.colorize(grey, ColorizeOptions(model=name))
    else:
        result = colorizer.colorize(grey, reference=reference)
    assert result.model == name and result.pixels.shape == grey.shape[:2] + (3,)


def test_semantic_exemplar_trains_on_cached_features_exports_and_colorizes(photos, tmp_path, photo):
    listed = [(path, path.parent.name) for path in sorted(photos.rglob("*.*"))]
    cache = tmp_path / "cache"
    exemplar_cache.build(listed, cache)
    out = tmp_path / "run"
    train_semantic_exemplar.main(
        ["--cache", str(cache), "--out", str(out), "--steps", "6", "--batch", "4",
         "--val-every", "3"]
    )  # fmt: skip
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [3, 6]
    assert all(np.isfinite(h[k]["loss"]) for h in history for k in ("same photo", "same class"))

    models = tmp_path / "models"
    models.mkdir()
    write_linear_auto_model(models / "linear.onnx")  # the automatic colour it falls back on
    manifest = models / "manifest.json"
    export.update_manifest(
        {"name": "linear", "file": "linear.onnx", "kind": "auto", "input_size": 64}, manifest
    )
    export.main([str(out / "best.pt"), "--name", "semantic", "--manifest", str(manifest)])
    colorizer = Colorizer(Manifest.load(manifest), Engine(["CPUExecutionProvider"], threads=2))
    grey = photo[..., :1]
    result = colorizer.colorize(
        grey,
        ColorizeOptions(reference_mode=ReferenceMode.EXEMPLAR),
        Reference(colour_photo(photos)),
    )
    assert result.model == "semantic" and result.pixels.shape == grey.shape[:2] + (3,)


def test_torch_lab_conversion_matches_scikit_image():
    import skimage.color
    import torch

    from training.color_torch import rgb_to_lab

    rgb = np.random.default_rng(3).random((2, 3, 16, 16)).astype(np.float32)
    expected = skimage.color.rgb2lab(rgb.transpose(0, 2, 3, 1).astype(np.float64))
    got = rgb_to_lab(torch.from_numpy(rgb)).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, expected, atol=2e-3)


def test_batches_are_random_crops_of_the_cached_photos():
    import torch

    from training.data import LabBatches, PhotoSet

    photos = np.zeros((4, 40, 40, 3), np.uint8)
    photos[:, :, :20] = (200, 30, 30)  # left half red, right half blue
    photos[:, :, 20:] = (30, 30, 200)
    batches = LabBatches(PhotoSet.of(photos), crop=16, batch_size=4, extra="reference")
    lightness, ab, reference = batches.batch(torch.arange(4))
    assert lightness.shape == (4, 1, 16, 16) and ab.shape == (4, 2, 16, 16)
    assert reference.shape == (4, 3, 16, 16)
    assert 0 <= float(lightness.min()) and float(lightness.max()) <= 100
    red_left = ab[:, 0, :, 0] > 30  # a* high on the left edge unless mirrored
    assert red_left.any() and (ab[:, 1].min() < -30)  # blue (b* low) appears too
    assert len(list(batches.epoch(seed=1))) == 1


def test_torch_lab_to_rgb_matches_scikit_image():
    import skimage.color
    import torch

    from training.color_torch import lab_to_rgb

    rng = np.random.default_rng(4)
    lab = rng.uniform([0, -60, -60], [100, 60, 60], (2, 16, 16, 3))
    expected = np.clip(skimage.color.lab2rgb(lab), 0, 1)
    got = lab_to_rgb(torch.from_numpy(lab.transpose(0, 3, 1, 2)).float()).numpy()
    np.testing.assert_allclose(got.transpose(0, 2, 3, 1), expected, atol=2e-3)


def test_semantic_consistency_loss_is_zero_for_the_truth_and_reaches_the_logits():
    import torch

    from training.color_torch import lab_to_rgb
    from training.semantic_loss import SemanticConsistencyLoss

    rng = np.random.default_rng(5)
    centres = torch.from_numpy(np.stack(np.meshgrid(*[np.arange(-40.0, 50, 10)] * 2), -1))
    centres = centres.reshape(-1, 2).float()
    loss = SemanticConsistencyLoss(centres, temperature=0.8)
    logits = torch.from_numpy(rng.normal(size=(2, len(centres), 16, 16)).astype(np.float32))
    lightness = torch.full((2, 1, 64, 64), 60.0)
    # the truth is exactly what these logits decode to: no loss
    truth = loss.colorized(logits, lightness)
    terms = loss(logits, lightness, truth)
    assert all(float(term) < 1e-4 for term in terms)
    # a different truth (a red field) costs, and the gradient reaches the logits
    red = lab_to_rgb(torch.cat([lightness, torch.full((2, 2, 64, 64), 40.0)], dim=1))
    logits.requires_grad_(True)
    terms = loss(logits, lightness, red)
    sum(terms).backward()
    assert terms.class_kl.item() > 0 and terms.feature_distance.item() > 0.01
    assert terms.colour_shortfall.item() > 0.05  # the red field is far more colourful
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0
    # a grey truth asks for no colour: no shortfall, whatever the prediction
    grey = lab_to_rgb(torch.cat([lightness, torch.zeros(2, 2, 64, 64)], dim=1))
    assert loss(logits, lightness, grey).colour_shortfall.item() == 0.0


def test_a_sources_shortfall_counts_by_its_factor_in_the_batches_and_the_loss():
    """--colour-shortfall-source-factor: each drawn photo carries its source's factor, and the
    shortfall term weighs each photo's shortfall by it."""
    import torch

    from training.color_torch import lab_to_rgb
    from training.data import LabBatches, PhotoSet
    from training.semantic_loss import SemanticConsistencyLoss

    photos = PhotoSet([np.full((2, 32, 32, 3), 90, np.uint8)] * 2, ["lfw", "duts"])
    factors = train.source_factors(photos, ["lfw=4"])
    np.testing.assert_array_equal(factors, [4, 4, 1, 1])
    assert train.source_factors(photos, []) is None
    np.testing.assert_array_equal(train.source_factors(photos, ["pets=2"]), [1, 1, 1, 1])
    batches = LabBatches(photos, 16, 4, "rgb", photo_weights=factors)
    *_, drawn = batches.batch(torch.tensor([0, 3, 1, 2]))
    np.testing.assert_array_equal(drawn.numpy(), [4, 1, 4, 1])

    centres = torch.tensor([[0.0, 0.0], [20.0, 20.0]])
    loss = SemanticConsistencyLoss(centres, temperature=0.8)
    logits = torch.zeros(2, 2, 8, 8)
    lightness = torch.full((2, 1, 32, 32), 60.0)
    red = lab_to_rgb(torch.cat([lightness, torch.full((2, 2, 32, 32), 40.0)], dim=1))
    plain = loss(logits, lightness, red).colour_shortfall
    weighted = loss(logits, lightness, red, torch.tensor([3.0, 0.0])).colour_shortfall
    torch.testing.assert_close(weighted, plain * 1.5)


def test_torch_colourfulness_matches_the_reported_metric():
    import torch

    from training.color_torch import colourfulness
    from training.metrics import colorfulness

    rng = np.random.default_rng(9)
    photos = rng.uniform(0, 1, (3, 24, 32, 3))
    photos[1] = photos[1].mean(axis=2, keepdims=True)  # grey: 0
    photos[2, ..., 0] = 0.9  # red cast
    got = colourfulness(torch.from_numpy(photos.transpose(0, 3, 1, 2)))
    expected = [colorfulness(photo * 255.0) for photo in photos]
    np.testing.assert_allclose(got.numpy(), expected, atol=0.05)


def test_almost_grey_photos_are_never_drawn():
    from training.data import PhotoSet

    photos = np.full((4, 32, 32, 3), 128, np.uint8)
    photos[:2, :, :, 0] = 220  # two clearly red photos, two grey ones
    probabilities = PhotoSet.of(photos).probabilities(min_colourfulness=15)
    np.testing.assert_allclose(probabilities, [0.5, 0.5, 0, 0])


def test_photos_pack_small_for_a_gpu_machine_and_a_tiny_run_trains_there(photos, tmp_path):
    """The packing and training/gpu_run.sh, on the CPU: what a GPU machine would run."""
    from training import pack

    packed = tmp_path / "photos.npz"
    count = pack.pack([photos], packed, side=96, quality=85, budget=400_000, part=0)
    assert 0 < count <= 12 and packed.stat().st_size < 400_000
    again = tmp_path / "other.npz"
    pack.pack([photos], again, side=96, quality=85, budget=400_000, part=1)
    assert pack.unpack(packed, tmp_path / "unpacked") == count
    assert {p.parent.name for p in (tmp_path / "unpacked").rglob("*.jpg")} <= {"lfw", "scenes"}
    env = dict(os.environ, STAGE=str(tmp_path / "stage"), OUT=str(tmp_path / "out"),
               DEVICE="cpu", STEPS="2", BATCH="4", PY=sys.executable,
               EXTRA="--cache-size 96 --crop 64")  # fmt: skip
    for minutes, pack_file in (("0", packed), ("5", again)):  # two warm calls: stage, then train
        done = subprocess.run(["bash", str(REPO / "training/gpu_run.sh"), minutes, str(pack_file)],
                              env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "2 packs" in done.stdout
    parts = sorted((tmp_path / "out").glob("last.pt.part-*"))
    assert parts and all(p.stat().st_size <= 15 * 2**20 for p in parts)
    checkpoint = tmp_path / "last.pt"
    checkpoint.write_bytes(b"".join(p.read_bytes() for p in parts))
    digest = (tmp_path / "out/last.pt.sha256").read_text().split()[0]
    assert hashlib.sha256(checkpoint.read_bytes()).hexdigest() == digest
    state = torch.load(checkpoint, weights_only=False, map_location="cpu")
    assert state["progress"]["step"] == 2
    assert (state["args"]["cache_size"], state["args"]["crop"]) == ("96", "64")  # EXTRA applied


def test_a_resumed_run_learns_at_the_rate_it_is_given(photos, tmp_path):
    """The optimiser's state comes from the checkpoint, its learning rate from --lr: a long
    run can be continued at a lower rate."""
    common = ["--arch", "fusion", "--data", str(photos), "--out", str(tmp_path / "run")]
    common += ["--cache", str(tmp_path / "cache"), "--cache-size", "64", "--crop", "64"]
    common += ["--batch", "4", "--steps", "2", "--threads", "2", "--backbone-lr-scale", "0.1"]
    train.train(train.parse_args(common + ["--lr", "1e-3"]))
    args = train.parse_args(common + ["--lr", "2e-4"])
    run = train.new_run(args, train.PhotoSet.load(args.data, args.cache_size, args.cache))
    assert run.progress.step == 2
    assert [g["base_lr"] for g in run.optimizer.param_groups] == pytest.approx([2e-4, 2e-5])
    assert all(run.optimizer.state_dict()["state"].values())  # Adam's moments carried over


def tiny_averaged_run(photos, tmp_path) -> list[str]:
    """train.py options for a few fast steps of the fusion network into tmp_path/run, at a
    rate and moving-average decay that make the average and the last weights differ."""
    common = ["--arch", "fusion", "--data", str(photos), "--out", str(tmp_path / "run")]
    common += ["--cache", str(tmp_path / "cache"), "--cache-size", "64", "--crop", "64"]
    return common + ["--batch", "4", "--threads", "2", "--lr", "1e-2", "--ema-decay", "0.5"]


def test_a_moving_average_of_the_weights_carries_across_pieces_and_is_what_is_exported(
    photos, tmp_path
):
    """--ema-decay: the checkpoint carries the average, a resumed piece continues it (not
    restarts it), and export builds the graph from it rather than the last step's weights."""
    common = tiny_averaged_run(photos, tmp_path)
    train.train(train.parse_args(common + ["--steps", "5", "--stop-at-step", "3"]))
    state = torch.load(tmp_path / "run/last.pt", weights_only=False, map_location="cpu")
    assert int(state["ema"]["n_averaged"]) == 3
    train.train(train.parse_args(common + ["--steps", "5"]))
    state = torch.load(tmp_path / "run/last.pt", weights_only=False, map_location="cpu")
    assert int(state["ema"]["n_averaged"]) == 5

    graph, _ = export.load_graph(tmp_path / "run/last.pt", temperature=0.4)
    exported = graph.network.state_dict()
    averaged = {k.removeprefix("module."): v for k, v in state["ema"].items() if k != "n_averaged"}
    moved = [k for k, v in state["model"].items() if v.is_floating_point()
             and not torch.equal(v, averaged[k])]  # fmt: skip
    assert moved  # the average lags the last step at this rate
    assert all(torch.equal(exported[k], averaged[k]) for k in moved)
    last_step, _ = export.load_graph(tmp_path / "run/last.pt", temperature=0.4, average=False)
    assert all(torch.equal(last_step.network.state_dict()[k], state["model"][k]) for k in moved)


def test_measure_sh_judges_the_average_or_with_last_step_the_last_weights(photos, tmp_path):
    """training/measure.sh on a checkpoint: exported (the moving average unless LAST_STEP=1)
    and measured through the backend, every photo's row kept for paired comparisons."""
    common = tiny_averaged_run(photos, tmp_path)
    train.train(train.parse_args(common + ["--steps", "3"]))
    (tmp_path / "data/extra").mkdir(parents=True)
    (tmp_path / "data/val").symlink_to(photos)
    (tmp_path / "data/extra/val").symlink_to(photos)
    env = dict(os.environ, DATA=str(tmp_path / "data"), PARTS="val extra-all", PY=sys.executable)
    exported = {}
    for mode, extra in (("average", {}), ("last", {"LAST_STEP": "1"})):
        done = subprocess.run(
            ["bash", str(REPO / "training/measure.sh"), str(tmp_path / "run/last.pt"),
             str(tmp_path / mode), "0.4"],
            env={**env, **extra}, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        for part in ("val", "extra-all"):
            rows = (tmp_path / mode / f"rows-{part}.jsonl").read_text().splitlines()
            assert len(rows) == 12 and json.loads(rows[0])["psnr"] > 10
        exported[mode] = (tmp_path / mode / "candidate.onnx").read_bytes()
    assert exported["average"] != exported["last"]


def test_interpolated_checkpoint_lies_on_the_line_between_the_two_runs_weights(photos, tmp_path):
    """training.interpolate: every float weight of the mixed checkpoint is (1 - a) * start +
    a * end of the two judged (averaged) weight sets, checked with numpy; export reads it;
    checkpoints with other colour bins are refused."""
    common = tiny_averaged_run(photos, tmp_path)
    train.train(train.parse_args(common + ["--steps", "4", "--stop-at-step", "2"]))
    shutil.copy(tmp_path / "run/last.pt", tmp_path / "start.pt")
    train.train(train.parse_args(common + ["--steps", "4"]))
    mixed_path = tmp_path / "mixed.pt"
    interpolate.main([str(tmp_path / "start.pt"), str(tmp_path / "run/last.pt"),
                      "--alpha", "0.25", "--out", str(mixed_path)])  # fmt: skip

    start, end = (export.judged_weights(torch.load(p, weights_only=False, map_location="cpu"))
                  for p in (tmp_path / "start.pt", tmp_path / "run/last.pt"))  # fmt: skip
    graph, _ = export.load_graph(mixed_path, temperature=0.4)
    mixed = graph.network.state_dict()
    floats = [k for k, v in end.items() if v.is_floating_point()]
    assert any(not torch.equal(start[k], end[k]) for k in floats)
    for k in floats:
        expected = 0.75 * start[k].double().numpy() + 0.25 * end[k].double().numpy()
        np.testing.assert_allclose(mixed[k].double().numpy(), expected, rtol=1e-5, atol=1e-6)

    other = torch.load(tmp_path / "start.pt", weights_only=False, map_location="cpu")
    shifted = other | {"centres": other["centres"] + 1.0}
    with pytest.raises(ValueError, match="colour bins"):
        interpolate.interpolated_checkpoint(other, shifted, 0.5, "")
