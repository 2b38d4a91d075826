"""The study's three problems, one file each, behind ``AbstractPDE``."""

from .._registry import make_registered
from ._base import AbstractPDE as AbstractPDE, AbstractPeriodicPDE as AbstractPeriodicPDE
from .convection import Convection as Convection
from .reaction import Reaction as Reaction
from .wave import Wave as Wave

PDES: dict[str, type[AbstractPDE]] = {cls.name: cls for cls in (Convection, Reaction, Wave)}


def make_pde(name: str, **coefficients) -> AbstractPDE:
    """Build a PDE by name; unknown names and coefficients give a one-line ValueError."""
    return make_registered("pde.", "PDE", PDES, name, coefficients)
