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
# the fields of an optimizer with a learning-rate schedule (Adam, jpinn.optim.optax_phase.Optax)
SCHEDULE_FIELDS = ("schedule", "decay_steps", "decay_rate", "warmup_steps", "end_fraction")


def check_schedule(optimizer) -> None:
    """One-line ValueErrors for the schedule fields (``SCHEDULE_FIELDS``) of ``optimizer``,
    an optimizer with those fields and a ``name``."""
    name = optimizer.name
    if optimizer.schedule not in SCHEDULES:
        raise ValueError(f"schedule: unknown {optimizer.schedule!r}; allowed: {', '.join(SCHEDULES)} ({name})")
    check_positive(name, "decay_steps", optimizer.decay_steps, integer=True)
    check_positive(name, "decay_rate", optimizer.decay_rate)
    warmup = optimizer.warmup_steps
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup_steps: must be an integer >= 0, got {warmup!r} ({name})")
    if optimizer.schedule == "warmup_cosine" and warmup >= optimizer.decay_steps:
        raise ValueError(f"warmup_steps: must be less than decay_steps ({optimizer.decay_steps}, warmup included),"
                         f" got {warmup} ({name})")
    end = optimizer.end_fraction
    if not (isinstance(end, (int, float)) and not isinstance(end, bool)) or not 0 <= end <= 1:
        raise ValueError(f"end_fraction: must be a number in [0, 1], got {end!r} ({name})")


def learning_rate_schedule(optimizer):
    """The optax schedule (step -> learning rate, step 0 the phase's first) of ``optimizer``'s
    ``learning_rate`` and schedule fields (module docstring); its real fields may be traced
    (an ensemble's members)."""
    lr = optimizer.learning_rate
    if optimizer.schedule == "exponential":
        return optax.exponential_decay(lr, optimizer.decay_steps, optimizer.decay_rate)
    if optimizer.schedule == "cosine":
        return optax.cosine_decay_schedule(lr, optimizer.decay_steps, alpha=optimizer.end_fraction)
    if optimizer.schedule == "warmup_cosine":
        return optax.warmup_cosine_decay_schedule(0.0, lr, optimizer.warmup_steps, optimizer.decay_steps,
                                                  end_value=optimizer.end_fraction * lr)
    return optax.constant_schedule(lr)


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
        check_schedule(self)

    def learning_rate_at(self, step):
        """The learning rate of step ``step`` (0 first) of the phase."""
        return self._rate()(step)

    def _rate(self):
        return learning_rate_schedule(self)

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
