"""Wave: u_tt - c^2 u_xx = 0 on [0, 1] x [0, 1], u(0, t) = u(1, t) = 0 (PAPER.md s.1).

u(x, 0) = sin(pi x) + 0.5 sin(beta pi x), u_t(x, 0) = 0; exact solution
sin(pi x) cos(c pi t) + 0.5 sin(beta pi x) cos(c beta pi t)  (c = 2 in the study).
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp

from ._base import check_coefficient
from ._study import AbstractStudyProblem


class Wave(AbstractStudyProblem):
    """One-dimensional wave equation with speed squared c2 and initial mode beta."""

    beta: float = 5.0
    c2: float = 4.0

    name: ClassVar[str] = "wave"
    residual_terms: ClassVar[tuple[str, ...]] = ("u_xx", "u_tt")
    initial_terms: ClassVar[tuple[str, ...]] = ("u", "u_t")

    def __check_init__(self):
        check_coefficient(self.name, "beta", self.beta)
        check_coefficient(self.name, "c2", self.c2, positive=True)

    @property
    def x_min(self) -> float:
        return 0.0

    @property
    def x_max(self) -> float:
        return 1.0

    def _g(self, x):
        return jnp.sin(jnp.pi * x) + 0.5 * jnp.sin(self.beta * jnp.pi * x)

    def residual(self, d, c):
        return d["u_tt"] - self.c2 * d["u_xx"]

    def initial_residuals(self, d, c):
        # the study's initial term: MSE(u(x,0) - g(x)) + MSE(u_t(x,0))
        return (d["u"] - self._g(c["x"]), d["u_t"])

    def boundary_residuals(self, left, right, c):
        # Dirichlet at both ends: MSE(u(0,t)) + MSE(u(1,t))
        return (left["u"], right["u"])

    def exact(self, c):
        x, t = c["x"], c["t"]
        speed = jnp.sqrt(self.c2)
        return jnp.sin(jnp.pi * x) * jnp.cos(speed * jnp.pi * t) + 0.5 * jnp.sin(
            self.beta * jnp.pi * x
        ) * jnp.cos(speed * self.beta * jnp.pi * t)
