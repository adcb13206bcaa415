#!/usr/bin/env bash
# Short A/B runs of equal work for the automatic colorizer (issue 16): every arm starts from the
# shipped default's ONNX weights and trains the same steps, batch and data; only the lever
# differs. Each arm is then exported and measured through the backend's own pipeline.
#
#   training/ab.sh ARM [ARM ...]   arms: baseline semantic class-kl features semantic-f03 colourful
#
# Environment: RUNS (default ~/colorize-runs/ab), DATA (default ../shared/datasets), STEPS
# (default 800), THREADS (default 1: two arms can run side by side on two cores).
# Per arm, RUNS/ARM/ holds the checkpoints, history.jsonl, cpu.txt (user+system seconds of the
# training process), ARM.onnx, and eval-*.json/rows-*.jsonl (training.evaluate). An arm that
# was interrupted resumes from its last.pt when started again.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-$HOME/colorize-runs/ab}
DATA=${DATA:-../shared/datasets}
STEPS=${STEPS:-800}
THREADS=${THREADS:-1}
PY=${PY:-.venv/bin/python}

lever() {
  case "$1" in
    baseline) ;;
    semantic) echo "--class-kl-weight 1.0 --feature-weight 1.0 --semantic-photos 8" ;;
    class-kl) echo "--class-kl-weight 1.0 --semantic-photos 8" ;;
    features) echo "--feature-weight 1.0 --semantic-photos 8" ;;
    semantic-f03) echo "--class-kl-weight 1.0 --feature-weight 0.3 --semantic-photos 8" ;;
    colourful) echo "--min-colourfulness 15" ;;
    *) echo "unknown arm $1" >&2; exit 2 ;;
  esac
}

train_arm() {
  local arm=$1 out=$RUNS/$1
  mkdir -p "$out"
  # shellcheck disable=SC2046
  /usr/bin/time -f "%U %S %e" -a -o "$out/cpu.txt" nice -n 19 "$PY" -m training.train \
    --arch fusion --data "$DATA/train" "$DATA/extra/train" --val "$DATA/val" "$DATA/extra/val" \
    --out "$out" --cache "$HOME/colorize-runs/cache" --cache-size 192 --crop 160 \
    --min-scale 0.55 --batch 32 --steps "$STEPS" --lr 5e-4 --warmup-steps 100 \
    --freeze-blocks 8 --backbone-lr-scale 0.1 --val-every "$STEPS" --val-limit 300 \
    --checkpoint-minutes 5 --threads "$THREADS" \
    --init-onnx models/fusion-effnet.onnx $(lever "$arm")
}

for arm in "$@"; do
  if [ "$arm" = shipped ]; then
    mkdir -p "$RUNS/shipped"
    [ -s "$RUNS/shipped/eval-classified.json" ] || \
      training/measure.sh models/fusion-effnet.onnx "$RUNS/shipped"
    continue
  fi
  lever "$arm" > /dev/null
  train_arm "$arm"
  [ -s "$RUNS/$arm/eval-classified.json" ] || \
    training/measure.sh "$RUNS/$arm/last.pt" "$RUNS/$arm" 0.8
done
