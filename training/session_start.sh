#!/usr/bin/env bash
# The first command of every working session: the machine is often reset between sessions
# (home, the dataset mirrors, the virtualenv and extra/ all wiped; models/README.md), so
# rebuild whatever is missing, in order, and make sure the long run (or another run) is
# training in the background and the shipped default's rows are there to compare its
# checkpoints with.
#
#   training/session_start.sh
#
# Each step is skipped when its result is already there, so it is safe to run at any time.
# The dataset mirrors cannot be fetched from here (that is the session's `fetch` tool): when
# extra/ must be rebuilt and mirrors are missing, it names them and stops.
# Environment: DATA (default ../shared/datasets), MIRRORS (default /work/.mirror), RUNS
# (default ~/colorize-runs), THREADS (the run's torch threads, default 2); EXTRA reaches
# training/long_run.sh unchanged (e.g. another data mix: EXTRA="--data DIR ...").
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=$(realpath "${DATA:-../shared/datasets}")
MIRRORS=${MIRRORS:-/work/.mirror}
RUNS=${RUNS:-$HOME/colorize-runs}
PY=$PWD/.venv/bin/python

[ -x "$PY" ] || python3 install.py
"$PY" -c "import torch, efficientnet_lite_pytorch, dask, av" 2>/dev/null || training/extras.sh

if [ ! -d "$DATA/extra/train" ]; then
  missing=$("$PY" - "$DATA/extra" "$MIRRORS" <<'EOF'
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from build import SOURCES
print(" ".join(repo for _, repo, *_ in SOURCES
               if not (Path(sys.argv[2]) / repo.replace("/", "+")).is_dir()))
EOF
)
  if [ -n "$missing" ]; then
    echo "extra/ is missing; fetch these repositories first (the fetch tool): $missing" >&2
    exit 1
  fi
  (cd "$DATA" && nice -n 10 "$PY" extra/build.py "$MIRRORS" extra)
fi

mkdir -p "$RUNS/long" "$RUNS/measure"
if running=$(pgrep -af "training.train " | grep -o -- "--out [^ ]*"); then
  echo "a run is training already (${running//$'\n'/, }): the two cores are in use"
else
  OUT=$RUNS/long PY=$PY THREADS=${THREADS:-2} DATA=$DATA \
    nohup /usr/bin/time -f "%U %S %e" -a -o "$RUNS/long/cpu.txt" training/long_run.sh \
    >> "$RUNS/long.log" 2>&1 &
  echo "started the long run (log: $RUNS/long.log)"
fi

shipped=$RUNS/measure/shipped
if [ ! -f "$shipped/rows-classified.jsonl" ]; then
  PY=$PY DATA=$DATA PARTS="extra extra-all val classified" \
    nohup training/measure.sh models/fusion-effnet.onnx "$shipped" > "$shipped.log" 2>&1 &
  echo "measuring the shipped default into $shipped (about 15 minutes beside the run)"
fi
