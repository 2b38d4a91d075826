"""Convection: u_t + beta u_x = 0 on [0, 2 pi] x [0, 1], periodic, u(x, 0) = sin x (PAPER.md s.1)."""

from __future__ import annotations

import jax.numpy as jnp
from typing import ClassVar

from ._base import AbstractPeriodicPDE, check_coefficient


class Convection(AbstractPeriodicPDE):
    """Exact solution sin(x - beta t). The study's headline coefficient is beta = 40."""

    beta: float = 40.0

    name: ClassVar[str] = "convection"
    residual_terms: ClassVar[tuple[str, ...]] = ("u_x", "u_t")
    initial_terms: ClassVar[tuple[str, ...]] = ("u",)

    def __check_init__(self):
        check_coefficient(self.name, "beta", self.beta)

    def residual(self, d, x, t):
        return d["u_t"] + self.beta * d["u_x"]

    def initial_residuals(self, d, x):
        return (d["u"] - jnp.sin(x),)

    def exact(self, x, t):
        return jnp.sin(x - self.beta * t)
