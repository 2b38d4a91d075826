"""Problems: domains, conditions, ``AbstractProblem``, and the shipped problems, one file
each (the study's convection, reaction and wave; heat, Poisson, Helmholtz, Kovasznay; and,
with references from jpinn's own solvers, Burgers, Allen-Cahn, KdV, reaction-diffusion and
2-D heat with a source)."""

from .._registry import make_registered
from . import conditions as conditions
from ._base import (
    AbstractProblem as AbstractProblem,
    Reference as Reference,
    check_coefficient as check_coefficient,
    check_problem as check_problem,
    exact_fields as exact_fields,
)
from ._study import AbstractPeriodicStudyProblem as AbstractPeriodicStudyProblem, AbstractStudyProblem as AbstractStudyProblem
from .allen_cahn import AllenCahn as AllenCahn
from .burgers import Burgers as Burgers, BurgersInverse as BurgersInverse
from .conditions import Condition as Condition
from .convection import Convection as Convection
from .domain import (
    Boundary as Boundary,
    Box as Box,
    Face as Face,
    Initial as Initial,
    Interior as Interior,
    PeriodicPair as PeriodicPair,
    Points as Points,
)
from .heat import Heat as Heat
from .heat2d import HeatSource2D as HeatSource2D
from .helmholtz import Helmholtz as Helmholtz
from .kdv import KdV as KdV
from .kovasznay import Kovasznay as Kovasznay
from .poisson import Poisson as Poisson
from .reaction import Reaction as Reaction
from .reaction_diffusion import ReactionDiffusion as ReactionDiffusion
from .wave import Wave as Wave

PROBLEMS: dict[str, type[AbstractProblem]] = {
    cls.name: cls for cls in (Convection, Reaction, Wave, Heat, Poisson, Helmholtz, Kovasznay, Burgers, BurgersInverse,
                              AllenCahn, KdV, ReactionDiffusion, HeatSource2D)
}


def make_problem(name: str, **coefficients) -> AbstractProblem:
    """Build a shipped problem by name; unknown names and coefficients give a one-line ValueError."""
    return make_registered("pde.", "problem", PROBLEMS, name, coefficients)


# the names of the study's reproduction (before the general problem layer)
AbstractPDE = AbstractProblem
PDES = PROBLEMS
make_pde = make_problem
