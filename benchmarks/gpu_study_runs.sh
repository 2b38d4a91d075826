#!/usr/bin/env bash
# GPU check of the L-BFGS path (device tool): the study's three Adam+L-BFGS runs at full
# size through scripts/train.py, then the L-BFGS step table at width 200.
# Hydra's wheels travel in .whl (see README, "GPU"). Usage: bash benchmarks/gpu_study_runs.sh OUTDIR
set -uo pipefail
out=${1:-/tmp/gpu_study}
mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:src
else
  export PYTHONPATH=src
fi
export PYTHONUNBUFFERED=1
nvidia-smi -L | tee "$out/log.txt"
run() {  # name, then overrides
  local name=$1; shift
  python3 scripts/train.py model.width=200 quiet=true plot=false "$@" hydra.run.dir=/tmp/runs/$name 2>&1 | tail -2 | tee -a "$out/log.txt"
  cp /tmp/runs/$name/summary.json "$out/$name-summary.json"
}
# PAPER.md section 3, the runs NNCG starts from (Adam+L-BFGS part, width 200)
run convection pde=convection seed=345 optimizer=adam_lbfgs_11k optimizer.adam.learning_rate=1e-4
run reaction pde=reaction seed=456 optimizer=adam_lbfgs_1k optimizer.adam.learning_rate=1e-3
run wave pde=wave seed=234 optimizer=adam_lbfgs_1k optimizer.adam.learning_rate=1e-4
python3 benchmarks/lbfgs_step.py --widths 200 --steps 3 --out "$out/lbfgs-step-gpu.md" 2>&1 | tail -12
