#!/usr/bin/env bash
# The GPU check of issue 9 (device tool): ensemble members against solo runs on the
# accelerator, then benchmarks/ensemble.py at the cpu profile's size. Needs jax with CUDA,
# optax, equinox, tqdm, pytest (no Hydra). Usage: bash benchmarks/gpu_ensemble.sh OUTDIR
source "$(dirname "$0")/_gpu_env.sh" "${1:-/tmp/gpu_ensemble}"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_ensemble.py -k "members_equal_solo and not nncg" 2>&1 | tail -4 | tee "$out/tests.txt"
python3 benchmarks/ensemble.py --sizes 1 4 16 --iterations 500 --repeats 2 --out "$out/ensemble-gpu.md" 2>&1 | tail -25
