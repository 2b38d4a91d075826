"""Domains, the regions of a domain that conditions live on, and point samplers.

A ``Box`` is a product of named intervals, e.g. ``Box(("x", "y"), (0, 0), (1, 1))`` or a
space x time box ``Box(("x", "t"), (0, 0), (2 pi, 1), time="t")``. Regions:

- ``Interior()``: the open box;
- ``Initial()``: the slice time = its lower bound (spatial coordinates over their box);
- ``Boundary()``: every face of the spatial coordinates (or the faces named), times the
  time interval; ``Face("x", "lower")`` is one face;
- ``PeriodicPair("x")``: points on the face x = lower, each paired with the same point
  moved to x = upper (periodic conditions compare the two);
- ``Points(points, values=None)`` or ``Points.from_npz(path)``: a user's own point set
  (geometries that are not boxes, observations with their values).

Samplers (``SAMPLERS``): ``uniform`` (independent uniform draws), ``sobol`` and ``halton``
(scrambled low-discrepancy sequences, ``scipy.stats.qmc``) and ``grid`` (a tensor grid;
interior grids leave out the boundary). The study's own grid sampler is ``jpinn.data``'s.
Every draw comes from NumPy generators seeded by ``(seed, the data stream's number, the
condition's index)``, so a seed gives the same points on every machine and each condition
its own independent points.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import equinox as eqx
import numpy as np

SAMPLERS = ("uniform", "sobol", "halton", "grid")
SIDES = ("lower", "upper")


class Box(eqx.Module):
    """The box ``lower[i] <= coordinates[i] <= upper[i]``; ``time`` names the time coordinate."""

    coordinates: tuple[str, ...] = eqx.field(static=True)
    lower: tuple[float, ...] = eqx.field(static=True)
    upper: tuple[float, ...] = eqx.field(static=True)
    time: str | None = eqx.field(static=True, default=None)

    def __init__(self, coordinates, lower, upper, time=None):
        self.coordinates = tuple(coordinates)
        self.lower = tuple(float(v) for v in lower)
        self.upper = tuple(float(v) for v in upper)
        self.time = time

    def __check_init__(self):
        d = len(self.coordinates)
        if len(self.lower) != d or len(self.upper) != d:
            raise ValueError(f"domain: {d} coordinates need {d} lower and upper bounds, got {self.lower}, {self.upper}")
        for name, lo, hi in zip(self.coordinates, self.lower, self.upper):
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"domain: coordinate {name!r} needs finite bounds lower < upper, got [{lo}, {hi}]")
        if self.time is not None and self.time not in self.coordinates:
            raise ValueError(f"domain: time coordinate {self.time!r} is not among {', '.join(self.coordinates)}")

    @property
    def space(self) -> tuple[str, ...]:
        return tuple(c for c in self.coordinates if c != self.time)

    def index(self, coordinate: str) -> int:
        if coordinate not in self.coordinates:
            raise ValueError(f"domain: unknown coordinate {coordinate!r}; allowed: {', '.join(self.coordinates)}")
        return self.coordinates.index(coordinate)

    def faces(self) -> tuple[tuple[str, str], ...]:
        """Every spatial face as ``(coordinate, side)``."""
        return tuple((c, side) for c in self.space for side in SIDES)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.lower), np.asarray(self.upper)


class Region(eqx.Module):
    """Where a condition's points lie (abstract)."""


class Interior(Region):
    """The open box."""


class Initial(Region):
    """The slice where the time coordinate is at its lower bound."""


class Boundary(Region):
    """Faces of the spatial coordinates (all of them when ``faces`` is None)."""

    faces: tuple[tuple[str, str], ...] | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        for face in self.faces or ():
            if not (isinstance(face, tuple) and len(face) == 2 and face[1] in SIDES):
                raise ValueError(f"boundary: a face is (coordinate, 'lower' or 'upper'), got {face!r}")


def Face(coordinate: str, side: str) -> Boundary:  # noqa: N802 - reads as a region
    """The one face ``coordinate = lower`` or ``= upper``."""
    if side not in SIDES:
        raise ValueError(f"face {coordinate!r}: side must be lower or upper, got {side!r}")
    return Boundary(((coordinate, side),))


class PeriodicPair(Region):
    """Points on ``coordinate = lower`` paired with the same points at ``coordinate = upper``."""

    coordinate: str = eqx.field(static=True)


