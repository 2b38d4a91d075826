#!/usr/bin/env bash
# Reproduce the study's Tables 1 and 2 (PAPER.md section 4) with one profile:
#   bash benchmarks/study.sh cpu     # reduced sizes, under an hour on a 2-core CPU
#   bash benchmarks/study.sh paper   # the study's sizes (a GPU; 1,266 runs)
# Runs the three sweeps into multirun/study-PROFILE/ (table1, table1_lbfgs, table2), then
# aggregates them into benchmarks/results/study-PROFILE/ (tables as Markdown and CSV, figures).
# Extra arguments go to every sweep (e.g. `budget_scale=0.01` for a smoke run).
set -euo pipefail
profile="${1:?usage: bash benchmarks/study.sh cpu|paper [overrides...]}"
shift
case "$profile" in cpu|paper) ;; *) echo "study.sh: error: profile must be cpu or paper, got '$profile'" >&2; exit 2;; esac
here="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$here/.venv/bin/python}"
runs="${RUNS:-$here/multirun/study-$profile}"
out="${OUT:-$here/benchmarks/results/study-$profile}"
start=$(date +%s)
for table in table1 table1_lbfgs table2; do
  "$python" "$here/scripts/train.py" -m "experiment=${table}_${profile}" "hydra.sweep.dir=$runs/$table" "$@"
done
echo "study.sh: all sweeps done in $(( $(date +%s) - start )) s"
"$python" "$here/scripts/aggregate.py" "$runs/table1" "$runs/table1_lbfgs" "$runs/table2" --out "$out" --figures
