"""Helmholtz 2-D: u_xx + u_yy + k^2 u = q on [-1, 1]^2, u = 0 on the boundary.

With q = (k^2 - (a1^2 + a2^2) pi^2) sin(a1 pi x) sin(a2 pi y) the solution is
u = sin(a1 pi x) sin(a2 pi y) (integer a1, a2: it vanishes on the edges). The usual PINN
benchmark setting: k = 1, a1 = 1, a2 = 4.
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp

from .._registry import check_int
from ._base import AbstractProblem, check_coefficient
from .conditions import dirichlet, pde
from .domain import Box


class Helmholtz(AbstractProblem):
    """Wavenumber ``k`` and the solution's modes ``a1``, ``a2`` (module docstring)."""

    k: float = 1.0
    a1: int = 1
    a2: int = 4

    name: ClassVar[str] = "helmholtz"

    def __check_init__(self):
        check_coefficient(self.name, "k", self.k)
        check_int("pde.a1", self.a1, 1)
        check_int("pde.a2", self.a2, 1)

    def domain(self) -> Box:
        return Box(("x", "y"), (-1.0, -1.0), (1.0, 1.0))

    def exact(self, c):
        return jnp.sin(self.a1 * jnp.pi * c["x"]) * jnp.sin(self.a2 * jnp.pi * c["y"])

    def conditions(self):
        scale = self.k**2 - (self.a1**2 + self.a2**2) * jnp.pi**2
        return (
            pde("residual", ("lap_u", "u"), lambda d, c: d["lap_u"] + self.k**2 * d["u"] - scale * self.exact(c)),
            dirichlet("boundary"),
        )
