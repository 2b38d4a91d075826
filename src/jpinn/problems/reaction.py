"""Reaction: u_t - rho u (1 - u) = 0 on [0, 2 pi] x [0, 1], periodic (PAPER.md s.1).

Initial condition h(x) = exp(-(x - pi)^2 / (2 (pi/4)^2)); exact solution
h e^{rho t} / (h e^{rho t} + 1 - h).
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp

from ._base import check_coefficient
from ._study import AbstractPeriodicStudyProblem


def _h(x):
    return jnp.exp(-((x - jnp.pi) ** 2) / (2 * (jnp.pi / 4) ** 2))


class Reaction(AbstractPeriodicStudyProblem):
    """Logistic reaction with growth rate rho (the study's headline value: rho = 5)."""

    rho: float = 5.0

    name: ClassVar[str] = "reaction"
    residual_terms: ClassVar[tuple[str, ...]] = ("u", "u_t")
    initial_terms: ClassVar[tuple[str, ...]] = ("u",)

    def __check_init__(self):
        check_coefficient(self.name, "rho", self.rho)

    def residual(self, d, c):
        u = d["u"]
        return d["u_t"] - self.rho * u * (1 - u)

    def initial_residuals(self, d, c):
        return (d["u"] - _h(c["x"]),)

    def exact(self, c):
        h = _h(c["x"])
        growth = h * jnp.exp(self.rho * c["t"])
        return growth / (growth + 1 - h)
