"""NysNewton-CG (NNCG), the study's optimizer (PAPER.md section 3), compiled end to end.

One step:

1. every ``refresh`` steps, a rank-``rank`` randomized Nystrom approximation
   U diag(Lambda) U^T of the Hessian H (Algorithm 5; ``rank`` Hessian-vector products in
   one batched pass);
2. the direction d from Nystrom-preconditioned CG on (H + mu I) d = g (Algorithm 6),
   warm-started from the previous direction, at most ``cg_max_iter`` iterations, stopping
   at ||r|| <= max(cg_tol, eta ||g||): ``cg_tol`` is the study's absolute tolerance
   (1e-16, never met in float32, so the study always runs all iterations); eta is
   ``cg_rtol``, or with ``cg_forcing="sqrt_grad"`` min(cg_rtol, sqrt(||g||)) as inexact
   Newton methods choose it (0 turns the relative test off);
   The Hessian of a PINN loss is indefinite, so CG meets directions with
   p^T (H + mu I) p <= 0; they are flagged (``negative_curvature``), and CG goes on through
   them as the study's does (``cg_negative_curvature="continue"``) or stops there
   (``"stop"``);
3. if g^T d <= 0 (the direction is not a descent direction) or d is not finite, d falls
   back to the preconditioned gradient P^{-1} g, and the step is flagged (``fallback``).
   ``nondescent="keep"`` does what the companion code does instead: it keeps a finite
   non-descent d as it is (the next CG warm-starts from it) and Armijo's test, with
   g^T d <= 0, then accepts a step that raises the loss by up to alpha t |g^T d|. Either
   way the step is flagged (``nondescent``);
4. Armijo backtracking from t = 1 (Algorithm 7, ``linesearch.armijo``): halve t while
   L(w - t d) > L(w) - alpha t g^T d, at most ``max_backtracks`` times;
5. w <- w - t d.
A preconditioner that is not finite (its sketch met non-finite Hessian-vector products, so
both the Cholesky factorisation and the eigendecomposition fallback failed) or a CG
breakdown (non-finite curvature or residual) ends the phase with its reason, w unchanged.

The gradient and all Hessian-vector products of a step share one linearisation of the
gradient at w. A step whose backtracking finds no decrease leaves w unchanged and ends the
phase with its reason.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .. import rng
from ..linalg import hvp_block, nystrom, nystrom_inverse, pcg, scalar_loss, value_grad_hvp
from ..linalg.nystrom import SHIFTS, Nystrom
from ._base import (
    RUNNING, AbstractOptimizer, StopReason, base_info, check_fraction, check_positive, rebuilt_where,
)
from .linesearch import armijo

# this module's stop codes, as plain ints (jpinn.optim.StopReason names them all)
ARMIJO_FAILED = int(StopReason.ARMIJO_FAILED)
PRECONDITIONER_FAILED = int(StopReason.PRECONDITIONER_FAILED)
CG_BREAKDOWN = int(StopReason.CG_BREAKDOWN)
FORCING = ("fixed", "sqrt_grad")
NONDESCENT = ("fallback", "keep")


class NNCGState(eqx.Module):
    """The preconditioner (refreshed every ``refresh`` steps), the warm start, counters."""

    preconditioner: Nystrom
    direction: Float[Array, " p"]
    key: PRNGKeyArray
    step_count: Int[Array, ""]


class NNCG(AbstractOptimizer):
    """Nystrom-preconditioned Newton-CG with Armijo backtracking (the study's defaults)."""

    mu: float = 1e-2
    rank: int = 60
    refresh: int = 20
    cg_tol: float = 1e-16
    cg_max_iter: int = 1000
    cg_rtol: float = 0.0
    cg_forcing: str = "fixed"
    cg_negative_curvature: str = "continue"
    shift: str = "paper"
    nondescent: str = "fallback"
    armijo_alpha: float = 0.1
    armijo_factor: float = 0.5
    max_backtracks: int = 30
    seed: int = 0

    name: ClassVar[str] = "nncg"

    def __check_init__(self):
        check_positive(self.name, "mu", self.mu)
        for field in ("rank", "refresh", "cg_max_iter", "max_backtracks"):
            check_positive(self.name, field, getattr(self, field), integer=True)
        for field in ("cg_tol", "cg_rtol"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
                raise ValueError(f"{field}: must be a finite number >= 0, got {value!r} (nncg)")
        if self.cg_forcing not in FORCING:
            raise ValueError(f"cg_forcing: unknown {self.cg_forcing!r}; allowed: {', '.join(FORCING)} (nncg)")
        if self.cg_negative_curvature not in ("continue", "stop"):
            raise ValueError(
                f"cg_negative_curvature: unknown {self.cg_negative_curvature!r}; allowed: continue, stop (nncg)"
            )
        if self.shift not in SHIFTS:
            raise ValueError(f"shift: unknown Nystrom shift {self.shift!r}; allowed: {', '.join(SHIFTS)} (nncg)")
        if self.nondescent not in NONDESCENT:
            raise ValueError(f"nondescent: unknown {self.nondescent!r}; allowed: {', '.join(NONDESCENT)} (nncg)")
        for field in ("armijo_alpha", "armijo_factor"):
            check_fraction(self.name, field, getattr(self, field))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed: must be an integer >= 0, got {self.seed!r} (nncg)")

    def init(self, f, w):
        p = w.shape[0]
        rank = min(self.rank, p)
        empty = Nystrom(jnp.zeros((p, rank), w.dtype), jnp.zeros((rank,), w.dtype),
                        jnp.zeros((), w.dtype), jnp.asarray(False))
        return NNCGState(empty, jnp.zeros_like(w), rng.key(self.seed, "sketch"), jnp.int32(0))

    def step(self, f, w, state: NNCGState):
        value = scalar_loss(f)
        p = w.shape[0]
        rank = min(self.rank, p)
        loss, grad, hvp_fn = value_grad_hvp(f, w)
        grad_norm = jnp.linalg.norm(grad)

        refresh = state.step_count % self.refresh == 0
        key, sketch_key = jax.random.split(state.key)
        # a branch also inside an ensemble (rebuilt_where): the sketch costs rank products
        preconditioner = rebuilt_where(
            refresh,
            lambda: nystrom(lambda v: hvp_block(hvp_fn, v), sketch_key, p, rank, shift=self.shift, dtype=w.dtype),
            state.preconditioner,
        )
        mu = jnp.asarray(self.mu, w.dtype)
        precondition = lambda v: nystrom_inverse(preconditioner, mu, v)  # noqa: E731
        eta = jnp.asarray(self.cg_rtol, w.dtype)
        if self.cg_forcing == "sqrt_grad":
            eta = jnp.minimum(eta, jnp.sqrt(grad_norm))
        tol = jnp.maximum(jnp.asarray(self.cg_tol, w.dtype), eta * grad_norm)
        cg = pcg(lambda v: hvp_fn(v) + mu * v, grad, state.direction,
                 precondition=precondition, tol=tol, max_iter=self.cg_max_iter,
                 stop_on_negative_curvature=self.cg_negative_curvature == "stop")
        direction = cg.x
        gtd = jnp.vdot(grad, direction)
        finite = jnp.all(jnp.isfinite(direction))
        nondescent = ~(gtd > 0) & finite
        # a non-finite d always falls back; a non-descent one unless nondescent="keep"
        fallback = ~finite if self.nondescent == "keep" else nondescent | ~finite
        direction = jnp.where(fallback, precondition(grad), direction)
        gtd = jnp.vdot(grad, direction)

        t, new_loss, backtracks, ok = armijo(
            value, w, direction, loss, gtd,
            alpha=self.armijo_alpha, factor=self.armijo_factor, max_backtracks=self.max_backtracks,
        )
        # a fault ends the phase here, w unchanged: an unusable preconditioner (its sketch met
        # non-finite Hessian-vector products), then a CG breakdown, then no Armijo decrease
        bad_preconditioner = ~(jnp.all(jnp.isfinite(preconditioner.U)) & jnp.all(jnp.isfinite(preconditioner.eigenvalues)))
        status = jnp.where(bad_preconditioner, PRECONDITIONER_FAILED,
                           jnp.where(cg.breakdown, CG_BREAKDOWN, jnp.where(ok, RUNNING, ARMIJO_FAILED)))
        w_new = jnp.where(status == RUNNING, w - t * direction, w)
        hvps = cg.iterations + 1 + jnp.where(refresh, rank, 0)  # +1: the initial residual
        info = base_info(loss, grad_norm, 1, status.astype(jnp.int32), 2 + backtracks)
        info.update(
            step_size=t, cg_iterations=cg.iterations, cg_residual=cg.residual_norm, hvps=hvps,
            backtracks=backtracks, negative_curvature=cg.negative_curvature, fallback=fallback, nondescent=nondescent,
            cholesky_failed=preconditioner.cholesky_failed, refreshed=refresh, new_loss=new_loss,
            cg_breakdown=cg.breakdown,
        )
        new_state = NNCGState(preconditioner, direction, key, state.step_count + 1)
        return w_new, new_state, info

