"""Precision is a switch (DESIGN.md): float32 by default, float64 with one setting.

Matrix products run at "highest" precision (no TF32 or bf16 passes on GPUs), so float32
means float32 everywhere; the setting is recorded in each run's summary.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

DTYPES = {"float32": jnp.float32, "float64": jnp.float64}
MATMUL_PRECISION = "highest"


def check_dtype(dtype) -> str:
    """``dtype`` if it names a precision (``DTYPES``), else a one-line ValueError."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype: unknown dtype {dtype!r}; allowed: {', '.join(DTYPES)}")
    return dtype


def set_precision(dtype: str = "float32"):
    """Configure JAX for ``dtype`` and return the dtype. Call before creating arrays."""
    check_dtype(dtype)
    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_default_matmul_precision", MATMUL_PRECISION)
    return DTYPES[dtype]
