"""The problem interface: a domain, named fields, conditions and (optionally) a reference.

A problem is a frozen ``eqx.Module`` whose fields are its coefficients (what a config
sets). It says *what* the loss is, never how derivatives are computed:

- ``domain()``: a ``Box`` of named coordinates (``jpinn.problems.domain``);
- ``fields``: the names of the network's outputs (``("u",)``, ``("u", "v", "p")``);
- ``conditions()``: the named, weighted loss terms (``jpinn.problems.conditions``), in the
  order their components are added;
- ``exact(c)``: the closed-form solution, a dict field -> values from the coordinates dict
  ``c`` (or one array for one field); ``reference()``: reference data instead of a closed
  form (``Reference``); neither: the run reports no error.

A run's ``loss.weights`` (condition name -> weight) overrides the conditions' own weights.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import Any, ClassVar

import equinox as eqx
import numpy as np
from jaxtyping import Array, Float

from ..derivatives import Variables
from .conditions import Condition
from .domain import Box

Terms = dict[str, Float[Array, " n"]]


def check_coefficient(problem: str, field: str, value, *, positive: bool = False) -> None:
    """Raise a one-line ValueError unless ``value`` is a finite real (and > 0 if asked)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if hasattr(value, "shape") and hasattr(value, "dtype"):  # an ensemble's stacked or traced value
            return
        raise ValueError(f"pde.{field}: must be a number, got {value!r} ({problem})")
    if not math.isfinite(value):
        raise ValueError(f"pde.{field}: must be finite, got {value!r} ({problem})")
    if positive and value <= 0:
        raise ValueError(f"pde.{field}: must be > 0, got {value!r} ({problem})")


class Reference(eqx.Module):
    """Reference values of the fields at points: ``points`` ``(n, d)``, ``values`` ``(n, k)``
    (float64 NumPy, host side). ``from_npz`` reads ``points`` and ``values`` arrays, or a
    grid: one 1-D array per coordinate (named as the coordinates) and one array per field
    on their ``ij`` mesh."""

    points: np.ndarray
    values: np.ndarray

    @classmethod
    def from_npz(cls, path, coordinates: tuple[str, ...], fields: tuple[str, ...]) -> Reference:
        try:
            with np.load(path) as data:
                if "points" in data:
                    values = data["values"] if "values" in data else None
                    if values is None:
                        raise ValueError(f"{path}: has points but no values array")
                    values = values[:, None] if values.ndim == 1 else values
                    return cls(np.asarray(data["points"], np.float64), np.asarray(values, np.float64))
                missing = [n for n in (*coordinates, *fields) if n not in data]
                if missing:
                    raise ValueError(f"{path}: needs points and values, or the grid arrays {', '.join((*coordinates, *fields))};"
                                     f" missing {', '.join(missing)}")
                return cls.from_grid([data[c] for c in coordinates], [data[f] for f in fields], where=str(path))
        except OSError as error:
            raise ValueError(f"{path}: cannot read reference data ({str(error).splitlines()[0]})") from None

    @classmethod
    def from_grid(cls, axes, fields, *, where: str = "reference") -> Reference:
        """From one 1-D array per coordinate (in the problem's coordinate order) and one
        array per field on their ``ij`` mesh."""
        mesh = np.meshgrid(*(np.asarray(a, np.float64) for a in axes), indexing="ij")
        points = np.stack([m.ravel() for m in mesh], axis=1)
        if any(np.size(f) != mesh[0].size for f in fields):
            raise ValueError(f"{where}: the field arrays do not have the grid's shape {mesh[0].shape}")
        values = np.stack([np.asarray(f, np.float64).ravel() for f in fields], axis=1)
        return cls(points, values)


