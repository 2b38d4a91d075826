"""The L-BFGS-preconditioned Hessian Ht^T H Ht (PAPER.md section 5).

With the pairs (s_i, y_i, rho_i = 1 / y_i^T s_i), i = 1..m oldest first, and H_0 = gamma I,
the L-BFGS inverse-Hessian approximation is the unrolled BFGS recursion

    H_i = V_i^T H_{i-1} V_i + rho_i s_i s_i^T,    V_i = I - rho_i y_i s_i^T,

so H_m = Ht Ht^T with the p x (p + m) factor

    Ht = [ sqrt(gamma) V_m^T ... V_1^T,  sqrt(rho_1) V_m^T ... V_2^T s_1,  ...,  sqrt(rho_m) s_m ].

``Ht z`` and ``Ht^T u`` take one pass over the pairs each (``LBFGSFactor``), so Ht^T H Ht
is a matrix-free symmetric operator on R^(p+m) whose nonzero eigenvalues are those of
H_m H: the spectrum that L-BFGS's steps "see".
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float


class LBFGSFactor(eqx.Module):
    """The factor Ht of an L-BFGS memory; pairs oldest first (``LBFGSMemory.ordered()``)."""

    s: Float[Array, "m p"]
    y: Float[Array, "m p"]
    rho: Float[Array, " m"]
    gamma: Float[Array, ""]

    @classmethod
    def from_memory(cls, memory) -> "LBFGSFactor":
        """From an ``LBFGSMemory`` (the state an L-BFGS phase ends with)."""
        s, y, rho, gamma = memory.ordered()
        if s.shape[0] == 0:
            raise ValueError("lbfgs memory: holds no curvature pair; nothing to precondition with")
        return cls(jnp.asarray(s), jnp.asarray(y), jnp.asarray(rho), jnp.asarray(gamma))

    @property
    def shape(self) -> tuple[int, int]:
        m, p = self.s.shape
        return p, p + m

    def apply(self, z: Float[Array, " q"]) -> Float[Array, " p"]:
        """Ht z for z = (a, c), a in R^p, c in R^m."""
        m, p = self.s.shape
        a, c = z[:p], z[p:]
        scale = jnp.sqrt(self.rho) * c

        def oldest_first(i, x):  # x <- V_i^T x + sqrt(rho_i) c_i s_i
            return x - self.rho[i] * jnp.vdot(self.y[i], x) * self.s[i] + scale[i] * self.s[i]

        return jax.lax.fori_loop(0, m, oldest_first, jnp.sqrt(self.gamma) * a)

    def transpose(self, u: Float[Array, " p"]) -> Float[Array, " q"]:
        """Ht^T u."""
        m, _ = self.s.shape

        def newest_first(k, carry):  # c_i = sqrt(rho_i) s_i^T u; u <- V_i u
            u, c = carry
            i = m - 1 - k
            su = jnp.vdot(self.s[i], u)
            return u - self.rho[i] * su * self.y[i], c.at[i].set(jnp.sqrt(self.rho[i]) * su)

        u, c = jax.lax.fori_loop(0, m, newest_first, (u, jnp.zeros((m,), u.dtype)))
        return jnp.concatenate([jnp.sqrt(self.gamma) * u, c])

    def dense(self) -> np.ndarray:
        """Ht as a dense array (tests, tiny problems)."""
        q = self.shape[1]
        return np.asarray(jax.vmap(self.apply)(jnp.eye(q, dtype=self.s.dtype)).T)


def preconditioned_operator(hvp_fn, factor: LBFGSFactor):
    """z -> Ht^T H Ht z for v -> H v given by ``hvp_fn``."""
    return lambda z: factor.transpose(hvp_fn(factor.apply(z)))


def _factory(component: str):
    """(f, w, factor) -> the operator z -> Ht^T H Ht z, built inside the compiled Lanczos loop."""
    from .spectrum import hessian_operator

    return lambda f, w, factor: preconditioned_operator(hessian_operator(f, w, component), factor)


def preconditioned_density(f, w: Float[Array, " p"], factor: LBFGSFactor, component: str = "total", **kwargs):
    """Spectral density (stochastic Lanczos quadrature) of Ht^T H Ht for the Hessian H of
    ``component`` of the jpinn loss ``f`` at ``w``; keyword arguments as ``slq``."""
    from .spectrum import slq

    return slq(_factory(component), (f, w, factor), factor.shape[1], **kwargs)


def preconditioned_top_eigenvalues(f, w, factor: LBFGSFactor, component: str = "total", k: int = 5, **kwargs):
    """The ``k`` largest eigenvalues of Ht^T H Ht (Lanczos; keyword arguments as ``top_eigenvalues``)."""
    from .spectrum import top_eigenvalues

    return top_eigenvalues(_factory(component), (f, w, factor), factor.shape[1], k, **kwargs)
