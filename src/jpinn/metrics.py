"""Error metrics of the study: relative L2 and L1 errors."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float


def l2re(prediction: Float[Array, "..."], exact: Float[Array, "..."]) -> Float[Array, ""]:
    """||prediction - exact||_2 / ||exact||_2 over all entries."""
    return jnp.linalg.norm((prediction - exact).ravel()) / jnp.linalg.norm(exact.ravel())


def l1re(prediction: Float[Array, "..."], exact: Float[Array, "..."]) -> Float[Array, ""]:
    """||prediction - exact||_1 / ||exact||_1 over all entries."""
    return jnp.sum(jnp.abs(prediction - exact)) / jnp.sum(jnp.abs(exact))
