"""Lanczos tridiagonalisation of a symmetric operator given only as v -> A v.

    q_1 = v0 / ||v0||
    w   = A q_j - beta_{j-1} q_{j-1};  alpha_j = q_j^T w;  w -= alpha_j q_j
    w  -= Q Q^T w   (twice: full reorthogonalisation against every previous q)
    beta_j = ||w||;  q_{j+1} = w / beta_j

Q^T A Q = T = tridiag(beta, alpha, beta). The loop is one compiled ``fori_loop`` with Q
held as a (steps x p) array. If the Krylov space is exhausted early (beta_j ~ 0: A has
fewer distinct eigenvalues along v0 than ``steps``), the remaining alphas and betas are
zero, T decouples, and ``size`` says how many steps were real; the extra eigenvalues of
the padded T have eigenvectors with a zero first component, so quadrature weights ignore
them, and ``ritz`` drops them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int


class Tridiagonal(NamedTuple):
    """T = tridiag(beta, alpha, beta) from ``lanczos``; ``size`` real steps."""

    alpha: Float[Array, " k"]
    beta: Float[Array, " k-1"]
    size: Int[Array, ""]

    def dense(self) -> np.ndarray:
        """T as a dense (size x size) NumPy array."""
        k = int(self.size)
        alpha, beta = np.asarray(self.alpha)[:k], np.asarray(self.beta)[: max(k - 1, 0)]
        return np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)

    def ritz(self) -> tuple[np.ndarray, np.ndarray]:
        """Ritz values (ascending) and the squared first components of their eigenvectors
        (the Gauss quadrature weights of the spectral measure along v0; they sum to 1)."""
        values, vectors = np.linalg.eigh(self.dense())
        return values, vectors[0] ** 2


def lanczos(
    matvec: Callable[[Float[Array, " p"]], Float[Array, " p"]],
    v0: Float[Array, " p"],
    steps: int,
) -> Tridiagonal:
    """``steps`` steps of Lanczos with full reorthogonalisation from ``v0`` (any norm)."""
    p = v0.shape[0]
    steps = int(min(steps, p))
    if steps < 1:
        raise ValueError(f"steps: must be an integer >= 1, got {steps!r}")
    dtype = v0.dtype
    noise = 100 * jnp.finfo(dtype).eps

    def body(j, carry):
        Q, alpha, beta, q, q_prev, beta_prev, alive, norm = carry
        Q = Q.at[j].set(q)
        w = matvec(q) - beta_prev * q_prev
        a = jnp.vdot(q, w)
        w = w - a * q
        w = w - Q.T @ (Q @ w)
        w = w - Q.T @ (Q @ w)
        b = jnp.linalg.norm(w)
        # breakdown: the new vector is rounding noise next to ||A|| (estimated by the
        # largest |alpha| + beta so far). Missing a breakdown is harmless (Lanczos goes on
        # in an orthogonal direction, coupled by a negligible beta); a false one would cut
        # the Krylov space short, so the threshold is low.
        norm = jnp.maximum(norm, jnp.abs(a) + beta_prev + b)
        next_alive = alive & (b > noise * norm)
        alpha = alpha.at[j].set(jnp.where(alive, a, 0.0))
        beta = beta.at[j].set(jnp.where(next_alive, b, 0.0))
        q_next = jnp.where(next_alive, w / jnp.where(next_alive, b, 1.0), 0.0)
        return Q, alpha, beta, q_next, q, jnp.where(next_alive, b, 0.0), next_alive, norm

    q0 = v0 / jnp.linalg.norm(v0)
    init = (jnp.zeros((steps, p), dtype), jnp.zeros((steps,), dtype), jnp.zeros((steps,), dtype),
            q0, jnp.zeros_like(q0), jnp.zeros((), dtype), jnp.asarray(True), jnp.zeros((), dtype))
    _, alpha, beta, *_ = jax.lax.fori_loop(0, steps, body, init)
    size = _size(alpha, beta, steps)
    return Tridiagonal(alpha, beta[:-1], size)


def _size(alpha, beta, steps):
    # steps until (and including) the first step whose beta vanished
    dead = beta[:-1] == 0
    return jnp.where(jnp.any(dead), jnp.argmax(dead) + 1, steps).astype(jnp.int32)
