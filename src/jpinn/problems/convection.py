"""Convection: u_t + beta u_x = 0 on [0, 2 pi] x [0, 1], periodic, u(x, 0) = sin x (PAPER.md s.1)."""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp

from ._base import check_coefficient
from ._study import AbstractPeriodicStudyProblem


class Convection(AbstractPeriodicStudyProblem):
    """Exact solution sin(x - beta t). The study's headline coefficient is beta = 40."""

    beta: float = 40.0

    name: ClassVar[str] = "convection"
    residual_terms: ClassVar[tuple[str, ...]] = ("u_x", "u_t")
    initial_terms: ClassVar[tuple[str, ...]] = ("u",)

    def __check_init__(self):
        check_coefficient(self.name, "beta", self.beta)

    def residual(self, d, c):
        return d["u_t"] + self.beta * d["u_x"]

    def initial_residuals(self, d, c):
        return (d["u"] - jnp.sin(c["x"]),)

    def exact(self, c):
        return jnp.sin(c["x"] - self.beta * c["t"])
