"""Is one model better than another on the same photos? Paired differences with bootstrap
confidence intervals, from the per-photo rows `training.evaluate --rows` writes.

python -m training.compare BASE_ROWS.jsonl CANDIDATE_ROWS.jsonl [--measures psnr cf ...]

Both files must hold the same photos, matched by the last three parts of their path
(split/group/name), so rows written with another data root still pair up. For each
measure: the two means, the mean paired difference and its 95 % interval (10,000 resamples
of the photos); an interval that excludes 0 is a difference larger than the noise of
choosing these photos.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

DEFAULT_MEASURES = ("psnr", "cf", "top1_ours_lite0", "top1_ours_lite2")


def photo_key(file: str) -> str:
    """The photo's split/group/name: the same photo read through `../shared/datasets` or an
    absolute root is one photo."""
    return "/".join(Path(file).parts[-3:])


def read_rows(path: Path) -> dict[str, dict]:
    rows = map(json.loads, path.read_text().splitlines())
    return {photo_key(row["file"]): row for row in rows}


def paired(base: dict[str, dict], candidate: dict[str, dict], measure: str, seed: int = 0):
    """(base mean, candidate mean, mean difference, 2.5 % and 97.5 % bootstrap bounds)."""
    files = sorted(f for f in base if f in candidate and measure in base[f])
    if not files:
        return None
    a = np.array([base[f][measure] for f in files], dtype=np.float64)
    b = np.array([candidate[f][measure] for f in files], dtype=np.float64)
    diff = b - a
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(10_000, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return len(files), a.mean(), b.mean(), diff.mean(), low, high


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("base", type=Path)
    p.add_argument("candidate", type=Path)
    p.add_argument("--measures", nargs="+", default=list(DEFAULT_MEASURES))
    args = p.parse_args(argv)
    base, candidate = read_rows(args.base), read_rows(args.candidate)
    if not base.keys() & candidate.keys():
        p.error(f"{args.base} and {args.candidate} share no photo")
    report = {}
    for measure in args.measures:
        found = paired(base, candidate, measure)
        if found is None:
            continue
        n, a, b, d, low, high = found
        report[measure] = {
            "photos": n,
            "base": round(a, 4),
            "candidate": round(b, 4),
            "difference": round(d, 4),
            "interval_95": [round(low, 4), round(high, 4)],
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
