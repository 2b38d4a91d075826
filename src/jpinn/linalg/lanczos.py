"""Lanczos tridiagonalisation of a symmetric operator given only as v -> A v.

    q_1 = v0 / ||v0||
    w   = A q_j - beta_{j-1} q_{j-1};  alpha_j = q_j^T w;  w -= alpha_j q_j
    w  -= Q Q^T w   (twice: full reorthogonalisation against every previous q)
    beta_j = ||w||;  q_{j+1} = w / beta_j

Q^T A Q = T = tridiag(beta, alpha, beta). The loop is one compiled ``fori_loop`` with Q
held as a (steps x p) array.

**Breakdown** means the Krylov space is invariant: A q_j lies in span(q_1..q_j), so the
new vector w is nothing but the rounding left over from cancelling A q_j against the
basis. The test is ``||w|| <= 4 eps ||A q_j||``: w is within a few ulps of the vector it
came from. It is *not* a small beta next to ||A|| (the test before issue 15): with
lambda_max = 1e5 in float32 that threshold was 100 eps 1e5 = 1.2, above every beta of a
bulk of eigenvalues in [-0.05, 0.5], and Lanczos stopped after 5 of 100 steps, describing
4,997 bulk eigenvalues with 2 nodes. A beta that is small, but more than rounding of
A q_j, is real coupling and Lanczos goes on.

A breakdown the test misses (an invariant space whose leftover rounding is larger than
4 ulps of A q_j, as it is when ||A q_j|| is far below ||A||) is harmless: w is then a
rounding vector, orthogonal to Q after the reorthogonalisation, and Lanczos goes on in
the rest of the space. The new block of T is coupled to the old one by that rounding
only, so its eigenvectors have first components of rounding size (quadrature weights
~ 0), and its Ritz values are eigenvalues of A on the rest of the space: with p steps
every eigenvalue appears with its multiplicity. After a detected breakdown the
remaining alphas and betas are zero, ``size`` says how many steps were real, and
``ritz`` drops the padding. A non-finite product (NaN, inf) is not a breakdown: it
propagates, and ``ritz`` refuses it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

# breakdown: the new Lanczos vector is at most this many ulps of A q_j (module docstring)
BREAKDOWN_ULPS = 4


class Tridiagonal(NamedTuple):
    """T = tridiag(beta, alpha, beta) from ``lanczos``; ``size`` real steps.

    ``next_beta`` is the norm of the residual after the last step: the Lanczos relation
    A Q_k = Q_k T_k + next_beta q_{k+1} e_k^T bounds the distance of each Ritz value to the
    spectrum (``ritz_bounds``)."""

    alpha: Float[Array, " k"]
    beta: Float[Array, " k-1"]
    size: Int[Array, ""]
    next_beta: Float[Array, ""]

    def dense(self) -> np.ndarray:
        """T as a dense (size x size) NumPy array."""
        k = int(self.size)
        alpha, beta = np.asarray(self.alpha)[:k], np.asarray(self.beta)[: max(k - 1, 0)]
        t = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
        if not np.all(np.isfinite(t)):
            bad = int(np.argmax(~np.isfinite(alpha) | ~np.isfinite(np.append(beta, 0.0))))
            raise ValueError(f"lanczos: the operator returned a non-finite product at step {bad + 1}")
        return t

    def ritz(self) -> tuple[np.ndarray, np.ndarray]:
        """Ritz values (ascending) and the squared first components of their eigenvectors
        (the Gauss quadrature weights of the spectral measure along v0; they sum to 1)."""
        values, vectors = np.linalg.eigh(self.dense())
        return values, vectors[0] ** 2

    def ritz_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Ritz values (ascending) and, for each, a radius within which A has an eigenvalue:
        ||A y - theta y|| = next_beta |s_k| for the Ritz vector y = Q s (0 after a breakdown:
        the Krylov space is invariant and its Ritz values are eigenvalues)."""
        values, vectors = np.linalg.eigh(self.dense())
        return values, abs(float(self.next_beta)) * np.abs(vectors[-1])


