"""The PDE interface: what a problem must define so that ``jpinn.loss`` can build its loss."""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import ClassVar

import equinox as eqx
from jaxtyping import Array, Float

Terms = dict[str, Float[Array, " n"]]


class AbstractPDE(eqx.Module):
    """A time-dependent PDE on ``[x_min, x_max] x [0, 1]``.

    Subclasses hold their coefficients as fields and say which derivative terms each part
    of the loss needs; ``jpinn.derivatives`` computes those terms, so a PDE never picks a
    differentiation method. Each ``*_residuals`` method returns a tuple of per-point
    residual arrays; the loss takes the mean of squares of each and adds them.
    """

    name: ClassVar[str]
    residual_terms: ClassVar[tuple[str, ...]]
    initial_terms: ClassVar[tuple[str, ...]]
    boundary_terms: ClassVar[tuple[str, ...]] = ("u",)
    t_min: ClassVar[float] = 0.0
    t_max: ClassVar[float] = 1.0

    @property
    @abc.abstractmethod
    def x_min(self) -> float: ...

    @property
    @abc.abstractmethod
    def x_max(self) -> float: ...

    @abc.abstractmethod
    def residual(self, d: Terms, x: Float[Array, " n"], t: Float[Array, " n"]) -> Float[Array, " n"]:
        """PDE residual at interior points, from the terms named in ``residual_terms``."""

    @abc.abstractmethod
    def initial_residuals(self, d: Terms, x: Float[Array, " n"]) -> tuple[Float[Array, " n"], ...]:
        """Residuals of the initial condition(s) at t = 0."""

    @abc.abstractmethod
    def boundary_residuals(
        self, left: Terms, right: Terms, t: Float[Array, " n"]
    ) -> tuple[Float[Array, " n"], ...]:
        """Residuals of the boundary condition from the terms at x_min and at x_max."""

    @abc.abstractmethod
    def exact(self, x: Float[Array, "..."], t: Float[Array, "..."]) -> Float[Array, "..."]:
        """The exact solution, elementwise."""

    def coefficients(self) -> dict[str, float]:
        """The PDE's coefficients, by name (what a config sets)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def check_coefficient(pde: str, field: str, value, *, positive: bool = False) -> None:
    """Raise a one-line ValueError unless ``value`` is a finite real (and > 0 if asked)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"pde.{field}: must be a number, got {value!r} ({pde})")
    if not math.isfinite(value):
        raise ValueError(f"pde.{field}: must be finite, got {value!r} ({pde})")
    if positive and value <= 0:
        raise ValueError(f"pde.{field}: must be > 0, got {value!r} ({pde})")


class AbstractPeriodicPDE(AbstractPDE):
    """A problem on [0, 2 pi] with the periodic boundary term u(2 pi, t) - u(0, t)
    (convection and reaction; the companion code's form of the condition)."""

    @property
    def x_min(self) -> float:
        return 0.0

    @property
    def x_max(self) -> float:
        return 2 * math.pi

    def boundary_residuals(self, left, right, t):
        return (right["u"] - left["u"],)
