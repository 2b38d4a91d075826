"""Allen-Cahn 1-D: u_t = d u_xx + 5 u - 5 u^3 on [-1, 1] x [0, 1], u(x, 0) = x^2 cos(pi x),
periodic in x (u and u_x), d = 1e-4 by default: jaxpi's Allen-Cahn setting, where
PirateNets report an L2RE of 2.24e-5.

The reference is jpinn's Fourier ETDRK4 solution (``jpinn.references.allen_cahn``) on 512 x
201 points, cached in the user's cache folder.
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp

from ._base import AbstractProblem, Reference, check_coefficient
from .conditions import initial, pde, periodic
from .domain import Box


class AllenCahn(AbstractProblem):
    """Allen-Cahn with diffusion ``d`` (> 0; module docstring)."""

    d: float = 1e-4

    name: ClassVar[str] = "allen_cahn"

    def __check_init__(self):
        check_coefficient(self.name, "d", self.d, positive=True)

    def domain(self) -> Box:
        return Box(("x", "t"), (-1.0, 0.0), (1.0, 1.0), time="t")

    def conditions(self):
        return (
            pde("residual", ("u", "u_t", "u_xx"),
                lambda d, c: d["u_t"] - self.d * d["u_xx"] - 5 * d["u"] + 5 * d["u"] ** 3),
            initial("initial", value=lambda c: c["x"] ** 2 * jnp.cos(jnp.pi * c["x"])),
            periodic("boundary", "x", derivatives=1),
        )

    def reference(self) -> Reference:
        from ..references import allen_cahn, cached_grid

        return cached_grid("allen_cahn", {**allen_cahn.STANDARD, "d": float(self.d)}, allen_cahn.solve)
