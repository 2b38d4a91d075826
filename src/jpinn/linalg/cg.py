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


class CappedCGResult(NamedTuple):
    x: Float[Array, " p"]               # the CG iterate (the approximate solution)
    direction: Float[Array, " p"]       # the direction p of non-positive curvature (zero if none)
    curvature: Float[Array, ""]         # p^T A p / ||p||^2 of that direction (0 if none)
    negative_curvature: Bool[Array, ""]  # CG stopped on p^T A p <= 0
    iterations: Int[Array, ""]
    residual_norm: Float[Array, ""]
    breakdown: Bool[Array, ""]          # a non-finite product or residual


def capped_cg(
    matvec: Callable[[Array], Array],
    b: Float[Array, " p"],
    *,
    tol: float | Array,
    max_iter: int,
) -> CappedCGResult:
    """CG for A x = b from x = 0 that returns the first direction of non-positive curvature.

    The regularised Newton-CG of ARNCG (jpinn.optim.arncg) solves (H + eps I) x = b with
    A = H + eps I; p^T A p <= 0 means H has curvature at most -eps along p (Royer, O'Neill
    and Wright's capped CG monitors the same event). CG stops there and returns p with its
    curvature p^T A p / ||p||^2, beside the iterate reached so far; otherwise it stops at
    ||b - A x|| <= tol or after ``max_iter`` iterations. Unpreconditioned: a
    preconditioner would measure curvature in its own metric.
    """
    zero = jnp.zeros_like(b)
    dtype = b.dtype
    state = (zero, b, b, jnp.vdot(b, b), jnp.int32(0), jnp.asarray(False), zero, jnp.zeros((), dtype),
             jnp.asarray(False))

    def cond(state):
        _, r, _, _, k, stopped, _, _, _ = state
        return (k < max_iter) & (jnp.linalg.norm(r) > tol) & ~stopped

    def body(state):
        x, r, p, rr, k, _, _, _, broken = state
        ap = matvec(p)
        pap = jnp.vdot(p, ap)
        bad = ~jnp.isfinite(pap) | ~jnp.isfinite(rr)
        negative = ~(pap > 0) & ~bad
        stop = negative | bad
        alpha = jnp.where(stop, 0.0, rr / jnp.where(stop, 1.0, pap))
        x_new = x + alpha * p
        r_new = r - alpha * ap
        rr_new = jnp.vdot(r_new, r_new)
        p_new = r_new + (rr_new / jnp.where(rr == 0, 1.0, rr)) * p
        keep = lambda new, old: jnp.where(stop, old, new)  # noqa: E731
        curvature = jnp.where(negative, pap / jnp.maximum(jnp.vdot(p, p), jnp.finfo(dtype).tiny), 0.0)
        return (keep(x_new, x), keep(r_new, r), keep(p_new, p), keep(rr_new, rr),
                k + jnp.where(stop, 0, 1).astype(jnp.int32), stop, jnp.where(negative, p, zero), curvature,
                broken | bad)

    x, r, _, _, k, _, direction, curvature, broken = jax.lax.while_loop(cond, body, state)
    residual = jnp.linalg.norm(r)
    negative = jnp.any(direction != 0)
    return CappedCGResult(x, direction, curvature, negative, k, residual,
                          broken | ~jnp.isfinite(residual) | ~jnp.all(jnp.isfinite(x)))
