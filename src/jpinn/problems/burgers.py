"""Burgers 1-D: u_t + u u_x = nu u_xx on [-1, 1] x [0, 1], u(x, 0) = -sin(pi x),
u(-1, t) = u(1, t) = 0, nu = 0.01 / pi by default: the standard setting (Raissi et al.
2019; PINNacle's Burgers 1-D). A shock forms at x = 0.

The reference is jpinn's Cole-Hopf solution with Gauss-Hermite quadrature
(``jpinn.references.burgers``) on 256 x 101 points, cached in the user's cache folder.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from ._base import AbstractProblem, Reference, check_coefficient
from .conditions import dirichlet, initial, observations, pde
from .domain import Box


class Burgers(AbstractProblem):
    """Viscous Burgers with viscosity ``nu`` (> 0; module docstring)."""

    nu: float = 0.01 / 3.141592653589793

    name: ClassVar[str] = "burgers"

    def __check_init__(self):
        check_coefficient(self.name, "nu", self.nu, positive=True)

    def domain(self) -> Box:
        return Box(("x", "t"), (-1.0, 0.0), (1.0, 1.0), time="t")

    def conditions(self):
        return (
            pde("residual", ("u", "u_t", "u_x", "u_xx"),
                lambda d, c: d["u_t"] + d["u"] * d["u_x"] - self.nu * d["u_xx"]),
            initial("initial", value=lambda c: -jnp.sin(jnp.pi * c["x"])),
            dirichlet("boundary"),
        )

    def reference(self) -> Reference:
        from ..references import burgers, cached_grid

        params = {"nu": float(self.nu), "nx": 256, "nt": 101, "nodes": burgers.DEFAULT_NODES}
        return cached_grid("burgers", params, burgers.standard)


@functools.lru_cache(maxsize=16)
def _observations(nu: float, n: int, noise: float, seed: int):
    from ..references import burgers

    rng = np.random.default_rng(seed)
    points = np.column_stack([rng.uniform(-1.0, 1.0, n), rng.uniform(0.0, 1.0, n)])
    clean = burgers.cole_hopf_at(*burgers.standard_initial(nu), points[:, 0], points[:, 1], nu)
    points.flags.writeable = False
    values = clean + noise * rng.standard_normal(n)
    values.flags.writeable = False
    return points, values


class BurgersInverse(Burgers):
    """The inverse problem: nu learned from ``n_observations`` noisy values of the solution
    at ``nu_true`` (Cole-Hopf at random points of a fixed seed, plus Gaussian noise of
    standard deviation ``noise``), with the PDE, initial and boundary terms. ``nu`` is the
    starting value when it is learned (``loss.learn=[nu]``, in log space); the run reports
    the learned value and its error against ``nu_true``. The reference (test set) is the
    solution at ``nu_true``."""

    nu: float = 0.01
    nu_true: float = 0.01 / 3.141592653589793
    n_observations: int = 100
    noise: float = 0.01
    observation_seed: int = 0

    name: ClassVar[str] = "burgers_inverse"
    learnable: ClassVar[dict[str, str]] = {"nu": "log"}

    def __check_init__(self):
        check_coefficient(self.name, "nu_true", self.nu_true, positive=True)
        check_coefficient(self.name, "noise", self.noise)
        if isinstance(self.noise, (int, float)) and self.noise < 0:
            raise ValueError(f"pde.noise: must be >= 0, got {self.noise!r} ({self.name})")
        for field in ("n_observations", "observation_seed"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if field == "n_observations" else 0):
                raise ValueError(f"pde.{field}: must be an integer >= {1 if field == 'n_observations' else 0}, "
                                 f"got {value!r} ({self.name})")

    def observed(self):
        """The observation points ``(n, 2)`` and noisy values ``(n,)`` (NumPy, float64)."""
        return _observations(float(self.nu_true), self.n_observations, float(self.noise), self.observation_seed)

    def conditions(self):
        points, values = self.observed()
        return (*super().conditions(), observations("data", points, values))

    def true_coefficients(self) -> dict[str, float]:
        return {"nu": float(self.nu_true)}

    def reference(self) -> Reference:
        return Burgers(nu=self.nu_true).reference()
