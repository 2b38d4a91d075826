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


def field_errors(prediction: Float[Array, "n k"], reference: Float[Array, "n k"], fields: tuple[str, ...]) -> dict:
    """L2RE and L1RE of each field (columns), and overall the largest of them (the worst
    field; for one field, its own errors)."""
    per_field = {
        name: {"l2re": float(l2re(prediction[:, k], reference[:, k])), "l1re": float(l1re(prediction[:, k], reference[:, k]))}
        for k, name in enumerate(fields)
    }
    return {"l2re": max(e["l2re"] for e in per_field.values()), "l1re": max(e["l1re"] for e in per_field.values()),
            "fields": per_field}
