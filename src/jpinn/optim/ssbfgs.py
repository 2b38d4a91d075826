"""Self-scaled BFGS and self-scaled Broyden (Al-Baali's self-scaling quasi-Newton family,
as Urban, Stefanou and Pons, and Kiyani et al. 2025 use them for PINNs), with a dense
inverse-Hessian approximation H and jpinn's strong-Wolfe line search.

One step at w with gradient g: d = -H g, t from ``linesearch.strong_wolfe`` (trial t = 1;
the very first step of a phase scales its trial by min(1, 1 / ||g||_1), as jpinn's
L-BFGS), s = t d, y = g(w + s) - g. With rho = 1 / y^T s, H y, and

    b = -t rho s^T g   (= s^T B s / y^T s),   h = rho y^T H y,   a = b h - 1,

the update of the Broyden family with scaling tau and parameter phi is

    H+ = (H - H y y^T H / y^T H y + phi (y^T H y) v v^T) / tau + rho s s^T,
    v  = rho s - H y / y^T H y.

``ssbfgs``: phi = 1 (BFGS), tau = min(1, 1 / b) (Al-Baali's self-scaling: never enlarge
H beyond what the step measured). ``ssbroyden``: theta = max(theta-, min(theta+, (1 - b) / b))
with c = sqrt(|a / (1 + a)|), rho- = min(1, h (1 - c)), theta- = (rho- - 1) / a,
theta+ = 1 / rho-; phi = (1 - theta) / (1 + a theta); tau = h / (1 + a theta) at the
first update, later, with sigma = 1 + a theta and rho_k = min(1, 1 / b),
tau = min(rho_k sigma^(1/(1-p)), sigma) when theta <= 0 and
tau = rho_k min(sigma^(1/(1-p)), 1 / theta) otherwise.

A pair with y^T s <= eps (the dtype's) or an update that is not finite is skipped (H
kept); a line search that finds no step (t = 0) ends the phase (``LINE_SEARCH_STALL``).
H is p x p: ``max_parameters`` (20,000 by default: 1.6 GB in float32) refuses larger
networks in one line.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from ._base import RUNNING, AbstractOptimizer, StopReason, base_info, check_positive
from .linesearch import strong_wolfe

LINE_SEARCH_STALL = int(StopReason.LINE_SEARCH_STALL)
GRAD_TOLERANCE = int(StopReason.GRAD_TOLERANCE)


class SSBFGSState(eqx.Module):
    H: Float[Array, "p p"]
    loss: Float[Array, ""]
    grad: Float[Array, " p"]
    updates: Int[Array, ""]       # how many updates H has had (the first one scales differently)
    step_count: Int[Array, ""]


def _loss_and_grad(f, w):
    (loss, _), grad = jax.value_and_grad(f, has_aux=True)(w)
    return loss, grad


class _SelfScaled(AbstractOptimizer):
    learning_rate: float = 1.0
    tolerance_grad: float = 1e-12
    c1: float = 1e-4
    c2: float = 0.9
    max_ls: int = 25
    tolerance_change: float = 1e-12
    max_parameters: int = 20_000

    def __check_init__(self):
        check_positive(self.name, "learning_rate", self.learning_rate)
        check_positive(self.name, "max_ls", self.max_ls, integer=True)
        check_positive(self.name, "max_parameters", self.max_parameters, integer=True)
        for field in ("tolerance_grad", "tolerance_change"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
                raise ValueError(f"{field}: must be a finite number >= 0, got {value!r} ({self.name})")
        if not (isinstance(self.c1, (int, float)) and isinstance(self.c2, (int, float)) and 0 < self.c1 < self.c2 < 1):
            raise ValueError(f"c1: must satisfy 0 < c1 < c2 < 1, got c1={self.c1!r}, c2={self.c2!r} ({self.name})")

    def init(self, f, w):
        p = w.shape[0]
        if p > self.max_parameters:
            raise ValueError(f"max_parameters: {self.name} keeps a dense {p} x {p} inverse Hessian; the network has"
                             f" {p} parameters, above max_parameters={self.max_parameters} (raise it, or use lbfgs)")
        loss, grad = _loss_and_grad(f, w)
        return SSBFGSState(jnp.eye(p, dtype=w.dtype), loss, grad, jnp.int32(0), jnp.int32(0))

    def scaling(self, a, b, h, first, p):
        """(tau, phi) of the update."""
        raise NotImplementedError

    def step(self, f, w, state: SSBFGSState):
        dtype = w.dtype
        loss, grad, H = state.loss, state.grad, state.H
        p = w.shape[0]
        direction = -(H @ grad)
        first = state.step_count == 0
        trial = jnp.where(first, self.learning_rate * jnp.minimum(1.0, 1.0 / jnp.sum(jnp.abs(grad))),
                          self.learning_rate).astype(dtype)
        converged = jnp.max(jnp.abs(grad)) <= self.tolerance_grad
        result = strong_wolfe(lambda v: _loss_and_grad(f, v), w, direction, loss, grad, trial,
                              c1=self.c1, c2=self.c2, tolerance_change=self.tolerance_change, max_ls=self.max_ls)
        t = result.step
        moved = (t > 0) & ~converged
        s = t * direction
        y = result.grad - grad
        ys = jnp.vdot(y, s)
        Hy = H @ y
        yHy = jnp.vdot(y, Hy)
        usable = moved & (ys > jnp.finfo(dtype).eps) & (yHy > 0)
        rho = 1.0 / jnp.where(usable, ys, 1.0)
        safe_yHy = jnp.where(usable, yHy, 1.0)
        b = -t * rho * jnp.vdot(s, grad)
        h = safe_yHy * rho
        a = b * h - 1.0
        tau, phi = self.scaling(a, b, h, state.updates == 0, p)
        v = rho * s - Hy / safe_yHy
        H_new = (H - jnp.outer(Hy, Hy) / safe_yHy + phi * safe_yHy * jnp.outer(v, v)) / tau + rho * jnp.outer(s, s)
        update = usable & jnp.isfinite(tau) & (tau > 0) & jnp.all(jnp.isfinite(H_new))
        H_next = jnp.where(update, 0.5 * (H_new + H_new.T), H)
        status = jnp.where(converged, GRAD_TOLERANCE, jnp.where(moved, RUNNING, LINE_SEARCH_STALL)).astype(jnp.int32)
        new_state = SSBFGSState(
            H_next, jnp.where(moved, result.loss, loss), jnp.where(moved, result.grad, grad),
            state.updates + update.astype(jnp.int32), state.step_count + 1,
        )
        info = base_info(loss, jnp.linalg.norm(grad), 1, status, result.evaluations)
        info.update(step_size=t, wolfe=result.wolfe, updated=update, tau=jnp.where(update, tau, 0.0),
                    phi=jnp.where(update, phi, 0.0), curvature_ys=ys)
        return jnp.where(moved, w + s, w), new_state, info


class SSBFGS(_SelfScaled):
    """Self-scaled BFGS: phi = 1, tau = min(1, 1 / b) (module doc)."""

    name: ClassVar[str] = "ssbfgs"

    def scaling(self, a, b, h, first, p):
        tau = jnp.minimum(1.0, 1.0 / jnp.where(b > 0, b, 1.0))
        return tau, jnp.ones_like(tau)


class SSBroyden(_SelfScaled):
    """Self-scaled Broyden: theta, phi and tau from b and h (module doc)."""

    name: ClassVar[str] = "ssbroyden"

    def scaling(self, a, b, h, first, p):
        safe_a = jnp.where(a == 0, jnp.finfo(a.dtype).eps, a)
        safe_b = jnp.where(b == 0, jnp.finfo(b.dtype).eps, b)
        c = jnp.sqrt(jnp.abs(safe_a / (1.0 + safe_a)))
        rho_minus = jnp.minimum(1.0, h * (1.0 - c))
        theta_minus = (rho_minus - 1.0) / safe_a
        theta_plus = 1.0 / rho_minus
        theta = jnp.maximum(theta_minus, jnp.minimum(theta_plus, (1.0 - safe_b) / safe_b))
        sigma = 1.0 + safe_a * theta
        rho_k = jnp.minimum(1.0, 1.0 / safe_b)
        root = jnp.abs(sigma) ** (1.0 / (1.0 - p)) if p > 1 else jnp.ones_like(sigma)
        later = jnp.where(theta <= 0, jnp.minimum(rho_k * root, sigma),
                          rho_k * jnp.minimum(root, 1.0 / jnp.where(theta == 0, 1.0, theta)))
        tau = jnp.where(first, h / sigma, later)
        phi = (1.0 - theta) / sigma
        return tau, phi