class Points(Region):
    """A user's point set: ``points`` ``(n, d)`` in the problem's coordinate order, and for
    observations their ``values`` ``(n, fields)`` (or ``(n,)`` for one field).

    The arrays are only read on the host, when the points are drawn (``checked``); inside
    the compiled loss a condition's points and values come from its ``PointSet``."""

    points: object
    values: object = None

    def checked(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The arrays as float64 NumPy, values as ``(n, k)``; a one-line ValueError if malformed."""
        points = np.asarray(self.points, dtype=np.float64)
        values = None if self.values is None else np.asarray(self.values, dtype=np.float64)
        if values is not None and values.ndim == 1:
            values = values[:, None]
        if points.ndim != 2 or points.shape[0] < 1:
            raise ValueError(f"points: must be an (n, d) array with n >= 1, got shape {points.shape}")
        if not np.all(np.isfinite(points)):
            raise ValueError("points: must be finite")
        if values is not None:
            if values.ndim != 2 or values.shape[0] != points.shape[0]:
                raise ValueError(f"points: values of shape {values.shape} do not match {points.shape[0]} points")
            if not np.all(np.isfinite(values)):
                raise ValueError("points: values must be finite")
        return points, values

    @classmethod
    def from_npz(cls, path: str | Path, points: str = "points", values: str | None = "values") -> Points:
        """The arrays ``points`` (and ``values`` if the file has it) of an npz file."""
        path = Path(path)
        try:
            with np.load(path) as data:
                if points not in data:
                    raise ValueError(f"{path}: no array {points!r}; it holds {', '.join(data.files)}")
                vals = data[values] if values is not None and values in data else None
                return cls(data[points], vals)
        except (OSError, ValueError) as error:
            message = str(error).splitlines()[0]
            raise ValueError(message if str(path) in message else f"{path}: {message}") from None


def check_sampler(sampler: str) -> str:
    if sampler not in SAMPLERS:
        raise ValueError(f"data.sampler: unknown sampler {sampler!r}; allowed: {', '.join(SAMPLERS)}")
    return sampler


def _unit(sampler: str, n: int, m: int, generator: np.random.Generator, interior: bool) -> np.ndarray:
    """``n`` points (or a grid) in the unit cube [0, 1]^m."""
    if m == 0:
        return np.zeros((1, 0))
    if sampler == "uniform":
        return generator.random((n, m))
    if sampler in ("sobol", "halton"):
        from scipy.stats import qmc

        engine = (qmc.Sobol if sampler == "sobol" else qmc.Halton)(d=m, scramble=True, seed=generator)
        with warnings.catch_warnings():  # Sobol's balance warning for n not a power of two
            warnings.simplefilter("ignore", UserWarning)
            return engine.random(n)
    per_axis = max(1, round(n ** (1 / m)))
    axis = np.linspace(0, 1, per_axis + 2)[1:-1] if interior else np.linspace(0, 1, max(per_axis, 2))
    mesh = np.meshgrid(*([axis] * m), indexing="ij")
    return np.stack([a.ravel() for a in mesh], axis=1)


def _in_box(box: Box, free: list[int], fixed: dict[int, float], unit: np.ndarray) -> np.ndarray:
    lower, upper = box.bounds()
    out = np.empty((unit.shape[0], len(box.coordinates)))
    for k, i in enumerate(free):
        out[:, i] = lower[i] + (upper[i] - lower[i]) * unit[:, k]
    for i, value in fixed.items():
        out[:, i] = value
    return out


def _split(n: int, weights: list[float]) -> list[int]:
    # n points over parts in proportion to weights, largest remainders first, each part >= 1
    total = sum(weights)
    exact = [n * w / total for w in weights]
    counts = [max(1, math.floor(e)) for e in exact]
    order = sorted(range(len(weights)), key=lambda k: exact[k] - math.floor(exact[k]), reverse=True)
    for k in order[: max(0, n - sum(counts))]:
        counts[k] += 1
    return counts


def sample_region(box: Box, region: Region, n: int, sampler: str, generator: np.random.Generator):
    """``(points, partner)`` of ``region``: float64 arrays ``(m, d)``; ``partner`` is the
    paired points of a ``PeriodicPair`` (else None). Grids give about ``n`` points (the
    nearest full grid); a 0-dimensional region (a face of a 1-D box) is one point."""
    d = len(box.coordinates)
    lower, upper = box.bounds()
    everything = list(range(d))
    if isinstance(region, Interior):
        return _in_box(box, everything, {}, _unit(sampler, n, d, generator, True)), None
    if isinstance(region, Initial):
        if box.time is None:
            raise ValueError("an initial condition needs a domain with a time coordinate")
        t = box.index(box.time)
        free = [i for i in everything if i != t]
        return _in_box(box, free, {t: lower[t]}, _unit(sampler, n, len(free), generator, False)), None
    if isinstance(region, PeriodicPair):
        c = box.index(region.coordinate)
        free = [i for i in everything if i != c]
        points = _in_box(box, free, {c: lower[c]}, _unit(sampler, n, len(free), generator, False))
        partner = points.copy()
        partner[:, c] = upper[c]
        return points, partner
    if isinstance(region, Boundary):
        faces = region.faces if region.faces is not None else box.faces()
        if not faces:
            raise ValueError("a boundary condition needs a spatial coordinate")
        sizes = []
        for coordinate, _ in faces:
            c = box.index(coordinate)
            sizes.append(math.prod(upper[i] - lower[i] for i in everything if i != c))
        parts = []
        for (coordinate, side), count in zip(faces, _split(n, sizes)):
            c = box.index(coordinate)
            free = [i for i in everything if i != c]
            value = lower[c] if side == "lower" else upper[c]
            parts.append(_in_box(box, free, {c: value}, _unit(sampler, count, len(free), generator, False)))
        return np.concatenate(parts), None
    if isinstance(region, Points):
        points, _ = region.checked()
        if points.shape[1] != d:
            raise ValueError(f"points: {points.shape[1]} columns, the domain has {d} coordinates ({', '.join(box.coordinates)})")
        return points, None
    raise ValueError(f"unknown region {type(region).__name__}")


__all__ = ["Box", "Boundary", "Face", "Initial", "Interior", "PeriodicPair", "Points", "Region", "SAMPLERS",
           "check_sampler", "sample_region"]
