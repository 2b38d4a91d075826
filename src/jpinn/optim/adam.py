"""Adam through optax (PAPER.md section 3: betas 0.9 / 0.999, eps 1e-8), with a constant
learning rate (the study's) or one of optax's schedules:

- ``exponential``: ``learning_rate * decay_rate ** (step / decay_steps)``
  (``optax.exponential_decay``);
- ``cosine``: from ``learning_rate`` to ``end_fraction * learning_rate`` over ``decay_steps``
  steps, then constant (``optax.cosine_decay_schedule``);
- ``warmup_cosine``: linear from 0 to ``learning_rate`` over ``warmup_steps``, then cosine
  down to ``end_fraction * learning_rate`` at step ``decay_steps`` (warmup included;
  ``optax.warmup_cosine_decay_schedule``).

The step counts from the start of the phase. ``constant`` builds exactly the study's
transformation (the same numbers as before schedules existed)."""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import optax

from ._base import AbstractOptimizer, base_info, check_fraction, check_positive


SCHEDULES = ("constant", "exponential", "cosine", "warmup_cosine")


class Adam(AbstractOptimizer):
    """``optax.adam`` with a constant or scheduled learning rate (module docstring), one
    iteration per step."""

    learning_rate: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    schedule: str = "constant"
    decay_steps: int = 1000
    decay_rate: float = 0.9
    warmup_steps: int = 0
    end_fraction: float = 0.0

    name: ClassVar[str] = "adam"

    def __check_init__(self):
        check_positive(self.name, "learning_rate", self.learning_rate)
        check_positive(self.name, "eps", self.eps)
        for field in ("b1", "b2"):
            check_fraction(self.name, field, getattr(self, field), closed_below=True)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule: unknown {self.schedule!r}; allowed: {', '.join(SCHEDULES)} ({self.name})")
        check_positive(self.name, "decay_steps", self.decay_steps, integer=True)
        check_positive(self.name, "decay_rate", self.decay_rate)
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ValueError(f"warmup_steps: must be an integer >= 0, got {self.warmup_steps!r} ({self.name})")
        if self.schedule == "warmup_cosine" and self.warmup_steps >= self.decay_steps:
            raise ValueError(f"warmup_steps: must be less than decay_steps ({self.decay_steps}, warmup included),"
                             f" got {self.warmup_steps} ({self.name})")
        ok = isinstance(self.end_fraction, (int, float)) and not isinstance(self.end_fraction, bool)
        if not ok or not 0 <= self.end_fraction <= 1:
            raise ValueError(f"end_fraction: must be a number in [0, 1], got {self.end_fraction!r} ({self.name})")

    def learning_rate_at(self, step):
        """The learning rate of step ``step`` (0 first) of the phase."""
        return self._rate()(step)

    def _rate(self):
        lr = self.learning_rate
        if self.schedule == "exponential":
            return optax.exponential_decay(lr, self.decay_steps, self.decay_rate)
        if self.schedule == "cosine":
            return optax.cosine_decay_schedule(lr, self.decay_steps, alpha=self.end_fraction)
        if self.schedule == "warmup_cosine":
            return optax.warmup_cosine_decay_schedule(0.0, lr, self.warmup_steps, self.decay_steps,
                                                      end_value=self.end_fraction * lr)
        return optax.constant_schedule(lr)

    def _transform(self) -> optax.GradientTransformation:
        if self.schedule == "constant":
            return optax.adam(self.learning_rate, b1=self.b1, b2=self.b2, eps=self.eps)
        return optax.adam(self._rate(), b1=self.b1, b2=self.b2, eps=self.eps)

    def init(self, f, w):
        return self._transform().init(w)

    def step(self, f, w, state):
        (loss, _), grad = jax.value_and_grad(f, has_aux=True)(w)
        updates, state = self._transform().update(grad, state, w)
        return optax.apply_updates(w, updates), state, base_info(loss, jnp.linalg.norm(grad))
