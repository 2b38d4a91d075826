"""Heat 1-D: u_t = kappa u_xx on [0, 1] x [0, 1], with Dirichlet, Neumann or periodic ends.

Each ``boundary`` kind has its own closed form, a single decaying mode that satisfies it:

- ``dirichlet``: u = 0 at both ends, u = sin(pi x) e^{-kappa pi^2 t};
- ``neumann``: u_x = 0 at both ends (insulated), u = cos(pi x) e^{-kappa pi^2 t};
- ``periodic``: u and u_x periodic in x, u = sin(2 pi x) e^{-4 kappa pi^2 t}.
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp

from ._base import AbstractProblem, check_coefficient
from .conditions import dirichlet, initial, neumann, pde, periodic
from .domain import Box

BOUNDARIES = ("dirichlet", "neumann", "periodic")


class Heat(AbstractProblem):
    """Diffusion with coefficient ``kappa`` (> 0) and the ``boundary`` kind (module docstring)."""

    kappa: float = 0.1
    boundary: str = "dirichlet"

    name: ClassVar[str] = "heat"

    def __check_init__(self):
        check_coefficient(self.name, "kappa", self.kappa, positive=True)
        if self.boundary not in BOUNDARIES:
            raise ValueError(f"pde.boundary: unknown {self.boundary!r}; allowed: {', '.join(BOUNDARIES)}")

    def domain(self) -> Box:
        return Box(("x", "t"), (0.0, 0.0), (1.0, 1.0), time="t")

    def _mode(self):
        return {"dirichlet": (jnp.sin, 1.0), "neumann": (jnp.cos, 1.0), "periodic": (jnp.sin, 2.0)}[self.boundary]

    def conditions(self):
        wave, k = self._mode()
        start = lambda c: wave(k * jnp.pi * c["x"])  # noqa: E731
        if self.boundary == "dirichlet":
            edge = dirichlet("boundary")
        elif self.boundary == "neumann":
            edge = neumann("boundary", self.domain())
        else:
            edge = periodic("boundary", "x", derivatives=1)
        return (
            pde("residual", ("u_t", "u_xx"), lambda d, c: d["u_t"] - self.kappa * d["u_xx"]),
            initial("initial", value=start),
            edge,
        )

    def exact(self, c):
        wave, k = self._mode()
        return wave(k * jnp.pi * c["x"]) * jnp.exp(-self.kappa * (k * jnp.pi) ** 2 * c["t"])
