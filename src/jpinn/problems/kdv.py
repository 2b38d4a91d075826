"""Korteweg-de Vries: u_t + eta u u_x + mu^2 u_xxx = 0 on [-1, 1] x [0, 1],
u(x, 0) = cos(pi x), periodic in x (u and u_x), eta = 1 and mu = 0.022 by default: Zabusky
and Kruskal's setting, as in jaxpi's KdV example. The cosine breaks into solitons.

The third derivative is computed by nested forward mode (``jpinn.derivatives``). The
reference is jpinn's Fourier ETDRK4 solution (``jpinn.references.kdv``) on 512 x 201
points, cached in the user's cache folder.
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp

from ._base import AbstractProblem, Reference, check_coefficient
from .conditions import initial, pde, periodic
from .domain import Box


class KdV(AbstractProblem):
    """KdV with nonlinearity ``eta`` and dispersion ``mu`` (> 0; module docstring)."""

    eta: float = 1.0
    mu: float = 0.022

    name: ClassVar[str] = "kdv"

    def __check_init__(self):
        check_coefficient(self.name, "eta", self.eta)
        check_coefficient(self.name, "mu", self.mu, positive=True)

    def domain(self) -> Box:
        return Box(("x", "t"), (-1.0, 0.0), (1.0, 1.0), time="t")

    def conditions(self):
        return (
            pde("residual", ("u", "u_t", "u_x", "u_xxx"),
                lambda d, c: d["u_t"] + self.eta * d["u"] * d["u_x"] + self.mu**2 * d["u_xxx"]),
            initial("initial", value=lambda c: jnp.cos(jnp.pi * c["x"])),
            periodic("boundary", "x", derivatives=1),
        )

    def reference(self) -> Reference:
        from ..references import cached_grid, kdv

        return cached_grid("kdv", {**kdv.STANDARD, "eta": float(self.eta), "mu": float(self.mu)}, kdv.solve)
