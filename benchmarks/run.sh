#!/usr/bin/env bash
# Speed and memory benchmarks; results go to benchmarks/results/ (see benchmarks/README.md).
# Run them on an otherwise idle machine: nothing else should compete for the cores.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p benchmarks/results
.venv/bin/colorize-backend bench --repeat 9 --megapixels 1 12 48 --batch 100 \
  --output benchmarks/results/bench.json
.venv/bin/python benchmarks/guidance_bench.py --output benchmarks/results/guidance.json
.venv/bin/python benchmarks/reliability.py --output benchmarks/results/reliability.json
