"""The Jacobian J = dr/dw of a residual vector r(w), matrix-free and dense.

For a least-squares loss L(w) = ||r(w)||^2 the Gauss-Newton matrix is G = J^T J (the
Hessian of L is 2 J^T J plus a term weighted by the residuals, which Gauss-Newton drops).
``linearize_residuals`` linearises r once at w and returns r, v -> J v (forward mode, the
linearised jvp) and u -> J^T u (its transpose, ``jax.linear_transpose``: reverse mode
through the same linearisation, no second forward pass). ``gauss_newton_product`` is then
v -> J^T (J v), one jvp and one vjp, with no Hessian of r anywhere.

``dense_jacobian`` builds the m x p matrix for the direct solvers: column by column from
jvps when p <= m, row by row from vjps otherwise (the cheaper of the two), ``batch_size``
vectors at a time (``lax.map``), so that the working set stays one batch of tangents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


class Linearized(NamedTuple):
    """r(w) and the linear maps of its Jacobian at w."""

    residuals: Float[Array, " m"]
    jvp: Callable[[Array], Array]   # v (p) -> J v (m)
    vjp: Callable[[Array], Array]   # u (m) -> J^T u (p)


def linearize_residuals(residuals: Callable[[Array], Array], w: Float[Array, " p"]) -> Linearized:
    """r(w), v -> J v and u -> J^T u from one linearisation of ``residuals`` at ``w``."""
    r, jvp = jax.linearize(residuals, w)
    transpose = jax.linear_transpose(jvp, w)
    return Linearized(r, jvp, lambda u: transpose(u)[0])


def gauss_newton_product(lin: Linearized, v: Float[Array, " p"]) -> Float[Array, " p"]:
    """J^T (J v): the Gauss-Newton matrix applied to v, one jvp then one vjp."""
    return lin.vjp(lin.jvp(v))


def gauss_newton_block(lin: Linearized, vectors: Float[Array, "k p"], batch_size: int = 1) -> Float[Array, "k p"]:
    """J^T J v_i for each row v_i of ``vectors`` (the Nystrom sketch's products), ``batch_size``
    rows at a time."""
    return jax.lax.map(lambda v: gauss_newton_product(lin, v), vectors, batch_size=batch_size)


def dense_jacobian(lin: Linearized, p: int, *, batch_size: int = 64) -> Float[Array, "m p"]:
    """The m x p Jacobian: p jvps of unit vectors when p <= m, else m vjps."""
    m = lin.residuals.shape[0]
    dtype = lin.residuals.dtype
    if p <= m:
        columns = jax.lax.map(lambda i: lin.jvp(jax.nn.one_hot(i, p, dtype=dtype)), jnp.arange(p),
                              batch_size=min(batch_size, p))
        return columns.T
    return jax.lax.map(lambda i: lin.vjp(jax.nn.one_hot(i, m, dtype=dtype)), jnp.arange(m),
                       batch_size=min(batch_size, m))


__all__ = ["Linearized", "dense_jacobian", "gauss_newton_block", "gauss_newton_product", "linearize_residuals"]
