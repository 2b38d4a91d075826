"""Training points of a problem's conditions, and test points (PAPER.md section 1).

Two samplers fill a ``Collocation`` (one ``PointSet`` per condition, by name):

- ``sample_collocation``: the study's grid sampler, bit for bit, for the study's problems
  (1-D space x time with the conditions residual, initial and boundary);
- ``sample_points``: any problem; each condition's region (``jpinn.problems.domain``) is
  sampled with ``uniform``, ``sobol``, ``halton`` or ``grid`` points, and user point sets
  (observations, non-box geometries) are used as given.

The study's grid sampler:

The grid is ``n_x`` equispaced x values (endpoints included) by ``n_t`` equispaced t values
in [0, 1]. Residual points are drawn without replacement from the interior
``x[1:-1] x t[1:]`` (t = 1 included, t = 0 excluded); the initial points are all x at
t = 0; the boundary points are all t at x_min and at x_max. The data are fixed for the
whole run.

Two draws of the residual points (``rng``): ``"jax"`` (the default) permutes the interior
with the run's ``data`` stream (``jpinn.rng``); ``"numpy"`` is the companion code's own
draw, ``np.random.seed(seed)`` then ``np.random.choice(n_interior, n_residual,
replace=False)`` on its mesh ``np.meshgrid(x[1:-1], t[1:])`` (t-major), so that a seed gives
exactly the companion code's points, in its order.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._registry import check_int
from .problems import AbstractProblem
from .problems.domain import Initial, Interior, PeriodicPair, Points, check_sampler, sample_region
from .rng import STREAMS, key as stream_key

# the two test sets of PAPER.md section 1: the paper text's full grid, the companion code's
TEST_SETS: dict[str, tuple[int, int]] = {"full": (257, 101), "companion": (129, 101)}
# the residual points' draw: jpinn's own stream, or the companion code's NumPy draw
RNGS = ("jax", "numpy")


class PointSet(eqx.Module):
    """One condition's points ``(n, d)``; ``partner``: the paired points of a periodic pair
    (``(n, d)``); ``values``: an observation set's values ``(n, k)``. Every array has the
    points along its leading axis (the loss splits them into blocks and over devices)."""

    points: Float[Array, "n d"]
    partner: Float[Array, "n d"] | None = None
    values: Float[Array, "n k"] | None = None

    def count(self) -> int:
        return int(self.points.shape[0]) * (1 if self.partner is None else 2)


class Collocation(eqx.Module):
    """The training points, one ``PointSet`` per condition name."""

    sets: dict[str, PointSet]

    def counts(self) -> dict[str, int]:
        return {name: s.count() for name, s in self.sets.items()}

    # the study's names for its three point sets
    @property
    def residual_points(self) -> Array:
        return self.sets["residual"].points

    @property
    def initial_points(self) -> Array:
        return self.sets["initial"].points

    @property
    def boundary_left(self) -> Array:
        return self.sets["boundary"].points

    @property
    def boundary_right(self) -> Array:
        return self.sets["boundary"].partner


def grid_axes(problem: AbstractProblem, n_x: int, n_t: int) -> tuple[np.ndarray, np.ndarray]:
    """The equispaced x and t axes of a 1-D space x time problem (float64, endpoints included)."""
    box = problem.domain()
    x = np.linspace(box.lower[0], box.upper[0], n_x)
    t = np.linspace(box.lower[1], box.upper[1], n_t)
    return x, t


def fits_study_grid(problem: AbstractProblem) -> bool:
    """Whether the study's grid sampler can serve ``problem``: coordinates (x, t) with t the
    time, and exactly the conditions residual (interior), initial and boundary (the x pair)."""
    box = problem.domain()
    if box.coordinates != ("x", "t") or box.time != "t":
        return False
    regions = {c.name: c.where for c in problem.conditions()}
    return (list(regions) == ["residual", "initial", "boundary"] and isinstance(regions["residual"], Interior)
            and isinstance(regions["initial"], Initial) and isinstance(regions["boundary"], PeriodicPair)
            and regions["boundary"].coordinate == "x")


def check_study_grid(problem: AbstractProblem) -> None:
    if not fits_study_grid(problem):
        raise ValueError(
            f"data.name: the study's grid sampler (data=study) serves 1-D space x time problems with the conditions"
            f" residual, initial and boundary (convection, reaction, wave); {problem.name} needs data=sampled"
        )


def _interior(x: np.ndarray, t: np.ndarray, indexing: str = "ij") -> np.ndarray:
    # interior x[1:-1] x t[1:]. "ij": x-major, row k is (x[1 + k // (n_t - 1)], t[1 + k % (n_t - 1)]);
    # "xy": the companion code's np.meshgrid(x[1:-1], t[1:]), t-major, row k is
    # (x[1 + k % (n_x - 2)], t[1 + k // (n_x - 2)])
    xx, tt = np.meshgrid(x[1:-1], t[1:], indexing=indexing)
    return np.stack([xx.ravel(), tt.ravel()], axis=1)


def check_rng(rng) -> str:
    """``rng`` if it names a draw of the residual points, else a one-line ValueError."""
    if rng not in RNGS:
        raise ValueError(f"data.rng: unknown draw {rng!r}; allowed: {', '.join(RNGS)}")
    return rng


def _edges(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    initial = np.stack([x, np.full_like(x, t[0])], axis=1)
    left = np.stack([np.full_like(t, x[0]), t], axis=1)
    right = np.stack([np.full_like(t, x[-1]), t], axis=1)
    return initial, left, right


def check_collocation(pde: AbstractProblem, *, n_x, n_t, n_residual, seed, rng) -> tuple[int, int, int, int]:
    """The arguments of ``sample_collocation`` checked, one-line ValueErrors naming the
    ``data`` field; returns ``(n_x, n_t, n_residual, seed)``. Creates no array."""
    check_rng(rng)
    check_study_grid(pde)
    n_x = check_int("data.n_x", n_x, 3)
    n_t = check_int("data.n_t", n_t, 2)
    n_interior = (n_x - 2) * (n_t - 1)
    n_residual = check_int("data.n_residual", n_residual, 1)
    if n_residual > n_interior:
        raise ValueError(
            f"data.n_residual: the {n_x} x {n_t} grid interior holds {n_interior} points, "
            f"got {n_residual}; allowed: 1..{n_interior}"
        )
    seed = check_int("data.seed", int(seed) if isinstance(seed, np.integer) else seed, 0)
    return n_x, n_t, n_residual, seed


def sample_collocation(
    pde: AbstractProblem,
    *,
    n_x: int = 257,
    n_t: int = 101,
    n_residual: int = 10_000,
    seed: int = 0,
    rng: str = "jax",
    dtype=jnp.float32,
) -> Collocation:
    """The study's sampler: ``n_residual`` interior grid points without replacement.

    ``rng="jax"``: a ``jax.random.permutation`` of the interior indices (x-major) under the
    seed's ``data`` stream, so the same seed gives the same points on every platform.
    ``rng="numpy"``: the companion code's draw (module docstring), its points in its order.
    """
    n_x, n_t, n_residual, seed = check_collocation(pde, n_x=n_x, n_t=n_t, n_residual=n_residual, seed=seed, rng=rng)
    n_interior = (n_x - 2) * (n_t - 1)
    x, t = grid_axes(pde, n_x, n_t)
    if rng == "numpy":  # np.random.seed(seed); np.random.choice(...), without touching NumPy's global state
        order = np.random.RandomState(seed).choice(n_interior, n_residual, replace=False)
        chosen = _interior(x, t, indexing="xy")[order]
    else:
        with jax.default_device(jax.devices("cpu")[0]):
            order = jax.random.permutation(stream_key(seed, "data"), n_interior)
        chosen = _interior(x, t)[np.asarray(order[:n_residual])]
    initial, left, right = _edges(x, t)
    as_array = lambda a: jnp.asarray(a, dtype=dtype)  # noqa: E731
    return Collocation({"residual": PointSet(as_array(chosen)), "initial": PointSet(as_array(initial)),
                        "boundary": PointSet(as_array(left), as_array(right))})


RESAMPLE_TAG = 7919  # keeps the resampling draws apart from the first draw's generators


def resample_interior(problem: AbstractProblem, data: Collocation, round_: int, *, seed: int, sampler: str | None = None,
                      grid: tuple[int, int] | None = None, dtype=jnp.float32) -> Collocation:
    """``data`` with fresh points for each condition on the interior (the PDE residuals),
    the same number of them, for resampling round ``round_`` (>= 1; 0 is ``data`` itself):
    from ``sampler`` over the region (``data=sampled``), or without replacement from the
    study's interior grid of ``grid = (n_x, n_t)`` points (``data=study``). Each round's
    draw comes from its own generator of the seed's ``data`` stream, so the points of round
    r are the same whenever they are drawn (a resumed run redraws them)."""
    if round_ == 0:
        return data
    sets = dict(data.sets)
    box = problem.domain()
    for index, condition in enumerate(problem.conditions()):
        if not isinstance(condition.where, Interior) or condition.name not in sets:
            continue
        n = sets[condition.name].count()
        rng = np.random.default_rng([seed, STREAMS["data"], index, RESAMPLE_TAG, round_])
        if grid is not None:
            x, t = grid_axes(problem, *grid)
            interior = _interior(x, t)
            chosen = interior[rng.choice(interior.shape[0], n, replace=False)]
        else:
            chosen, _ = sample_region(box, condition.where, n, sampler, rng)
        sets[condition.name] = PointSet(jnp.asarray(chosen, dtype=dtype))
    return Collocation(sets)


def test_points(pde: AbstractProblem, test_set: str = "full", dtype=jnp.float32) -> Float[Array, "n 2"]:
    """Test points: the interior ``x[1:-1] x t[1:]`` plus the initial and both boundary sets.

    ``"full"`` is the 257 x 101 grid of the paper's text, ``"companion"`` the companion
    code's 129 x 101 grid (which produced the published numbers). As in both sources, the
    two corners at t = 0 appear in the initial and in the boundary sets.
    """
    if test_set not in TEST_SETS:
        raise ValueError(f"data.test_set: unknown test set {test_set!r}; allowed: {', '.join(TEST_SETS)}")
    x, t = grid_axes(pde, *TEST_SETS[test_set])
    initial, left, right = _edges(x, t)
    return jnp.asarray(np.concatenate([_interior(x, t), initial, left, right]), dtype=dtype)


def n_test_points(test_set: str) -> int:
    n_x, n_t = TEST_SETS[test_set]
    return (n_x - 2) * (n_t - 1) + n_x + 2 * n_t


DEFAULT_COUNTS = {"interior": 2000, "boundary": 400, "initial": 200, "pair": 200}


def default_count(region) -> int | None:
    """Points a region gets unless ``data.points`` names its condition (None: a user set, all of it)."""
    if isinstance(region, Interior):
        return DEFAULT_COUNTS["interior"]
    if isinstance(region, Initial):
        return DEFAULT_COUNTS["initial"]
    if isinstance(region, PeriodicPair):
        return DEFAULT_COUNTS["pair"]
    if isinstance(region, Points):
        return None
    return DEFAULT_COUNTS["boundary"]


def generator(seed: int, index: int) -> np.random.Generator:
    """The NumPy generator of condition ``index``'s points under ``seed``'s data stream."""
    return np.random.default_rng([seed, STREAMS["data"], index])


def check_sampling(problem: AbstractProblem, *, sampler, points, seed) -> tuple[int, dict[str, Any]]:
    """The arguments of ``sample_points`` checked (the sampler, the seed, ``points`` naming
    conditions), one-line ValueErrors naming the ``data`` field; returns ``(seed, points)``.
    Creates no array."""
    check_sampler(sampler)
    seed = check_int("data.seed", int(seed) if isinstance(seed, np.integer) else seed, 0)
    points = points or {}
    if not isinstance(points, dict):
        raise ValueError(f"data.points: must be a mapping condition -> number of points, got {points!r}")
    points = dict(points)
    names = [c.name for c in problem.conditions()]
    for name in points:
        if name not in names:
            raise ValueError(f"data.points.{name}: not a condition of {problem.name}; allowed: {', '.join(names)}")
    return seed, points


def sample_points(
    problem: AbstractProblem,
    *,
    sampler: str = "sobol",
    points: dict[str, int] | None = None,
    seed: int = 0,
    dtype=jnp.float32,
) -> Collocation:
    """Points for every condition of ``problem``: ``points[name]`` of them (else the region's
    default, ``DEFAULT_COUNTS``) from ``sampler`` over its region; user point sets and
    observations as given, with their values. Condition k draws from its own generator
    (``generator(seed, k)``)."""
    seed, points = check_sampling(problem, sampler=sampler, points=points, seed=seed)
    conditions = problem.conditions()
    box = problem.domain()
    sets = {}
    as_array = lambda a: None if a is None else jnp.asarray(a, dtype=dtype)  # noqa: E731
    for index, condition in enumerate(conditions):
        region = condition.where
        if isinstance(region, Points):
            if condition.name in points:
                raise ValueError(f"data.points.{condition.name}: the condition uses its own point set; remove it")
            chosen, values = region.checked()
            if chosen.shape[1] != len(box.coordinates):
                raise ValueError(f"{problem.name}: condition {condition.name}: points have {chosen.shape[1]} columns,"
                                 f" the domain has {len(box.coordinates)} ({', '.join(box.coordinates)})")
            sets[condition.name] = PointSet(as_array(chosen), None, as_array(values))
            continue
        n = check_int(f"data.points.{condition.name}", points.get(condition.name, default_count(region)), 1)
        chosen, partner = sample_region(box, region, n, sampler, generator(seed, index))
        sets[condition.name] = PointSet(as_array(chosen), as_array(partner))
    return Collocation(sets)


def reference_sets(problem: AbstractProblem, *, study_grid: bool, n_test: int = 10_000,
                   dtype=jnp.float32, reference_file: str | None = None) -> dict[str, tuple[Array, Array]]:
    """The test sets errors are computed on: name -> (points, reference values ``(n, k)``).

    A closed form on the study's two grids (``full``, ``companion``) for problems on the
    study's grid, else on ``grid_points(problem, n_test)`` (``grid``); reference data
    (``problem.reference()``, or the npz file ``reference_file``: ``Reference.from_npz``) as
    ``reference``; {} when the problem has neither. A
    non-finite reference value is refused (one-line ValueError)."""
    from .problems import exact_fields

    sets = {}
    if problem.has_exact:
        if study_grid:
            for name in TEST_SETS:
                points = test_points(problem, name, dtype)
                sets[name] = (points, exact_fields(problem, points))
        else:
            points = grid_points(problem, n_test, dtype)
            sets["grid"] = (points, exact_fields(problem, points))
    reference = problem.reference()
    if reference_file is not None:
        from .problems import Reference

        reference = Reference.from_npz(reference_file, problem.domain().coordinates, tuple(problem.fields))
    if reference is not None:
        k = len(problem.fields)
        if reference.points.ndim != 2 or reference.points.shape[1] != len(problem.domain().coordinates):
            raise ValueError(f"{problem.name}: reference points must have {len(problem.domain().coordinates)} columns")
        if reference.values.shape != (reference.points.shape[0], k):
            raise ValueError(f"{problem.name}: reference values must have shape (n, {k}), got {reference.values.shape}")
        sets["reference"] = (jnp.asarray(reference.points, dtype), jnp.asarray(reference.values, dtype))
    for name, (points, values) in sets.items():
        bad = ~np.isfinite(np.asarray(values))
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise ValueError(f"{problem.name}: the reference ({name} set) is not finite at {bad.sum()} value(s),"
                             f" first at {np.asarray(points)[row].tolist()}")
    return sets


MIN_GRID_AXIS = 10  # below this many points per axis, a grid is mostly its boundary


def grid_points(problem: AbstractProblem, n: int, dtype=jnp.float32) -> Float[Array, "m d"]:
    """About ``n`` test points over the closed box: a tensor grid when it has at least
    ``MIN_GRID_AXIS`` points per axis, else (high dimensions) ``n`` scrambled Sobol points of
    a fixed seed, the same for every run."""
    box = problem.domain()
    d = len(box.coordinates)
    per_axis = round(n ** (1 / d))
    if per_axis >= MIN_GRID_AXIS:
        axes = [np.linspace(lo, hi, per_axis) for lo, hi in zip(box.lower, box.upper)]
        mesh = np.meshgrid(*axes, indexing="ij")
        points = np.stack([m.ravel() for m in mesh], axis=1)
    else:
        points, _ = sample_region(box, Interior(), n, "sobol", np.random.default_rng(0))
    return jnp.asarray(points, dtype=dtype)


__all__ = ["Collocation", "PointSet", "RNGS", "TEST_SETS", "check_collocation", "check_rng", "check_sampling", "check_study_grid",
           "fits_study_grid",
           "grid_axes", "grid_points", "reference_sets", "sample_collocation", "sample_points", "test_points", "n_test_points"]
