"""ARNCG: adaptive regularised Newton-CG that uses negative curvature (Zhou, Xu, Bao, Ding
and Zhu, "A regularized Newton method for nonconvex optimization with global and local
complexity guarantees", arXiv 2502.04799), compiled.

One step at w, with g = grad L(w) and H its Hessian (Hessian-vector products from one
linearisation, as NNCG):

1. the regulariser eps = sqrt(M ||g||): quadratic regularisation tied to the gradient
   norm (the paper's regularisers built from the current gradient, exponent 1/2), with
   M adapted from step to step (4);
2. capped CG (``linalg.capped_cg``) on (H + eps I) d = g from d = 0, stopping at
   ||res|| <= eta ||g|| with eta = min(cg_rtol, sqrt(||g||)), after ``cg_max_iter``
   iterations, or at the first direction p with p^T (H + eps I) p <= 0 (curvature of H at
   most -eps along p);
3. the direction: the CG solution ("SOL"), or for negative curvature ("NC") p scaled to
   length |p^T H p| / ||p||^2 and signed so that g^T d >= 0 (Royer, O'Neill and Wright's
   scaling); then backtracking from t = 1 (factor ``backtrack_factor``, at most
   ``max_backtracks``) until
       L(w - t d) <= L(w) - alpha t g^T d                      (SOL)
       L(w - t d) <= L(w) - alpha t g^T d - alpha t^2 |kappa| ||d||^2 / 2   (NC, kappa
       the curvature), which a strict saddle (g = 0) still meets;
4. M <- max(M / gamma, M_min) when t = 1 was accepted, M <- gamma M when it took
   backtracking or failed; a failed search leaves w unchanged and the next step tries
   again with the larger regulariser. M above ``M_max`` ends the phase (``DAMPING_LIMIT``);
   a CG breakdown (non-finite products) ends it with ``CG_BREAKDOWN``.

Settings against the paper: the paper's experiments on PINNs run in float64 at width 200
with its own line-search constants; jpinn's defaults (M_init 1, gamma 2, alpha 1e-4,
backtrack_factor 0.5, cg_rtol 0.5, cg_max_iter 200) are the usual choices of
regularised-Newton codes, not tuned values taken from the paper, and no preconditioner is
used (a preconditioner would measure curvature in its own metric).
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from ..linalg import capped_cg, scalar_loss, value_grad_hvp
from ._base import RUNNING, AbstractOptimizer, StopReason, base_info, check_fraction, check_positive

DAMPING_LIMIT = int(StopReason.DAMPING_LIMIT)
CG_BREAKDOWN = int(StopReason.CG_BREAKDOWN)


class ARNCGState(eqx.Module):
    M: Float[Array, ""]
    step_count: Int[Array, ""]


class ARNCG(AbstractOptimizer):
    """Adaptive regularised Newton-CG with negative-curvature directions (module doc)."""

    M_init: float = 1.0
    M_min: float = 1e-16
    M_max: float = 1e16
    gamma: float = 2.0
    cg_rtol: float = 0.5
    cg_max_iter: int = 200
    alpha: float = 1e-4
    backtrack_factor: float = 0.5
    max_backtracks: int = 30

    name: ClassVar[str] = "arncg"

    def __check_init__(self):
        for field in ("M_init", "M_min", "M_max", "cg_rtol"):
            check_positive(self.name, field, getattr(self, field))
        for field in ("cg_max_iter", "max_backtracks"):
            check_positive(self.name, field, getattr(self, field), integer=True)
        check_fraction(self.name, "alpha", self.alpha)
        check_fraction(self.name, "backtrack_factor", self.backtrack_factor)
        if isinstance(self.gamma, bool) or not isinstance(self.gamma, (int, float)) or not self.gamma > 1:
            raise ValueError(f"gamma: must be a number > 1, got {self.gamma!r} (arncg)")
        if not self.M_min <= self.M_init <= self.M_max:
            raise ValueError(f"M_init: must lie in [M_min, M_max] = [{self.M_min!r}, {self.M_max!r}],"
                             f" got {self.M_init!r} (arncg)")

    def init(self, f, w):
        return ARNCGState(jnp.asarray(self.M_init, w.dtype), jnp.int32(0))

    def step(self, f, w, state: ARNCGState):
        value = scalar_loss(f)
        dtype = w.dtype
        loss, grad, hvp_fn = value_grad_hvp(f, w)
        grad_norm = jnp.linalg.norm(grad)
        eps = jnp.sqrt(state.M * grad_norm)
        eta = jnp.minimum(jnp.asarray(self.cg_rtol, dtype), jnp.sqrt(grad_norm))
        cg = capped_cg(lambda v: hvp_fn(v) + eps * v, grad, tol=eta * grad_norm, max_iter=self.cg_max_iter)
        # NC: p scaled to length |kappa| (kappa = p^T H p / ||p||^2), signed so g^T d >= 0
        kappa = cg.curvature - eps
        p_norm = jnp.linalg.norm(cg.direction)
        unit = cg.direction / jnp.where(p_norm > 0, p_norm, 1.0)
        sign = jnp.where(jnp.vdot(grad, unit) < 0, -1.0, 1.0)
        nc_direction = sign * jnp.abs(kappa) * unit
        direction = jnp.where(cg.negative_curvature, nc_direction, cg.x)
        gtd = jnp.vdot(grad, direction)
        bonus = jnp.where(cg.negative_curvature, 0.5 * jnp.abs(kappa) * jnp.vdot(direction, direction), 0.0)

        def enough(t, f_t):
            return f_t <= loss - self.alpha * (t * gtd + t * t * bonus)

        def cond(c):
            t, f_t, k = c
            return ~enough(t, f_t) & (k < self.max_backtracks)

        def body(c):
            t, _, k = c
            t = t * self.backtrack_factor
            return t, value(w - t * direction), k + 1

        one = jnp.ones((), dtype)
        t, f_t, backtracks = jax.lax.while_loop(cond, body, (one, value(w - direction), jnp.int32(0)))
        f_t = jnp.where(jnp.isfinite(f_t), f_t, jnp.inf)
        ok = enough(t, f_t) & jnp.all(jnp.isfinite(direction))
        M_next = jnp.where(ok & (backtracks == 0), jnp.maximum(state.M / self.gamma, self.M_min), state.M * self.gamma)
        status = jnp.where(cg.breakdown, CG_BREAKDOWN, jnp.where(M_next > self.M_max, DAMPING_LIMIT, RUNNING))
        moved = ok & (status == RUNNING)
        w_new = jnp.where(moved, w - t * direction, w)
        info = base_info(loss, grad_norm, 1, status.astype(jnp.int32), 2 + backtracks)
        info.update(
            regulariser=eps, M=state.M, cg_iterations=cg.iterations, cg_residual=cg.residual_norm,
            negative_curvature=cg.negative_curvature, curvature=jnp.where(cg.negative_curvature, kappa, 0.0),
            step_size=jnp.where(moved, t, 0.0), backtracks=backtracks, accepted=moved,
            new_loss=jnp.where(moved, f_t, loss),
        )
        return w_new, ARNCGState(jnp.minimum(M_next, self.M_max * self.gamma), state.step_count + 1), info
