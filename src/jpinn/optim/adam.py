"""Adam through optax (PAPER.md section 3: betas 0.9 / 0.999, eps 1e-8)."""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import optax

from ._base import AbstractOptimizer, base_info, check_fraction, check_positive


class Adam(AbstractOptimizer):
    """``optax.adam`` with a constant learning rate, one iteration per step."""

    learning_rate: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8

    name: ClassVar[str] = "adam"

    def __check_init__(self):
        check_positive(self.name, "learning_rate", self.learning_rate)
        check_positive(self.name, "eps", self.eps)
        for field in ("b1", "b2"):
            check_fraction(self.name, field, getattr(self, field), closed_below=True)

    def _transform(self) -> optax.GradientTransformation:
        return optax.adam(self.learning_rate, b1=self.b1, b2=self.b2, eps=self.eps)

    def init(self, f, w):
        return self._transform().init(w)

    def step(self, f, w, state):
        (loss, _), grad = jax.value_and_grad(f, has_aux=True)(w)
        updates, state = self._transform().update(grad, state, w)
        return optax.apply_updates(w, updates), state, base_info(loss, jnp.linalg.norm(grad))
