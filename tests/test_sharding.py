"""Data parallelism (jpinn.shard_loss, config ``devices``): the collocation points split
over four host CPU devices give the single-device loss, gradient, Hessian-vector
product, training run and ensemble. JAX fixes its device count when it starts, so the
checks run in a fresh process (tests/scripts/sharded_check.py) with
``--xla_force_host_platform_device_count=4``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT


def _check(*flags: str) -> list[str]:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "scripts" / "sharded_check.py"), *flags], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


@pytest.mark.slow
def test_sharded_loss_gradient_and_hvp_equal_single_device():
    lines = _check()
    assert "compiled sharded program reduces across devices: yes" in lines
    assert any(line.startswith("devices=8: devices: 8 asked, 4 visible") for line in lines)
    assert lines[-1] == "ok"


@pytest.mark.slow
def test_sharded_adam_nncg_run_and_ensemble_equal_single_device():
    lines = _check("--full")
    assert any(line.startswith("adam -> nncg on 4 devices") for line in lines), lines
    assert "ensemble of 2 members on 4 devices: equal" in lines
    assert lines[-1] == "ok"
