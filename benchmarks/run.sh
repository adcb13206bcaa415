#!/usr/bin/env bash
# Speed and memory benchmarks; results go to benchmarks/results/ (see benchmarks/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p benchmarks/results
.venv/bin/colorize-backend bench --repeat 10 --output benchmarks/results/bench.json
.venv/bin/python benchmarks/guidance_bench.py --output benchmarks/results/guidance.json