class AbstractProblem(eqx.Module):
    """A PINN problem (module docstring). Subclasses set ``name`` and ``fields`` and define
    ``domain`` and ``conditions``; ``exact`` or ``reference`` when a reference exists."""

    name: ClassVar[str]
    fields: ClassVar[tuple[str, ...]] = ("u",)
    # coefficients a run may learn with the network (``loss.learn``): name -> "log" (positive,
    # learned as its log) or "linear"
    learnable: ClassVar[dict[str, str]] = {}

    @abc.abstractmethod
    def domain(self) -> Box: ...

    @abc.abstractmethod
    def conditions(self) -> tuple[Condition, ...]: ...

    def exact(self, c: dict[str, Float[Array, " n"]]):
        """The closed-form solution at the coordinates ``c``; None: there is none."""
        return None

    def reference(self) -> Reference | None:
        """Reference data when there is no closed form; None by default."""
        return None

    def true_coefficients(self) -> dict[str, float]:
        """The values learned coefficients are compared with, where known (synthetic data)."""
        return {}

    @property
    def has_exact(self) -> bool:
        return type(self).exact is not AbstractProblem.exact

    @property
    def variables(self) -> Variables:
        box = self.domain()
        return Variables(box.coordinates, tuple(self.fields), box.time)

    def weighted_conditions(self, weights: dict[str, float] | None = None) -> tuple[Condition, ...]:
        """``conditions()`` with the weights of ``weights`` (condition name -> weight) in
        place of their own (``loss.weights`` in a config)."""
        conditions = tuple(self.conditions())
        weights = weights or {}
        return tuple(dataclasses.replace(c, weight=weights[c.name]) if c.name in weights else c for c in conditions)

    def coefficients(self) -> dict[str, Any]:
        """The problem's fields, by name (what a config sets)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def exact_fields(problem: AbstractProblem, points) -> Any:
    """The closed-form fields at ``points`` ``(n, d)`` as an ``(n, k)`` array (None without one)."""
    import jax.numpy as jnp

    c = dict(zip(problem.domain().coordinates, (points[:, i] for i in range(points.shape[1]))))
    value = problem.exact(c)
    if value is None:
        return None
    if isinstance(value, dict):
        missing = [f for f in problem.fields if f not in value]
        if missing:
            raise ValueError(f"{problem.name}: exact() gives no {', '.join(missing)}")
        return jnp.stack([jnp.broadcast_to(value[f], points.shape[:1]) for f in problem.fields], axis=1)
    value = jnp.asarray(value)
    return jnp.broadcast_to(value, points.shape[:1])[:, None] if value.ndim <= 1 else value


def check_problem(problem: AbstractProblem, weights: dict[str, float] | None = None) -> None:
    """Structure checks one line each: variables, the domain's coordinates, unique condition
    names, ``weights`` (``loss.weights``) naming conditions, and every condition's terms
    written in the problem's names."""
    box = problem.domain()
    if not isinstance(box, Box):
        raise ValueError(f"{problem.name}: domain() must return a Box, got {type(box).__name__}")
    variables = problem.variables
    conditions = problem.weighted_conditions()
    if not conditions:
        raise ValueError(f"{problem.name}: conditions() is empty; a problem needs at least one condition")
    names = [c.name for c in conditions]
    if len(set(names)) != len(names):
        raise ValueError(f"{problem.name}: condition names repeat: {', '.join(names)}")
    weights = weights or {}
    if not isinstance(weights, dict):
        raise ValueError(f"loss.weights: must be a mapping condition -> weight, got {weights!r}")
    for key, value in weights.items():
        if key not in names:
            raise ValueError(f"loss.weights.{key}: not a condition of {problem.name}; allowed: {', '.join(names)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value < math.inf):
            raise ValueError(f"loss.weights.{key}: must be a finite number >= 0, got {value!r}")
    for condition in conditions:
        w = condition.weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not (0 <= w < math.inf):
            raise ValueError(f"{problem.name}: condition {condition.name}: weight must be a finite number >= 0, got {w!r}")
    for condition in conditions:
        for term in condition.terms:
            try:
                variables.parse(term)
            except ValueError as error:
                raise ValueError(f"{problem.name}: condition {condition.name}: {error}") from None


__all__ = ["AbstractProblem", "Reference", "Terms", "check_coefficient", "check_problem", "exact_fields"]
