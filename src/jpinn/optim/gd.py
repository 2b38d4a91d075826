"""Gradient descent with Armijo backtracking, the study's control for NNCG (PAPER.md
section 3): the same line search as NNCG (``linesearch.armijo``, Algorithm 7) along -g.

One step: t from Armijo backtracking from t = 1 (t times ``armijo_factor`` while
L(w - t g) > L(w) - alpha t ||g||^2, at most ``max_backtracks`` times), then w <- w - t g.
A step whose backtracking finds no decrease leaves w unchanged and ends the phase with its
reason (``ARMIJO_FAILED``).
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp

from ..linalg import scalar_loss
from ._base import RUNNING, AbstractOptimizer, StopReason, base_info, check_fraction, check_positive
from .linesearch import armijo

# this module's stop codes, as plain ints (jpinn.optim.StopReason names them all)
ARMIJO_FAILED = int(StopReason.ARMIJO_FAILED)


class GD(AbstractOptimizer):
    """Gradient descent with the same Armijo backtracking (the study's control)."""

    armijo_alpha: float = 0.1
    armijo_factor: float = 0.5
    max_backtracks: int = 30

    name: ClassVar[str] = "gd"

    def __check_init__(self):
        check_positive(self.name, "max_backtracks", self.max_backtracks, integer=True)
        for field in ("armijo_alpha", "armijo_factor"):
            check_fraction(self.name, field, getattr(self, field))

    def init(self, f, w):
        return jnp.int32(0)

    def step(self, f, w, state):
        value = scalar_loss(f)
        loss, grad = jax.value_and_grad(value)(w)
        gtd = jnp.vdot(grad, grad)
        t, _, backtracks, ok = armijo(
            value, w, grad, loss, gtd,
            alpha=self.armijo_alpha, factor=self.armijo_factor, max_backtracks=self.max_backtracks,
        )
        info = base_info(loss, jnp.sqrt(gtd), 1, jnp.where(ok, RUNNING, ARMIJO_FAILED), 2 + backtracks)
        info.update(step_size=t, backtracks=backtracks)
        return jnp.where(ok, w - t * grad, w), state + 1, info
