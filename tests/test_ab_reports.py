"""The A/B reports of issue 16: paired bootstrap intervals (against SciPy's) and the table."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")  # training's package needs the train extra
from training import ab_table, compare  # noqa: E402


def write_rows(path, values: dict[str, float]) -> None:
    path.write_text("\n".join(json.dumps({"file": f, "psnr": v}) for f, v in values.items()))


def test_paired_interval_matches_scipy_bootstrap(tmp_path):
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    base = rng.normal(22.0, 2.0, 300)
    candidate = base + rng.normal(0.2, 0.8, 300)
    files = [f"p{i}.jpg" for i in range(300)]
    write_rows(tmp_path / "a.jsonl", dict(zip(files, base, strict=True)))
    write_rows(tmp_path / "b.jsonl", dict(zip(files, candidate, strict=True)))
    a, b = compare.read_rows(tmp_path / "a.jsonl"), compare.read_rows(tmp_path / "b.jsonl")
    n, mean_a, mean_b, difference, low, high = compare.paired(a, b, "psnr")
    reference = scipy_stats.bootstrap(
        (candidate - base,), np.mean, n_resamples=10_000, method="percentile", random_state=1
    ).confidence_interval
    assert n == 300
    assert difference == pytest.approx((candidate - base).mean())
    assert mean_b - mean_a == pytest.approx(difference)
    assert low == pytest.approx(reference.low, abs=0.01)
    assert high == pytest.approx(reference.high, abs=0.01)


def test_rows_from_another_data_root_pair_up(tmp_path, capsys):
    names = ("extra/val/animals/a.jpg", "extra/val/birds/a.jpg")
    write_rows(tmp_path / "a.jsonl", {f"../shared/datasets/{n}": 20.0 for n in names})
    write_rows(tmp_path / "b.jsonl", {f"/work/shared/datasets/{n}": 21.0 for n in names})
    compare.main([str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"), "--measures", "psnr"])
    report = json.loads(capsys.readouterr().out)
    assert report["psnr"]["photos"] == 2
    assert report["psnr"]["difference"] == pytest.approx(1.0)


def test_rows_of_other_photos_are_refused(tmp_path):
    write_rows(tmp_path / "a.jsonl", {"val/x/a.jpg": 20.0})
    write_rows(tmp_path / "b.jsonl", {"val/x/b.jpg": 21.0})
    with pytest.raises(SystemExit):
        compare.main([str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")])


def test_table_row_reads_measurements_and_cpu_time(tmp_path):
    arm = tmp_path / "semantic"
    arm.mkdir()
    (arm / "cpu.txt").write_text("Command exited with non-zero status 1\n2.0 1.0 4.0\n60 57 200\n")
    (arm / "eval-extra.json").write_text(json.dumps({"psnr_db": 22.2, "colorfulness": 31.25}))
    (arm / "eval-val.json").write_text(json.dumps({"psnr_db": 24.29, "colorfulness": 31.73}))
    classified = {"psnr_db": 21.87, "colorfulness": 32.2}
    classified |= {"top1_ours_lite0_pct": 56.6, "top1_ours_lite2_pct": 63.7}
    (arm / "eval-classified.json").write_text(json.dumps(classified))
    assert ab_table.row(arm) == (
        "| `semantic` | 2.0 | 22.20 / 31.2 | 21.87 / 32.2 | 56.6 / 63.7 | 24.29 / 31.7 |"
    )
