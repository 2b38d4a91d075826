"""Optimizers behind one interface: ``init(f, w)`` and ``step(f, w, state)``."""

import dataclasses

from ._base import (
    NONFINITE as NONFINITE,
    RUNNING as RUNNING,
    STOP_REASONS as STOP_REASONS,
    AbstractOptimizer as AbstractOptimizer,
    register_stop_reason as register_stop_reason,
)
from .adam import Adam as Adam

OPTIMIZERS: dict[str, type[AbstractOptimizer]] = {cls.name: cls for cls in (Adam,)}


def make_optimizer(name: str, **hyperparameters) -> AbstractOptimizer:
    """Build an optimizer by name; unknown names and fields give a one-line ValueError."""
    if name not in OPTIMIZERS:
        raise ValueError(f"name: unknown optimizer {name!r}; allowed: {', '.join(OPTIMIZERS)}")
    cls = OPTIMIZERS[name]
    allowed = [field.name for field in dataclasses.fields(cls)]
    for field in hyperparameters:
        if field not in allowed:
            raise ValueError(f"{field}: not a field of {name}; allowed: {', '.join(allowed)}")
    return cls(**hyperparameters)
