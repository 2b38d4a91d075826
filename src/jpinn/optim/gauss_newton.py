"""Gauss-Newton / energy natural gradient on the residual vector r(w), loss = ||r||^2.

One step linearises r once at w (``linalg.linearize_residuals``: r, v -> J v, u -> J^T u)
and solves the damped Gauss-Newton system

    (J^T J + lambda I) d = J^T r,        w <- w - t d

(the gradient of the loss is 2 J^T r; J^T J is positive semi-definite, so for lambda > 0
the system is positive definite and CG and Cholesky are well-posed, unlike Newton's
system on the indefinite Hessian of a PINN loss). For a PINN loss the Gauss-Newton matrix
is the energy natural gradient's Gramian (Mueller and Zeinhofer 2023).

**Solvers** (``solver``):

- ``cg``: matrix-free CG on v -> J^T (J v) + lambda v (one jvp and one vjp a product),
  preconditioned (``precondition="nystrom"``) by a rank-``rank`` randomized Nystrom
  approximation of J^T J (``linalg.nystrom``, refreshed every ``refresh`` steps; the
  preconditioner of J^T J + lambda I for whatever lambda the damping chooses, study's
  Algorithm 6), warm-started from the previous direction, stopping at
  ||res|| <= cg_rtol ||J^T r|| or after ``cg_max_iter`` iterations;
- ``cholesky``: the dense m x p Jacobian (``linalg.dense_jacobian``), then Cholesky of the
  p x p matrix J^T J + lambda I: for small networks;
- ``woodbury``: the kernel form d = J^T (J J^T + lambda I)^{-1} r, an m x m Cholesky: for
  fewer residuals than parameters.

**Damping** (``damping``):

- ``lm``: Levenberg-Marquardt with gain-ratio adaptation (Nielsen 1999; Madsen, Nielsen
  and Tingleff, "Methods for non-linear least squares problems", eq. 2.21). A trial d is
  accepted when rho = (L(w) - L(w - d)) / (L(w) - ||r - J d||^2) > ``lm_accept``; then
  lambda <- lambda max(1/3, 1 - (2 rho - 1)^3), nu <- 2; else lambda <- nu lambda,
  nu <- 2 nu and the system is solved again with the same linearisation, at most
  ``max_rejections`` times in one step. A step that accepts nothing, or lambda above
  ``damping_max``, ends the phase (``DAMPING_LIMIT``), w unchanged. lambda stays within
  [``damping_min``, ``damping_max``] and carries over from step to step (it is state);
- ``line_search``: ENGD's step: lambda fixed at ``damping_init``, then the best t of the
  grid {1, 1/2, ..., 2^-(line_search_steps - 1)} (the loss at each, Mueller and
  Zeinhofer's logarithmic grid). No grid point below L(w) ends the phase
  (``LINE_SEARCH_STALL``), w unchanged.

The loss it reports and compares is ||r(w)||^2, the loss of ``f`` up to summation order.
``f`` must provide ``residuals(w)``: a ``jpinn.PINNLoss`` does, and
``jpinn.optim.LeastSquares`` wraps any residual function. Each step logs the damping,
the gain ratio, the rejections, CG's iterations and residual, and the step size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .. import rng
from ..linalg import (
    Linearized, dense_jacobian, gauss_newton_block, gauss_newton_product, linearize_residuals, nystrom,
    nystrom_inverse, pcg,
)
from ..linalg.nystrom import Nystrom
from ._base import RUNNING, AbstractOptimizer, StopReason, base_info, check_positive, rebuilt_where

DAMPING_LIMIT = int(StopReason.DAMPING_LIMIT)
LINE_SEARCH_STALL = int(StopReason.LINE_SEARCH_STALL)
SOLVE_FAILED = int(StopReason.SOLVE_FAILED)
SOLVERS = ("cg", "cholesky", "woodbury")
DAMPINGS = ("lm", "line_search")
PRECONDITIONERS = ("nystrom", "none")


class LeastSquares(eqx.Module):
    """A least-squares loss from a residual function: ``f(w) = (||r(w)||^2, {})`` with
    ``f.residuals = r``, what the Gauss-Newton optimizer needs beside a ``PINNLoss``."""

    fn: Callable = eqx.field(static=True)

    def residuals(self, w: Float[Array, " p"]) -> Float[Array, " m"]:
        return self.fn(w)

    def __call__(self, w):
        r = self.fn(w)
        return jnp.vdot(r, r), {}


def residual_function(f, optimizer: str) -> Callable[[Array], Array]:
    """``f.residuals``, or a one-line ValueError naming what is needed."""
    residuals = getattr(f, "residuals", None)
    if not callable(residuals):
        raise ValueError(f"optimizer: {optimizer} needs a least-squares loss with residuals(w)"
                         " (a jpinn PINNLoss, or jpinn.optim.LeastSquares(r))")
    return residuals


def _damped_solve(gram, lam, rhs):
    """(gram + lam I)^{-1} rhs by Cholesky; where the factorisation fails (float32 and a
    damping far below gram's largest eigenvalue), by gram's eigendecomposition, dropping
    the directions with lam_i + lam below n eps max(lam_i) (a pseudo-inverse, as ENGD's
    least-squares solve). Returns (x, 0, ||(gram + lam I) x - rhs||, x finite): the residual
of the solve is logged where CG logs its own."""
    n = gram.shape[0]
    factor = jax.scipy.linalg.cho_factor(gram + lam * jnp.eye(n, dtype=gram.dtype), lower=True)
    x = jax.scipy.linalg.cho_solve(factor, rhs)
    failed = ~jnp.all(jnp.isfinite(x))

    def by_eigh():
        values, vectors = jnp.linalg.eigh(gram)
        shifted = values + lam
        cutoff = n * jnp.finfo(gram.dtype).eps * jnp.maximum(jnp.max(jnp.abs(values)), jnp.finfo(gram.dtype).tiny)
        inverse = jnp.where(shifted > cutoff, 1.0 / jnp.where(shifted > cutoff, shifted, 1.0), 0.0)
        return vectors @ (inverse * (vectors.T @ rhs))

    x = rebuilt_where(failed, by_eigh, x)
    residual = jnp.linalg.norm(gram @ x + lam * x - rhs)
    return x, jnp.int32(0), residual, jnp.all(jnp.isfinite(x))


class GaussNewtonState(eqx.Module):
    damping: Float[Array, ""]       # lambda (carried over by Levenberg-Marquardt)
    nu: Float[Array, ""]            # LM's increase factor
    direction: Float[Array, " p"]   # the last direction (CG's warm start)
    preconditioner: Nystrom
    key: PRNGKeyArray
    step_count: Int[Array, ""]


class GaussNewton(AbstractOptimizer):
    """Damped Gauss-Newton (module docstring): ``damping`` lm | line_search, ``solver``
    cg | cholesky | woodbury."""

    damping: str = "lm"
    solver: str = "cg"
    damping_init: float = 1e-3
    damping_min: float = 1e-12
    damping_max: float = 1e10
    lm_accept: float = 1e-4
    max_rejections: int = 20
    line_search_steps: int = 20
    precondition: str = "nystrom"
    rank: int = 50
    refresh: int = 10
    cg_max_iter: int = 200
    cg_rtol: float = 1e-6
    jacobian_batch: int = 64
    seed: int = 0

    name: ClassVar[str] = "gauss_newton"

    def __check_init__(self):
        for field, allowed in (("damping", DAMPINGS), ("solver", SOLVERS), ("precondition", PRECONDITIONERS)):
            if getattr(self, field) not in allowed:
                raise ValueError(f"{field}: unknown {getattr(self, field)!r}; allowed: {', '.join(allowed)} (gauss_newton)")
        for field in ("damping_init", "damping_min", "damping_max", "cg_rtol"):
            check_positive(self.name, field, getattr(self, field))
        for field in ("max_rejections", "line_search_steps", "rank", "refresh", "cg_max_iter", "jacobian_batch"):
            check_positive(self.name, field, getattr(self, field), integer=True)
        if not self.damping_min <= self.damping_init <= self.damping_max:
            raise ValueError(f"damping_init: must lie in [damping_min, damping_max] = [{self.damping_min!r},"
                             f" {self.damping_max!r}], got {self.damping_init!r} (gauss_newton)")
        if isinstance(self.lm_accept, bool) or not isinstance(self.lm_accept, (int, float)) or not 0 <= self.lm_accept < 1:
            raise ValueError(f"lm_accept: must be a number in [0, 1), got {self.lm_accept!r} (gauss_newton)")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed: must be an integer >= 0, got {self.seed!r} (gauss_newton)")

    def _rank(self, p: int) -> int:
        return min(self.rank, p)

    def init(self, f, w):
        residual_function(f, self.name)
        p = w.shape[0]
        rank = self._rank(p)
        empty = Nystrom(jnp.zeros((p, rank), w.dtype), jnp.zeros((rank,), w.dtype),
                        jnp.zeros((), w.dtype), jnp.asarray(False))
        return GaussNewtonState(jnp.asarray(self.damping_init, w.dtype), jnp.asarray(2.0, w.dtype),
                                jnp.zeros_like(w), empty, rng.key(self.seed, "sketch"), jnp.int32(0))

    # -- the linear solves -------------------------------------------------------------

    def _solver(self, lin: Linearized, w, state: GaussNewtonState):
        """(solve(lambda) -> (d, cg_iterations, cg_residual, ok), preconditioner, key)."""
        p = w.shape[0]
        rhs = lin.vjp(lin.residuals)  # J^T r
        if self.solver == "cg":
            preconditioner, key = state.preconditioner, state.key
            if self.precondition == "nystrom":
                refresh = state.step_count % self.refresh == 0
                key, sketch_key = jax.random.split(state.key)
                preconditioner = rebuilt_where(
                    refresh,
                    lambda: nystrom(lambda v: gauss_newton_block(lin, v), sketch_key, p, self._rank(p), dtype=w.dtype),
                    state.preconditioner,
                )
            tol = self.cg_rtol * jnp.linalg.norm(rhs)

            def solve(lam):
                apply = (lambda v: nystrom_inverse(preconditioner, lam, v)) if self.precondition == "nystrom" else None
                cg = pcg(lambda v: gauss_newton_product(lin, v) + lam * v, rhs, state.direction,
                         precondition=apply, tol=tol, max_iter=self.cg_max_iter)
                return cg.x, cg.iterations, cg.residual_norm, ~cg.breakdown

            return solve, preconditioner, key
        jac = dense_jacobian(lin, p, batch_size=self.jacobian_batch)
        if self.solver == "cholesky":
            gram = jac.T @ jac

            def solve(lam):
                return _damped_solve(gram, lam, rhs)
        else:  # woodbury: d = J^T (J J^T + lambda I)^{-1} r
            kernel = jac @ jac.T

            def solve(lam):
                z, iterations, residual, ok = _damped_solve(kernel, lam, lin.residuals)
                return jac.T @ z, iterations, residual, ok

        return solve, state.preconditioner, state.key

    # -- one step ------------------------------------------------------------------------

    def step(self, f, w, state: GaussNewtonState):
        residuals = residual_function(f, self.name)
        lin = linearize_residuals(residuals, w)
        r = lin.residuals
        loss = jnp.vdot(r, r)
        grad_norm = 2 * jnp.linalg.norm(lin.vjp(r))
        value = lambda v: jnp.vdot(residuals(v), residuals(v))  # noqa: E731
        solve, preconditioner, key = self._solver(lin, w, state)
        if self.damping == "lm":
            w_new, new_state, info = self._lm_step(lin, w, state, loss, value, solve)
        else:
            w_new, new_state, info = self._line_search_step(w, state, loss, value, solve)
        new_state = eqx.tree_at(lambda s: (s.preconditioner, s.key, s.step_count), new_state,
                                (preconditioner, key, state.step_count + 1))
        out = base_info(loss, grad_norm, 1, info.pop("status"), info.pop("evaluations"))
        out.update(info)
        return w_new, new_state, out

    def _lm_step(self, lin, w, state, loss, value, solve):
        dtype = w.dtype
        lo, hi = jnp.asarray(self.damping_min, dtype), jnp.asarray(self.damping_max, dtype)

        def trial(lam):
            d, cg_iterations, cg_residual, ok = solve(lam)
            new_loss = value(w - d)
            jd = lin.jvp(d)
            predicted = 2 * jnp.vdot(lin.residuals, jd) - jnp.vdot(jd, jd)
            ratio = (loss - new_loss) / jnp.where(predicted > 0, predicted, 1.0)
            accepted = ok & jnp.isfinite(new_loss) & (predicted > 0) & (ratio > self.lm_accept) & (new_loss < loss)
            return d, new_loss, ratio, accepted, cg_iterations, cg_residual

        def cond(c):
            lam, _, _, _, _, _, accepted, rejections, _, _ = c
            return ~accepted & (rejections <= self.max_rejections) & (lam <= hi)

        def body(c):
            lam, nu, _, _, _, _, _, rejections, cg_total, _ = c
            d, new_loss, ratio, accepted, cg_iterations, cg_residual = trial(lam)
            # a rejected trial raises lambda for the next one; an accepted one keeps it
            next_lam = jnp.where(accepted, lam, lam * nu)
            next_nu = jnp.where(accepted, nu, 2 * nu)
            return (next_lam, next_nu, d, new_loss, ratio, cg_residual, accepted,
                    rejections + jnp.where(accepted, 0, 1).astype(jnp.int32), cg_total + cg_iterations, lam)

        zero = jnp.zeros((), dtype)
        start = (jnp.clip(state.damping, lo, hi), state.nu, jnp.zeros_like(w), loss, zero, zero, jnp.asarray(False),
                 jnp.int32(0), jnp.int32(0), state.damping)
        lam, nu, d, new_loss, ratio, cg_residual, accepted, rejections, cg_total, used = jax.lax.while_loop(
            cond, body, start)
        # after an accepted trial: Nielsen's decrease of lambda
        shrink = jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * ratio - 1.0) ** 3)
        lam_next = jnp.where(accepted, jnp.clip(lam * shrink, lo, hi), jnp.clip(lam, lo, hi))
        nu_next = jnp.where(accepted, jnp.asarray(2.0, dtype), nu)
        status = jnp.where(accepted, RUNNING, DAMPING_LIMIT).astype(jnp.int32)
        w_new = jnp.where(accepted, w - d, w)
        new_state = GaussNewtonState(lam_next, nu_next, jnp.where(accepted, d, jnp.zeros_like(d)),
                                     state.preconditioner, state.key, state.step_count)
        trials = rejections + accepted.astype(jnp.int32)
        info = dict(status=status, evaluations=1 + trials, damping=used, gain_ratio=ratio, rejections=rejections,
                    accepted=accepted, cg_iterations=cg_total, cg_residual=cg_residual, step_size=accepted.astype(dtype),
                    new_loss=jnp.where(accepted, new_loss, loss))
        return w_new, new_state, info

    def _line_search_step(self, w, state, loss, value, solve):
        dtype = w.dtype
        lam = jnp.asarray(self.damping_init, dtype)
        d, cg_iterations, cg_residual, ok = solve(lam)
        steps = 0.5 ** jnp.arange(self.line_search_steps, dtype=dtype)
        losses = jax.lax.map(lambda t: value(w - t * d), steps)
        losses = jnp.where(jnp.isfinite(losses), losses, jnp.inf)
        best = jnp.argmin(losses)
        t, new_loss = steps[best], losses[best]
        moved = ok & (new_loss < loss)
        status = jnp.where(ok, jnp.where(moved, RUNNING, LINE_SEARCH_STALL), SOLVE_FAILED).astype(jnp.int32)
        w_new = jnp.where(moved, w - t * d, w)
        new_state = GaussNewtonState(lam, state.nu, jnp.where(moved, d, jnp.zeros_like(d)), state.preconditioner,
                                     state.key, state.step_count)
        info = dict(status=status, evaluations=jnp.int32(1 + self.line_search_steps), damping=lam,
                    gain_ratio=jnp.zeros((), dtype), rejections=jnp.int32(0), accepted=moved,
                    cg_iterations=cg_iterations, cg_residual=cg_residual, step_size=jnp.where(moved, t, 0.0),
                    new_loss=jnp.where(moved, new_loss, loss))
        return w_new, new_state, info
