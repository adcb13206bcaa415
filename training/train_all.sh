#!/usr/bin/env bash
# Train every architecture in one run within a time budget (e.g. one long run on a lent GPU
# machine), writing checkpoints, logs and the exported ONNX files under OUT.
# Usage: training/train_all.sh OUT MINUTES_PER_ARCH [DATA_ROOT]
set -euo pipefail
OUT=$1; MINUTES=$2; DATA=${3:-../shared/datasets}
PY=${PYTHON:-python}
mkdir -p "$OUT/models"
train() {  # arch, extra args...
  local arch=$1; shift
  $PY -m training.train --arch "$arch" --data "$DATA/train" --val "$DATA/val" --out "$OUT/$arch" \
      --cache "$OUT/cache" --epochs 100 --minutes "$MINUTES" "$@" 2>&1 | tee -a "$OUT/$arch.log"
  $PY -m training.export "$OUT/$arch/best.pt" --name "$arch" --manifest "$OUT/models/manifest.json"
}
train fusion
train user-hint --init "$OUT/fusion/best.pt"
for arch in classification autoencoder dense exemplar; do train "$arch"; done