class LanczosState(NamedTuple):
    """The loop carry of ``lanczos``: Q (rows filled up to ``step``), alpha, beta, the next
    and the previous vector, the last beta, whether no breakdown happened, the step."""

    Q: Float[Array, "n p"]
    alpha: Float[Array, " n"]
    beta: Float[Array, " n"]
    q: Float[Array, " p"]
    q_prev: Float[Array, " p"]
    beta_prev: Float[Array, ""]
    alive: Array
    step: Int[Array, ""]

    @classmethod
    def start(cls, v0: Float[Array, " p"], capacity: int) -> "LanczosState":
        """Room for ``capacity`` steps from ``v0`` (any norm)."""
        p, dtype = v0.shape[0], v0.dtype
        return cls(jnp.zeros((capacity, p), dtype), jnp.zeros((capacity,), dtype), jnp.zeros((capacity,), dtype),
                   v0 / jnp.linalg.norm(v0), jnp.zeros_like(v0), jnp.zeros((), dtype), jnp.asarray(True),
                   jnp.zeros((), jnp.int32))

    def tridiagonal(self) -> Tridiagonal:
        """T after the steps taken so far."""
        n = self.alpha.shape[0]
        k = self.step
        taken = jnp.arange(n) < k
        alpha = jnp.where(taken, self.alpha, 0.0)
        beta = jnp.where(jnp.arange(n) < k - 1, self.beta, 0.0)
        dead = (beta[:-1] == 0) & (jnp.arange(n - 1) < k - 1)
        size = jnp.where(jnp.any(dead), jnp.argmax(dead) + 1, k).astype(jnp.int32)
        next_beta = self.beta[jnp.maximum(k - 1, 0)]
        return Tridiagonal(alpha, beta[:-1], size, next_beta)


def lanczos_steps(
    matvec: Callable[[Float[Array, " p"]], Float[Array, " p"]],
    state: LanczosState,
    steps: int | Array,
) -> LanczosState:
    """``steps`` more Lanczos steps (at most up to the state's capacity); compiles once for
    any number of steps, so a caller can extend a run until its Ritz values settle."""
    capacity = state.alpha.shape[0]
    rounding = BREAKDOWN_ULPS * jnp.finfo(state.q.dtype).eps

    def body(j, carry):
        Q, alpha, beta, q, q_prev, beta_prev, alive, _ = carry
        Q = Q.at[j].set(q)
        aq = matvec(q)
        w = aq - beta_prev * q_prev
        a = jnp.vdot(q, w)
        w = w - a * q
        w = w - Q.T @ (Q @ w)
        w = w - Q.T @ (Q @ w)
        b = jnp.linalg.norm(w)
        # breakdown: A q_j lies in the Krylov space to within rounding of A q_j itself
        # (see the module docstring); written as "not above" so that a NaN goes on
        next_alive = alive & ~(b <= rounding * jnp.linalg.norm(aq))
        alpha = alpha.at[j].set(jnp.where(alive, a, 0.0))
        beta = beta.at[j].set(jnp.where(next_alive, b, 0.0))
        q_next = jnp.where(next_alive, w / jnp.where(next_alive, b, 1.0), 0.0)
        return LanczosState(Q, alpha, beta, q_next, q, jnp.where(next_alive, b, 0.0), next_alive,
                            (j + 1).astype(jnp.int32))

    end = jnp.minimum(state.step + steps, capacity)
    return jax.lax.fori_loop(state.step, end, body, state)


def lanczos(
    matvec: Callable[[Float[Array, " p"]], Float[Array, " p"]],
    v0: Float[Array, " p"],
    steps: int,
) -> Tridiagonal:
    """``steps`` steps of Lanczos with full reorthogonalisation from ``v0`` (any norm)."""
    p = v0.shape[0]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps: must be an integer >= 1, got {steps!r}")
    steps = min(steps, p)
    return lanczos_steps(matvec, LanczosState.start(v0, steps), steps).tridiagonal()
