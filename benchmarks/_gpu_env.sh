# Sourced by benchmarks/gpu_check.sh and gpu_ensemble.sh (device tool), with the output
# folder as its argument: creates it, points Python at src/, records the device and JAX.
set -uo pipefail
out=$1
mkdir -p "$out"
export PYTHONPATH=src PYTHONUNBUFFERED=1
nvidia-smi -L | tee "$out/device.txt"
python3 -c "import jax; print(jax.__version__, jax.devices())" | tee -a "$out/device.txt"
