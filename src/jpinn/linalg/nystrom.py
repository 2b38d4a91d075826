"""Randomized Nystrom approximation of a PSD-ish matrix (Algorithm 5 of the study).

    Omega = qr(Gaussian p x s).Q           orthonormal test matrix
    Y     = H Omega                        s matrix-vector products (one batched pass)
    nu    = shift                          paper: sqrt(p) eps ||Y||_2; companion code: eps
                                           (eps of the run's dtype in both)
    C     = chol(Omega^T (Y + nu Omega))   upper triangular
    B     = (Y + nu Omega) C^{-1}
    U S _ = svd(B)                         thin
    Lambda = max(0, S^2 - nu)

H is approximated by U diag(Lambda) U^T. When the Cholesky factorisation fails (the
Hessian of a PINN loss is indefinite, so the core matrix can be too), the core matrix's
eigendecomposition is used instead, shifted by its most negative eigenvalue, with a
pseudo-inverse square root (directions the shift leaves at zero are dropped rather than
divided by zero); a flag says so. Y is shifted by the same amount as the core (Y + extra
Omega), so that B stays consistent with it. The companion code shifts the core only; on an
indefinite 60 x 60 matrix with top eigenvalue 1e4 its formula gives a top Nystrom
eigenvalue of 6e16, this one 9.9e3 (tests/test_fidelity.py, benchmarks/fidelity.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

SHIFTS = ("paper", "companion")


class Nystrom(NamedTuple):
    """H ~ U diag(eigenvalues) U^T, eigenvalues non-negative and descending."""

    U: Float[Array, "p s"]
    eigenvalues: Float[Array, " s"]
    shift: Float[Array, ""]
    cholesky_failed: Bool[Array, ""]


def nystrom(
    matmat: Callable[[Float[Array, "s p"]], Float[Array, "s p"]],
    key: PRNGKeyArray,
    p: int,
    rank: int,
    *,
    shift: str = "paper",
    dtype=jnp.float32,
) -> Nystrom:
    """Rank-``rank`` Nystrom approximation of the p x p matrix applied by ``matmat``.

    ``matmat(V)`` takes the test vectors as rows (s x p) and returns H v for each row.
    """
    if shift not in SHIFTS:
        raise ValueError(f"shift: unknown Nystrom shift {shift!r}; allowed: {', '.join(SHIFTS)}")
    eps = jnp.finfo(dtype).eps
    omega, _ = jnp.linalg.qr(jax.random.normal(key, (p, rank), dtype))
    Y = matmat(omega.T).T  # p x s
    if shift == "paper":
        # ||Y||_2 from the s x s Gram matrix: jnp.linalg.norm(Y, 2) asked XLA's CPU SVD for a
        # p x p workspace (25 GB at the study's p = 81,201)
        top = jnp.max(jnp.linalg.eigvalsh(Y.T @ Y))
        nu = jnp.sqrt(jnp.asarray(p, dtype)) * eps * jnp.sqrt(jnp.maximum(top, 0.0))
    else:  # the companion code's constant: its dtype's machine epsilon (torch.finfo(Y.dtype).eps)
        nu = jnp.asarray(eps, dtype)
    y_nu = Y + nu * omega
    core = omega.T @ y_nu
    core = 0.5 * (core + core.T)
    chol = jnp.linalg.cholesky(core)  # lower: core = L L^T; NaN when it fails
    failed = ~jnp.all(jnp.isfinite(chol))

    def from_cholesky(_):
        # B = Y_nu C^{-1} with C = L^T upper:  B^T = L^{-1} Y_nu^T
        b = jax.scipy.linalg.solve_triangular(chol, y_nu.T, lower=True).T
        return b, nu

    def from_eigh(_):
        # core = V diag(l) V^T. Shift l by its most negative value so that it is PSD and
        # fold the shift into nu (Y' = Y_nu + extra Omega, so that Omega^T Y' is the
        # shifted core and the shift is subtracted again below); then use the
        # pseudo-inverse square root, dropping the directions the shift made (near) zero.
        l, v = jnp.linalg.eigh(core)
        extra = jnp.maximum(-jnp.min(l), 0.0)
        shifted = l + extra
        cutoff = rank * eps * jnp.maximum(jnp.max(shifted), jnp.finfo(dtype).tiny)
        inv_sqrt = jnp.where(shifted > cutoff, 1.0 / jnp.sqrt(jnp.where(shifted > cutoff, shifted, 1.0)), 0.0)
        b = ((y_nu + extra * omega) @ v) * inv_sqrt[None, :]
        return b, nu + extra

    b, total_shift = jax.lax.cond(failed, from_eigh, from_cholesky, None)
    u, s, _ = jnp.linalg.svd(b, full_matrices=False)
    eigenvalues = jnp.maximum(s**2 - total_shift, 0.0)
    return Nystrom(u, eigenvalues, total_shift, failed)


def nystrom_inverse(approx: Nystrom, mu: float | Array, v: Float[Array, " p"]) -> Float[Array, " p"]:
    """P^{-1} v for the Nystrom preconditioner of H + mu I (the study's Algorithm 6):

        P^{-1} v = (lambda_s + mu) U (Lambda + mu I)^{-1} U^T v + (v - U U^T v).
    """
    u, lam = approx.U, approx.eigenvalues
    coeff = u.T @ v
    smallest = lam[-1]
    return u @ ((smallest + mu) / (lam + mu) * coeff) + (v - u @ coeff)
