"""Reaction-diffusion: u_t - nu u_xx - rho u (1 - u) = 0 on [0, 2 pi] x [0, 1], periodic,
u(x, 0) = exp(-(x - pi)^2 / (2 (pi/4)^2)): the companion code's ``reaction_diffusion``
system, on the study's grid (``data=study``) with the study's three terms. Defaults
nu = 3, rho = 5.

``reference`` chooses the test set: ``converged`` (the default: jpinn's Fourier ETDRK4
solution, ``jpinn.references.reaction_diffusion.solve``) or ``companion`` (the companion
code's one-step splitting on its 256 x 100 grid, which its published errors were measured
against; 6.5e-3 from the converged one at the defaults).
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp

from ._base import Reference, check_coefficient
from ._study import AbstractPeriodicStudyProblem

REFERENCES = ("converged", "companion")


def _h(x):
    return jnp.exp(-((x - jnp.pi) ** 2) / (2 * (jnp.pi / 4) ** 2))


class ReactionDiffusion(AbstractPeriodicStudyProblem):
    """Diffusion ``nu`` (>= 0) and logistic growth ``rho``; ``reference`` converged or
    companion (module docstring)."""

    nu: float = 3.0
    rho: float = 5.0
    reference_kind: str = "converged"

    name: ClassVar[str] = "reaction_diffusion"
    residual_terms: ClassVar[tuple[str, ...]] = ("u", "u_t", "u_xx")
    initial_terms: ClassVar[tuple[str, ...]] = ("u",)

    def __check_init__(self):
        check_coefficient(self.name, "nu", self.nu)
        if isinstance(self.nu, (int, float)) and self.nu < 0:
            raise ValueError(f"pde.nu: must be >= 0, got {self.nu!r} ({self.name})")
        check_coefficient(self.name, "rho", self.rho)
        if self.reference_kind not in REFERENCES:
            raise ValueError(f"pde.reference_kind: unknown {self.reference_kind!r}; allowed: {', '.join(REFERENCES)}")

    def residual(self, d, c):
        u = d["u"]
        return d["u_t"] - self.nu * d["u_xx"] - self.rho * u * (1 - u)

    def initial_residuals(self, d, c):
        return (d["u"] - _h(c["x"]),)

    def reference(self) -> Reference:
        from ..references import cached_grid, reaction_diffusion

        coefficients = {"nu": float(self.nu), "rho": float(self.rho)}
        if self.reference_kind == "companion":
            return cached_grid("reaction_diffusion_companion", {**coefficients, "nx": 256, "nt": 100},
                               reaction_diffusion.companion)
        return cached_grid("reaction_diffusion", {**reaction_diffusion.STANDARD, **coefficients}, reaction_diffusion.solve)
