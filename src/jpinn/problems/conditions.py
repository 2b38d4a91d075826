"""Conditions: the named, weighted terms of a PINN loss.

A ``Condition`` has a name (its loss component's), a region (where its points lie,
``jpinn.problems.domain``), the derivative terms it reads (``u``, ``u_x``, ``v_yy``,
``lap_u``: ``jpinn.derivatives``), a residual function of them and a weight. Its loss
component is ``weight x sum over its parts of (sum of squares over the points) / n``:

    residual(d, c) -> array (n,) or tuple of arrays (its parts)

where ``d`` maps each term to its values at the points and ``c`` maps each coordinate name
to the points' coordinates (and ``"values"`` to an observation set's values ``(n, k)``).
For a ``PeriodicPair`` region ``d`` is a pair ``(terms at the lower face, terms at the
upper face)``. The constructors below build the usual kinds.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp

from .domain import Boundary, Box, Initial, Interior, PeriodicPair, Points, Region

Residual = Callable[..., object]


class Condition(eqx.Module):
    """One named loss term (module docstring). ``weight`` multiplies its mean of squares."""

    name: str = eqx.field(static=True)
    where: Region  # not static: a user point set holds arrays (read on the host only)
    terms: tuple[str, ...] = eqx.field(static=True)
    residual: Residual = eqx.field(static=True)
    weight: float = 1.0

    def __check_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"condition: name must be an identifier, got {self.name!r}")
        if not isinstance(self.where, Region):
            raise ValueError(f"condition {self.name}: where must be a region (Interior(), Boundary(), ...), got {self.where!r}")
        if not isinstance(self.terms, tuple) or not all(isinstance(t, str) for t in self.terms):
            raise ValueError(f"condition {self.name}: terms must be a tuple of term names, got {self.terms!r}")
        if not callable(self.residual):
            raise ValueError(f"condition {self.name}: residual must be a function of (terms, coordinates)")


def _value(value, c):
    return value(c) if callable(value) else value


def pde(name: str, terms: tuple[str, ...], residual: Residual, *, where: Region | None = None, weight: float = 1.0) -> Condition:
    """A PDE residual at interior points (or at ``where``)."""
    return Condition(name, where if where is not None else Interior(), tuple(terms), residual, weight)


def dirichlet(name: str, field: str = "u", value=0.0, *, where: Region | None = None, weight: float = 1.0) -> Condition:
    """``field = value`` on the boundary (or on ``where``); ``value`` a number or a function of
    the coordinates dict."""
    return Condition(name, where if where is not None else Boundary(), (field,),
                     lambda d, c: d[field] - _value(value, c), weight)


def initial(name: str, field: str = "u", value=0.0, *, weight: float = 1.0) -> Condition:
    """``field(., t0) = value`` on the initial slice."""
    return Condition(name, Initial(), (field,), lambda d, c: d[field] - _value(value, c), weight)


def initial_derivative(name: str, time: str = "t", field: str = "u", value=0.0, *, weight: float = 1.0) -> Condition:
    """``d field / d time (., t0) = value`` on the initial slice."""
    term = f"{field}_{time}"
    return Condition(name, Initial(), (term,), lambda d, c: d[term] - _value(value, c), weight)


def neumann(name: str, box: Box, field: str = "u", value=0.0, *, where: Boundary | None = None,
            weight: float = 1.0) -> Condition:
    """The outward normal derivative ``n . grad field = value`` on box faces (all spatial faces,
    or those of ``where``). The normal of a point is read from which face it lies on: +e_i on
    x_i = upper, -e_i on x_i = lower (a corner point gets the sum of its faces' normals)."""
    where = where if where is not None else Boundary()
    faces = where.faces if where.faces is not None else box.faces()
    coordinates = sorted({coordinate for coordinate, _ in faces}, key=box.index)
    terms = tuple(f"{field}_{coordinate}" for coordinate in coordinates)

    def residual(d, c):
        flux = 0.0
        for coordinate, term in zip(coordinates, terms):
            i = box.index(coordinate)
            x = c[coordinate]
            normal = jnp.where(x == box.upper[i], 1.0, 0.0) - jnp.where(x == box.lower[i], 1.0, 0.0)
            flux = flux + normal.astype(x.dtype) * d[term]
        return flux - _value(value, c)

    return Condition(name, where, terms, residual, weight)


def periodic(name: str, coordinate: str, fields: tuple[str, ...] = ("u",), *, derivatives: int = 0,
             weight: float = 1.0) -> Condition:
    """``field(upper) = field(lower)`` along ``coordinate`` for each field, and with
    ``derivatives=1`` also the first derivative along it (a smooth periodic solution)."""
    if derivatives not in (0, 1):
        raise ValueError(f"condition {name}: derivatives must be 0 or 1, got {derivatives!r}")
    terms = tuple(fields) + (tuple(f"{f}_{coordinate}" for f in fields) if derivatives else ())
    return Condition(name, PeriodicPair(coordinate), terms,
                     lambda d, c: tuple(d[1][t] - d[0][t] for t in terms), weight)


def observations(name: str, points, values, fields: tuple[str, ...] = ("u",), *, weight: float = 1.0) -> Condition:
    """Data: ``field(points[i]) = values[i, k]`` for each of ``fields`` (values ``(n, len(fields))``
    or ``(n,)`` for one field). The basis of inverse problems."""
    fields = tuple(fields)
    return Condition(name, Points(points, values), fields,
                     lambda d, c: tuple(d[f] - c["values"][:, k] for k, f in enumerate(fields)), weight)


__all__ = ["Condition", "dirichlet", "initial", "initial_derivative", "neumann", "observations", "pde", "periodic"]
