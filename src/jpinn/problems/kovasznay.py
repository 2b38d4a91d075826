"""Kovasznay flow: steady incompressible Navier-Stokes in 2-D, three fields u, v, p.

    u u_x + v u_y + p_x - (u_xx + u_yy) / Re = 0
    u v_x + v v_y + p_y - (v_xx + v_yy) / Re = 0
    u_x + v_y = 0

on [-0.5, 1] x [-0.5, 1.5] with, for l = Re/2 - sqrt(Re^2/4 + 4 pi^2),

    u = 1 - e^{l x} cos(2 pi y),  v = l / (2 pi) e^{l x} sin(2 pi y),  p = (1 - e^{2 l x}) / 2.

u and v are prescribed on the whole boundary; the pressure, fixed only up to a constant by
the equations, is prescribed on the outflow edge x = 1 (as in DeepXDE's example).
"""

from __future__ import annotations

import math
from typing import ClassVar

import jax.numpy as jnp

from ._base import AbstractProblem, check_coefficient
from .conditions import dirichlet, pde
from .domain import Box, Face


class Kovasznay(AbstractProblem):
    """Reynolds number ``Re`` (> 0; the usual setting: 20)."""

    Re: float = 20.0

    name: ClassVar[str] = "kovasznay"
    fields: ClassVar[tuple[str, ...]] = ("u", "v", "p")

    def __check_init__(self):
        check_coefficient(self.name, "Re", self.Re, positive=True)

    def domain(self) -> Box:
        return Box(("x", "y"), (-0.5, -0.5), (1.0, 1.5))

    def _lambda(self):
        return self.Re / 2 - jnp.sqrt(self.Re**2 / 4 + 4 * math.pi**2)

    def exact(self, c):
        lam = self._lambda()
        x, y = c["x"], c["y"]
        growth = jnp.exp(lam * x)
        return {
            "u": 1 - growth * jnp.cos(2 * jnp.pi * y),
            "v": lam / (2 * jnp.pi) * growth * jnp.sin(2 * jnp.pi * y),
            "p": 0.5 * (1 - jnp.exp(2 * lam * x)),
        }

    def conditions(self):
        nu = 1 / self.Re

        def momentum_x(d, c):
            return d["u"] * d["u_x"] + d["v"] * d["u_y"] + d["p_x"] - nu * d["lap_u"]

        def momentum_y(d, c):
            return d["u"] * d["v_x"] + d["v"] * d["v_y"] + d["p_y"] - nu * d["lap_v"]

        return (
            pde("momentum_x", ("u", "v", "u_x", "u_y", "p_x", "lap_u"), momentum_x),
            pde("momentum_y", ("u", "v", "v_x", "v_y", "p_y", "lap_v"), momentum_y),
            pde("continuity", ("u_x", "v_y"), lambda d, c: d["u_x"] + d["v_y"]),
            dirichlet("boundary_u", "u", lambda c: self.exact(c)["u"]),
            dirichlet("boundary_v", "v", lambda c: self.exact(c)["v"]),
            dirichlet("outflow_p", "p", lambda c: self.exact(c)["p"], where=Face("x", "upper")),
        )
