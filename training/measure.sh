#!/usr/bin/env bash
# Measure one automatic colorizer through the backend's own pipeline (issue 16's ship rule):
# PSNR and colourfulness on 300 extra/val and 300 val photos, and PSNR, colourfulness and
# classifier top-1 under both judges (Lite0, Lite2) on every classified extra/val photo.
#
#   training/measure.sh MODEL OUT_DIR [TEMPERATURE]
#
# MODEL is an ONNX file, or a training checkpoint (.pt) that is first exported at TEMPERATURE
# (default: the shipped default's, from the manifest). OUT_DIR receives
# eval-{extra,classified,val}.json and rows-*.jsonl; compare two models with
#   python -m training.compare BASE/rows-extra.jsonl CANDIDATE/rows-extra.jsonl
# Environment: DATA (default ../shared/datasets), THREADS (default 1), PY, PARTS (default
# "extra val classified": the cheaper two first; the classified part takes ~7 minutes),
# LAST_STEP=1 (a checkpoint's last-step weights rather than its moving average: short A/B
# arms, whose average still holds much of the starting weights). The part "extra-all" measures
# every extra/val photo (1,266, ~2 minutes): its paired intervals are about half as wide as the
# 300 photos', for gains on extra/val that the 300 cannot tell from noise.
# "val-all" measures all 1,070 val photos, the set behind the issue's val targets.
set -euo pipefail
model=$(realpath "$1") out=$(realpath -m "$2") temperature=${3:-}  # before the cd below
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/datasets}
THREADS=${THREADS:-1}
PY=${PY:-.venv/bin/python}
mkdir -p "$out"
onnx=$model
if [[ "$model" == *.pt ]]; then
  workdir=$(mktemp -d)
  trap 'rm -rf "$workdir"' EXIT
  nice -n 19 "$PY" -m training.export "$model" --name candidate \
    ${temperature:+--temperature "$temperature"} ${LAST_STEP:+--last-step} --manifest "$workdir/manifest.json" > /dev/null
  onnx=$out/candidate.onnx
  cp "$workdir/candidate.onnx" "$onnx"
fi
# An .onnx path is a model the backend resolves like a user's own (kind from its inputs,
# the default's working size), so no manifest entry is needed.
common=(--model "$onnx" --threads "$THREADS")
for part in ${PARTS:-extra val classified}; do
  case "$part" in
    extra) args=(--data "$DATA/extra/val" --limit 300) ;;
    extra-all) args=(--data "$DATA/extra/val") ;;
    val) args=(--data "$DATA/val" --limit 300) ;;
    val-all) args=(--data "$DATA/val") ;;
    classified) args=(--data "$DATA/extra/val" --classified-only --recognition) ;;
    *) echo "unknown part $part" >&2; exit 2 ;;
  esac
  nice -n 19 "$PY" -m training.evaluate "${common[@]}" "${args[@]}" \
    --rows "$out/rows-$part.jsonl" > "$out/eval-$part.json"
  echo "$part: $(tr -d '\n' < "$out/eval-$part.json" | cut -c1-200)"
done
