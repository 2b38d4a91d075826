"""Optimizers behind one interface: ``init(f, w)`` and ``step(f, w, state)``."""

from .._registry import make_registered
from ._base import (
    ENSEMBLE_AXIS as ENSEMBLE_AXIS,
    NONFINITE as NONFINITE,
    RUNNING as RUNNING,
    FAULTS as FAULTS,
    STOP_REASONS as STOP_REASONS,
    AbstractOptimizer as AbstractOptimizer,
    StopReason as StopReason,
    any_member as any_member,
    stop_reason as stop_reason,
)
from .adam import Adam as Adam
from .arncg import ARNCG as ARNCG, ARNCGState as ARNCGState
from .gd import GD as GD
from .gauss_newton import GaussNewton as GaussNewton, GaussNewtonState as GaussNewtonState, LeastSquares as LeastSquares
from .lbfgs import LBFGS as LBFGS, LBFGSMemory as LBFGSMemory, LBFGSState as LBFGSState
from .linesearch import armijo as armijo, strong_wolfe as strong_wolfe
from .nncg import NNCG as NNCG, NNCGState as NNCGState
from .optax_phase import Optax as Optax
from .ssbfgs import SSBFGS as SSBFGS, SSBroyden as SSBroyden, SSBFGSState as SSBFGSState

OPTIMIZERS: dict[str, type[AbstractOptimizer]] = {
    cls.name: cls for cls in (Adam, LBFGS, NNCG, GD, GaussNewton, ARNCG, SSBFGS, SSBroyden, Optax)
}


def make_optimizer(name: str, **hyperparameters) -> AbstractOptimizer:
    """Build an optimizer by name; unknown names and fields give a one-line ValueError."""
    return make_registered("", "optimizer", OPTIMIZERS, name, hyperparameters)
