"""Optimizers behind one interface: ``init(f, w)`` and ``step(f, w, state)``."""

from .._registry import make_registered
from ._base import (
    ENSEMBLE_AXIS as ENSEMBLE_AXIS,
    NONFINITE as NONFINITE,
    RUNNING as RUNNING,
    STOP_REASONS as STOP_REASONS,
    AbstractOptimizer as AbstractOptimizer,
    any_member as any_member,
    register_stop_reason as register_stop_reason,
)
from .adam import Adam as Adam
from .lbfgs import LBFGS as LBFGS, LBFGSMemory as LBFGSMemory, LBFGSState as LBFGSState
from .linesearch import strong_wolfe as strong_wolfe
from .nncg import GD as GD, NNCG as NNCG, NNCGState as NNCGState, armijo as armijo

OPTIMIZERS: dict[str, type[AbstractOptimizer]] = {cls.name: cls for cls in (Adam, LBFGS, NNCG, GD)}


def make_optimizer(name: str, **hyperparameters) -> AbstractOptimizer:
    """Build an optimizer by name; unknown names and fields give a one-line ValueError."""
    return make_registered("", "optimizer", OPTIMIZERS, name, hyperparameters)
