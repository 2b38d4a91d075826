"""The study's three problems, one file each, behind ``AbstractPDE``."""

import dataclasses

from ._base import AbstractPDE as AbstractPDE
from .convection import Convection as Convection
from .reaction import Reaction as Reaction
from .wave import Wave as Wave

PDES: dict[str, type[AbstractPDE]] = {cls.name: cls for cls in (Convection, Reaction, Wave)}


def make_pde(name: str, **coefficients) -> AbstractPDE:
    """Build a PDE by name; unknown names and coefficients give a one-line ValueError."""
    if name not in PDES:
        raise ValueError(f"pde.name: unknown PDE {name!r}; allowed: {', '.join(PDES)}")
    cls = PDES[name]
    allowed = [field.name for field in dataclasses.fields(cls)]
    for key in coefficients:
        if key not in allowed:
            raise ValueError(
                f"pde.{key}: not a coefficient of {name}; allowed: {', '.join(allowed) or 'none'}"
            )
    return cls(**coefficients)
