"""What the study's three problems share: 1-D space x time boxes, and the three loss terms
``residual`` (interior), ``initial`` (t = 0) and ``boundary`` (the two ends x_min and x_max,
as a pair), each the sum of its parts' mean squares (PAPER.md section 2)."""

from __future__ import annotations

import abc
import math
from typing import ClassVar

from ._base import AbstractProblem
from .conditions import Condition
from .domain import Box, Initial, Interior, PeriodicPair


class AbstractStudyProblem(AbstractProblem):
    """A time-dependent PDE on ``[x_min, x_max] x [0, 1]`` written as the study wrote it:
    subclasses give ``residual(d, c)``, ``initial_residuals(d, c)`` and
    ``boundary_residuals(left, right, c)`` and the terms each reads."""

    t_min: ClassVar[float] = 0.0
    t_max: ClassVar[float] = 1.0

    @property
    @abc.abstractmethod
    def x_min(self) -> float: ...

    @property
    @abc.abstractmethod
    def x_max(self) -> float: ...

    residual_terms: ClassVar[tuple[str, ...]]
    initial_terms: ClassVar[tuple[str, ...]]
    boundary_terms: ClassVar[tuple[str, ...]] = ("u",)

    def domain(self) -> Box:
        return Box(("x", "t"), (self.x_min, self.t_min), (self.x_max, self.t_max), time="t")

    @abc.abstractmethod
    def residual(self, d, c): ...

    @abc.abstractmethod
    def initial_residuals(self, d, c) -> tuple: ...

    @abc.abstractmethod
    def boundary_residuals(self, left, right, c) -> tuple: ...

    def conditions(self) -> tuple[Condition, ...]:
        return (
            Condition("residual", Interior(), self.residual_terms, self.residual),
            Condition("initial", Initial(), self.initial_terms, self.initial_residuals),
            Condition("boundary", PeriodicPair("x"), self.boundary_terms,
                      lambda d, c: self.boundary_residuals(d[0], d[1], c)),
        )


class AbstractPeriodicStudyProblem(AbstractStudyProblem):
    """A problem on [0, 2 pi] with the periodic boundary term u(2 pi, t) - u(0, t)
    (convection and reaction; the companion code's form of the condition)."""

    @property
    def x_min(self) -> float:
        return 0.0

    @property
    def x_max(self) -> float:
        return 2 * math.pi

    def boundary_residuals(self, left, right, c):
        return (right["u"] - left["u"],)
