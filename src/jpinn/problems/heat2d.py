"""2-D heat with a source: u_t = kappa (u_xx + u_yy) + 1 on [0, 1]^2 x [0, 1], u = 0 on the
boundary and at t = 0, kappa = 0.1 by default. The source is 1 inside and the boundary is
held at 0, so there is no closed form.

The reference is the sine series, exact in time (``jpinn.references.heat2d``), on
65 x 65 x 21 points, cached in the user's cache folder.
"""

from __future__ import annotations

from typing import ClassVar

from ._base import AbstractProblem, Reference, check_coefficient
from .conditions import dirichlet, initial, pde
from .domain import Box


class HeatSource2D(AbstractProblem):
    """Heat in the unit square with a unit source and diffusivity ``kappa`` (> 0)."""

    kappa: float = 0.1

    name: ClassVar[str] = "heat2d_source"

    def __check_init__(self):
        check_coefficient(self.name, "kappa", self.kappa, positive=True)

    def domain(self) -> Box:
        return Box(("x", "y", "t"), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), time="t")

    def conditions(self):
        return (
            pde("residual", ("u_t", "lap_u"), lambda d, c: d["u_t"] - self.kappa * d["lap_u"] - 1.0),
            initial("initial"),
            dirichlet("boundary"),
        )

    def reference(self) -> Reference:
        from ..references import cached_grid, heat2d

        return cached_grid("heat2d_source", {**heat2d.STANDARD, "kappa": float(self.kappa)}, heat2d.solve,
                           ("x", "y", "t"))
