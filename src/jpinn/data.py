"""Collocation sets and test grids of the study (PAPER.md section 1).

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


import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._registry import check_int
from .pdes import AbstractPDE
from .rng import key as stream_key

# the two test sets of PAPER.md section 1: the paper text's full grid, the companion code's
TEST_SETS: dict[str, tuple[int, int]] = {"full": (257, 101), "companion": (129, 101)}
# the residual points' draw: jpinn's own stream, or the companion code's NumPy draw
RNGS = ("jax", "numpy")


class Collocation(eqx.Module):
    """The training points. Each array has shape ``(n, 2)`` with columns (x, t)."""

    residual_points: Float[Array, "n_res 2"]
    initial_points: Float[Array, "n_x 2"]
    boundary_left: Float[Array, "n_t 2"]
    boundary_right: Float[Array, "n_t 2"]

    def counts(self) -> dict[str, int]:
        return {
            "residual": int(self.residual_points.shape[0]),
            "initial": int(self.initial_points.shape[0]),
            "boundary": int(self.boundary_left.shape[0] + self.boundary_right.shape[0]),
        }


def grid_axes(pde: AbstractPDE, n_x: int, n_t: int) -> tuple[np.ndarray, np.ndarray]:
    """The equispaced x and t axes (float64 NumPy, endpoints included)."""
    x = np.linspace(pde.x_min, pde.x_max, n_x)
    t = np.linspace(pde.t_min, pde.t_max, n_t)
    return x, t


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


def sample_collocation(
    pde: AbstractPDE,
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
    check_rng(rng)
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
    return Collocation(as_array(chosen), as_array(initial), as_array(left), as_array(right))


def test_points(pde: AbstractPDE, test_set: str = "full", dtype=jnp.float32) -> Float[Array, "n 2"]:
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


__all__ = ["Collocation", "RNGS", "TEST_SETS", "check_rng", "grid_axes", "sample_collocation", "test_points", "n_test_points"]
