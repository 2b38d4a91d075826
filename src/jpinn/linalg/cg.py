"""Preconditioned conjugate gradients in one ``lax.while_loop`` (Algorithm 6 of the study).

Solves A x = b for a symmetric A given as a function, with a preconditioner ``M^{-1}`` and
a warm start. Stops when ||r|| <= tol, after ``max_iter`` iterations, or when it meets a
direction of non-positive curvature p^T A p <= 0 (A is not positive definite there); it
then keeps the last iterate and sets a flag.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int


class CGResult(NamedTuple):
    x: Float[Array, " p"]
    iterations: Int[Array, ""]
    residual_norm: Float[Array, ""]
    negative_curvature: Bool[Array, ""]


def pcg(
    matvec: Callable[[Array], Array],
    b: Float[Array, " p"],
    x0: Float[Array, " p"],
    *,
    precondition: Callable[[Array], Array] | None = None,
    tol: float | Array = 1e-16,
    max_iter: int = 1000,
) -> CGResult:
    """Preconditioned CG for A x = b from ``x0``; ``tol`` is absolute on ||b - A x||."""
    precondition = precondition or (lambda v: v)
    r = b - matvec(x0)
    z = precondition(r)
    state = (x0, r, z, z, jnp.vdot(r, z), jnp.int32(0), jnp.asarray(False))

    def cond(state):
        _, r, _, _, _, k, negative = state
        return (k < max_iter) & (jnp.linalg.norm(r) > tol) & ~negative

    def body(state):
        x, r, z, p, rz, k, _ = state
        ap = matvec(p)
        pap = jnp.vdot(p, ap)
        negative = ~(pap > 0)  # also catches NaN
        alpha = jnp.where(negative, 0.0, rz / jnp.where(negative, 1.0, pap))
        x_new = x + alpha * p
        r_new = r - alpha * ap
        z_new = precondition(r_new)
        rz_new = jnp.vdot(r_new, z_new)
        p_new = z_new + (rz_new / jnp.where(rz == 0, 1.0, rz)) * p
        keep = lambda new, old: jnp.where(negative, old, new)  # noqa: E731
        return (keep(x_new, x), keep(r_new, r), keep(z_new, z), keep(p_new, p), keep(rz_new, rz),
                k + jnp.where(negative, 0, 1).astype(jnp.int32), negative)

    x, r, _, _, _, k, negative = jax.lax.while_loop(cond, body, state)
    return CGResult(x, k, jnp.linalg.norm(r), negative)
