"""Poisson in d dimensions: -lap u = f on [0, 1]^d, u = 0 on the boundary.

With f = d pi^2 prod_i sin(pi x_i) the solution is u = prod_i sin(pi x_i). Coordinates are
named x1 ... xd.
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp

from .._registry import check_int
from ._base import AbstractProblem
from .conditions import dirichlet, pde
from .domain import Box

MAX_DIM = 10


class Poisson(AbstractProblem):
    """The d-dimensional Poisson problem of the module docstring (``dim`` 1..10)."""

    dim: int = 2

    name: ClassVar[str] = "poisson"

    def __check_init__(self):
        check_int("pde.dim", self.dim, 1)
        if self.dim > MAX_DIM:
            raise ValueError(f"pde.dim: must be at most {MAX_DIM}, got {self.dim}")

    def domain(self) -> Box:
        names = tuple(f"x{i + 1}" for i in range(self.dim))
        return Box(names, (0.0,) * self.dim, (1.0,) * self.dim)

    def _product(self, c):
        out = jnp.sin(jnp.pi * c["x1"])
        for i in range(2, self.dim + 1):
            out = out * jnp.sin(jnp.pi * c[f"x{i}"])
        return out

    def conditions(self):
        forcing = lambda c: self.dim * jnp.pi**2 * self._product(c)  # noqa: E731
        return (
            pde("residual", ("lap_u",), lambda d, c: -d["lap_u"] - forcing(c)),
            dirichlet("boundary"),
        )

    def exact(self, c):
        return self._product(c)
