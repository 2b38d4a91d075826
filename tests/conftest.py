"""Shared fixtures: precision set once, tiny problems, an x64 switch."""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

import jpinn

ROOT = Path(__file__).resolve().parent.parent
jpinn.set_precision("float32")

# The suite's runs (in this process and the command-line ones it starts, which inherit the
# environment) share one compilation cache of their own, not the user's ~/.cache/jpinn.
if not os.environ.get("JPINN_TEST_KEEP_CACHE"):
    _CACHE = tempfile.mkdtemp(prefix="jpinn-test-cache-")
    os.environ["JPINN_CACHE_DIR"] = _CACHE
    atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """After each test file, drop the programs JAX keeps compiled (``jax.clear_caches``).

    Every compiled CPU program maps about three memory regions, and the jit caches keep them
    for the life of the process: the default suite reached Linux's limit of 65,530 mappings per
    process (vm.max_map_count) around its 265th test, where XLA then crashed (a segfault or an
    abort inside compilation; measured: 11,776 mappings after tests/test_analysis.py alone,
    697 after clearing)."""
    yield
    jax.clear_caches()
    gc.collect()


@pytest.fixture
def x64():
    """Run a test with float64 enabled, then switch it back off."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield jnp.float64
    finally:
        jax.config.update("jax_enable_x64", previous)


def tolerance(dtype) -> float:
    """A loose multiple of machine epsilon, for comparisons of a few dozen flops."""
    return 100 * float(jnp.finfo(dtype).eps)


@pytest.fixture
def tiny_problem():
    """Convection with beta = 1, a width-8 network and 200 residual points."""

    def make(pde_name="convection", width=8, n_residual=200, dtype=jnp.float32, method="auto", **coefficients):
        pde = jpinn.pdes.make_pde(pde_name, **coefficients)
        data = jpinn.sample_collocation(pde, n_x=33, n_t=21, n_residual=n_residual, seed=0, dtype=dtype)
        model = jpinn.models.MLP(width=width, depth=2, key=jax.random.PRNGKey(0), dtype=dtype)
        loss, w0 = jpinn.build_loss(pde, model, data, method=method)
        return pde, data, model, loss, w0

    return make


@pytest.fixture(scope="session")
def train_script():
    from jpinn.cli import train as module  # jpinn train, scripts/train.py

    return module


@jax.custom_jvp
def _misleading_square(w):
    return jnp.sum(w**2)


@_misleading_square.defjvp
def _misleading_square_jvp(primals, tangents):
    (w,), (dw,) = primals, tangents
    return jnp.sum(w**2), jnp.vdot(-2 * w, dw)  # the gradient's sign is wrong


@pytest.fixture
def misleading_loss():
    """sum(w^2) with a gradient of the wrong sign: every 'descent' step raises the loss."""
    return lambda w: (_misleading_square(w), {})
