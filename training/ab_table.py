"""The A/B table of models/README.md from the arms' measurements (training/ab.sh).

python -m training.ab_table [--runs ~/colorize-runs/ab] ARM [ARM ...]

One row per arm: the CPU time its training took (cpu.txt: user + system seconds of each
piece), and through the backend's pipeline PSNR and colourfulness on 300 extra/val photos,
PSNR, colourfulness and top-1 under both judges on the classified extra/val photos, and PSNR
and colourfulness on 300 val photos. A first row gives grey and the truth where measured.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def cpu_minutes(arm: Path) -> str:
    """User + system minutes over the pieces that finished (an interrupted piece leaves
    'Command exited...' and its own figures, or nothing when the machine went away)."""
    seconds = 0.0
    path = arm / "cpu.txt"
    for line in path.read_text().splitlines() if path.exists() else []:
        fields = line.split()
        if len(fields) == 3 and all(f.replace(".", "", 1).isdigit() for f in fields):
            seconds += float(fields[0]) + float(fields[1])
    return f"{seconds / 60:.1f}" if seconds else "—"


def measured(arm: Path, name: str) -> dict:
    """One measurement's report; empty while it is still being written."""
    path = arm / f"eval-{name}.json"
    return json.loads(path.read_text()) if path.exists() and path.stat().st_size else {}


def row(arm: Path) -> str:
    extra, classified, val = (measured(arm, n) for n in ("extra", "classified", "val"))

    def cell(report: dict, key: str, digits: int = 2) -> str:
        return f"{report[key]:.{digits}f}" if key in report else "—"

    cells = [
        f"`{arm.name}`",
        cpu_minutes(arm),
        f"{cell(extra, 'psnr_db')} / {cell(extra, 'colorfulness', 1)}",
        f"{cell(classified, 'psnr_db')} / {cell(classified, 'colorfulness', 1)}",
        " / ".join(cell(classified, f"top1_ours_{judge}_pct", 1) for judge in ("lite0", "lite2")),
        f"{cell(val, 'psnr_db')} / {cell(val, 'colorfulness', 1)}",
    ]
    return "| " + " | ".join(cells) + " |"


def reference_row(arm: Path) -> str:
    extra, classified, val = (measured(arm, n) for n in ("extra", "classified", "val"))
    lite = "top1_{}_lite0_pct", "top1_{}_lite2_pct"
    grey = " / ".join(f"{classified[k.format('grey')]:.1f}" for k in lite)
    truth = " / ".join(f"{classified[k.format('truth')]:.1f}" for k in lite)
    return (
        f"| grey (truth) | — | {extra['psnr_grey_baseline_db']:.2f} / 0 "
        f"({extra['colorfulness_truth']:.1f}) | {classified['psnr_grey_baseline_db']:.2f} / 0 "
        f"({classified['colorfulness_truth']:.1f}) | {grey} ({truth}) | "
        f"{val['psnr_grey_baseline_db']:.2f} / 0 ({val['colorfulness_truth']:.1f}) |"
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=Path, default=Path.home() / "colorize-runs" / "ab")
    p.add_argument("arms", nargs="+")
    args = p.parse_args(argv)
    print(
        "| arm | training CPU-min | extra/val 300: PSNR / colourfulness | classified "
        "extra/val: PSNR / colourfulness | top-1 Lite0 / Lite2 (%) | val 300: PSNR / "
        "colourfulness |"
    )
    print("|---|---|---|---|---|---|")
    print(reference_row(args.runs / args.arms[0]))
    for arm in args.arms:
        print(row(args.runs / arm))


if __name__ == "__main__":
    main()
