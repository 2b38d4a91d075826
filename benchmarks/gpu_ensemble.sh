#!/usr/bin/env bash
# The GPU check of issue 9 (device tool): ensemble members against solo runs on the
# accelerator, then benchmarks/ensemble.py at the cpu profile's size. Needs jax with CUDA,
# optax, equinox, tqdm, pytest (no Hydra). Usage: bash benchmarks/gpu_ensemble.sh OUTDIR
set -uo pipefail
out=${1:-/tmp/gpu_ensemble}
mkdir -p "$out"
export PYTHONPATH=src PYTHONUNBUFFERED=1
nvidia-smi -L | tee "$out/device.txt"
python3 -c "import jax; print(jax.__version__, jax.devices())" | tee -a "$out/device.txt"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_ensemble.py -k "members_equal_solo and not nncg" 2>&1 | tail -4 | tee "$out/tests.txt"
python3 benchmarks/ensemble.py --sizes 1 4 16 --iterations 500 --repeats 2 --out "$out/ensemble-gpu.md" 2>&1 | tail -25
