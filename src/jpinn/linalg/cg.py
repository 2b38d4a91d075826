"""Preconditioned conjugate gradients in one ``lax.while_loop`` (Algorithm 6 of the study).

Solves A x = b for a symmetric A given as a function, with a preconditioner ``M^{-1}`` and
a warm start. Stops when ||r|| <= tol or after ``max_iter`` iterations. A direction of
non-positive curvature p^T A p <= 0 (A is not positive definite there) sets a flag and,
with ``stop_on_negative_curvature`` (the default), stops CG keeping the last iterate;
otherwise CG goes on through it as the study's NNCG does (its CG never checks). A zero or
non-finite p^T A p (breakdown) always stops.
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
    breakdown: Bool[Array, ""]  # p^T A p or the residual was not finite: x is the last finite iterate


def pcg(
    matvec: Callable[[Array], Array],
    b: Float[Array, " p"],
    x0: Float[Array, " p"],
    *,
    precondition: Callable[[Array], Array] | None = None,
    tol: float | Array = 1e-16,
    max_iter: int = 1000,
    stop_on_negative_curvature: bool = True,
) -> CGResult:
    """Preconditioned CG for A x = b from ``x0``; ``tol`` is absolute on ||b - A x||."""
    precondition = precondition or (lambda v: v)
    r = b - matvec(x0)
    z = precondition(r)
    state = (x0, r, z, z, jnp.vdot(r, z), jnp.int32(0), jnp.asarray(False), jnp.asarray(False), jnp.asarray(False))

    def cond(state):
        _, r, _, _, _, k, _, stopped, _ = state
        return (k < max_iter) & (jnp.linalg.norm(r) > tol) & ~stopped

    def body(state):
        x, r, z, p, rz, k, seen_negative, _, broken = state
        ap = matvec(p)
        pap = jnp.vdot(p, ap)
        not_finite = ~jnp.isfinite(pap) | ~jnp.isfinite(rz)
        breakdown = not_finite | (pap == 0)
        negative_here = ~(pap > 0)
        stop = breakdown | (negative_here & stop_on_negative_curvature)
        negative = stop  # the update below is skipped when CG stops here
        alpha = jnp.where(negative, 0.0, rz / jnp.where(negative, 1.0, pap))
        x_new = x + alpha * p
        r_new = r - alpha * ap
        z_new = precondition(r_new)
        rz_new = jnp.vdot(r_new, z_new)
        p_new = z_new + (rz_new / jnp.where(rz == 0, 1.0, rz)) * p
        keep = lambda new, old: jnp.where(negative, old, new)  # noqa: E731
        return (keep(x_new, x), keep(r_new, r), keep(z_new, z), keep(p_new, p), keep(rz_new, rz),
                k + jnp.where(negative, 0, 1).astype(jnp.int32), seen_negative | negative_here, stop,
                broken | not_finite)

    x, r, _, _, _, k, negative, _, broken = jax.lax.while_loop(cond, body, state)
    residual = jnp.linalg.norm(r)  # NaN when even the first product A x0 was not finite
    return CGResult(x, k, residual, negative, broken | ~jnp.isfinite(residual) | ~jnp.all(jnp.isfinite(x)))
