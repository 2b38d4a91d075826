#!/usr/bin/env bash
# One short GPU check (device tool): correctness tests on the accelerator, then the
# Adam-step table at the study's sizes. Needs jax with CUDA, optax, equinox, tqdm,
# matplotlib, pytest (no Hydra: the CLI tests are left out). Usage: bash benchmarks/gpu_check.sh OUTDIR
source "$(dirname "$0")/_gpu_env.sh" "${1:-/tmp/gpu_check}"
python3 -m pytest -q -p no:cacheprovider tests/test_pdes.py tests/test_data.py tests/test_model_loss.py \
  tests/test_train.py 2>&1 | tail -5 | tee "$out/tests.txt"
python3 benchmarks/adam_step.py --methods auto forward reverse --repeats 5 \
  --out "$out/adam-step-gpu.md" 2>&1 | tail -30
