"""Hessian spectra of a loss by stochastic Lanczos quadrature (PAPER.md section 5).

For a symmetric p x p operator A (here a Hessian, applied by Hessian-vector products) and a
Rademacher probe z, Lanczos from z gives T = Q^T A Q; the eigenvalues of T (Ritz values)
with the squared first components of its eigenvectors as weights form a Gauss quadrature
of the spectral measure along z: sum_i w_i g(theta_i) ~ z^T g(A) z / p. Averaged over the
probes, this estimates (1/p) sum_k g(lambda_k) for any g: with a Gaussian g the spectral
density, with g = x^k the normalised trace of A^k. The study's settings are the defaults:
10 probes, 100 steps, Gaussian smoothing of variance 5e-5 * max(1, lambda_max - lambda_min).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import equinox as eqx
import jax
import numpy as np
from jaxtyping import Array, Float

from .. import rng
from ..linalg import lanczos
from ..linalg.hvp import value_grad_hvp

COMPONENTS = ("total", "residual", "initial", "boundary")  # the study's problems' (total: the loss)
VARIANCE_FACTOR = 5e-5  # the study's smoothing: variance 5e-5 * max(1, lambda_max - lambda_min)


def components_of(f: Callable) -> tuple[str, ...]:
    """``total`` and the condition names of a jpinn loss (the study's names for other callables)."""
    problem = getattr(f, "pde", None)
    return ("total", *(c.name for c in problem.conditions())) if problem is not None else COMPONENTS


def component_loss(f: Callable, component: str = "total") -> Callable:
    """The scalar function w -> one named term of a jpinn loss (``total`` is the sum)."""
    allowed = components_of(f)
    if component not in allowed:
        raise ValueError(f"component: unknown {component!r}; allowed: {', '.join(allowed)}")

    def scalar(w):
        total, parts = f(w)
        return total if component == "total" else parts[component]

    return scalar


def hessian_operator(f: Callable, w: Float[Array, " p"], component: str = "total") -> Callable:
    """v -> H v for the Hessian of ``component`` of ``f`` at ``w`` (one linearisation)."""
    return value_grad_hvp(component_loss(f, component), w)[2]


def _dtype(args):
    """The floating dtype of the operator's array arguments (Python numbers skipped)."""
    return next(leaf.dtype for leaf in jax.tree.leaves(args) if eqx.is_inexact_array(leaf))


def _rademacher(key, n: int, dtype) -> Array:
    return jax.random.rademacher(key, (n,), dtype=dtype)


@dataclasses.dataclass
class SpectralDensity:
    """Ritz values and weights of several Lanczos probes: ``nodes[k, i]``, ``weights[k, i]``.

    ``dimension`` is p, the operator's size (for traces).
    """

    nodes: np.ndarray
    weights: np.ndarray
    dimension: int

    @property
    def lambda_max(self) -> float:
        return float(self.nodes.max())

    @property
    def lambda_min(self) -> float:
        return float(self.nodes.min())

    def variance(self, factor: float = VARIANCE_FACTOR) -> float:
        return factor * max(1.0, self.lambda_max - self.lambda_min)

    def moment(self, k: int) -> float:
        """Estimate of tr(A^k) / p."""
        return float(np.mean(np.sum(self.weights * self.nodes**k, axis=1)))

    def trace(self) -> float:
        """Hutchinson's estimate of tr(A) (from the same probes)."""
        return self.dimension * self.moment(1)

    def condition_ritz(self) -> float:
        """lambda_max over the smallest positive Ritz value of any probe (nan if none is
        positive). Not a condition number: a few Lanczos steps resolve the extremes, not the
        eigenvalues nearest zero, so it is far below the true ratio (the review's case: 1.4e5
        with 40 steps where the dense ratio is 6.4e7). For a positive semi-definite operator
        it is a lower bound (Ritz values lie inside the spectrum); for an indefinite one, a
        rough indication only. ``jpinn.analysis.estimate_condition`` converges."""
        positive = self.nodes[self.nodes > 0]
        return float(self.lambda_max / positive.min()) if positive.size else float("nan")

    def density(self, grid: np.ndarray | None = None, variance: float | None = None,
                points_per_sigma: float = 4.0, max_points: int = 400_000) -> tuple[np.ndarray, np.ndarray]:
        """The smoothed density on ``grid`` (default: uniform, 6 sigma beyond the extreme Ritz
        values, ``points_per_sigma`` points per standard deviation, at most ``max_points``).
        Integrates to 1 over a grid that covers the Ritz values."""
        var = self.variance() if variance is None else variance
        sigma = math.sqrt(var)
        if grid is None:
            lo, hi = self.lambda_min - 6 * sigma, self.lambda_max + 6 * sigma
            n = int(min(max_points, max(2000, math.ceil((hi - lo) / sigma * points_per_sigma))))
            grid = np.linspace(lo, hi, n)
        out = np.zeros_like(grid, dtype=np.float64)
        nodes, weights = self.nodes.ravel(), self.weights.ravel() / self.nodes.shape[0]
        keep = weights > 0
        # accumulate node by node over a window of 8 sigma: cheap and exact to ~1e-14
        for node, weight in zip(nodes[keep], weights[keep]):
            i0, i1 = np.searchsorted(grid, [node - 8 * sigma, node + 8 * sigma])
            out[i0:i1] += weight * np.exp(-((grid[i0:i1] - node) ** 2) / (2 * var))
        return grid, out / math.sqrt(2 * math.pi * var)

    def to_dict(self) -> dict[str, float]:
        return {"lambda_max": self.lambda_max, "lambda_min": self.lambda_min, "condition_ritz": self.condition_ritz(),
                "trace": self.trace(), "variance": self.variance(), "probes": int(self.nodes.shape[0]),
                "steps": int(self.nodes.shape[1]), "dimension": self.dimension}


def _probe(matvec_factory, steps):
    @eqx.filter_jit
    def run(args, v0):
        return lanczos(matvec_factory(*args), v0, steps)

    return run


def slq(matvec_factory: Callable, args: tuple, dimension: int, *, probes: int = 10, steps: int = 100,
        seed: int = 0, dtype=None) -> SpectralDensity:
    """Stochastic Lanczos quadrature of the operator ``matvec_factory(*args)``.

    ``matvec_factory(*args)`` returns v -> A v inside the compiled Lanczos loop (so a
    Hessian is linearised once per probe, within the same program); ``args`` are its array
    arguments. Each probe is a Rademacher vector of size ``dimension``.
    """
    for name, value in (("probes", probes), ("steps", steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: must be an integer >= 1, got {value!r}")
    dtype = dtype or _dtype(args)
    run = _probe(matvec_factory, steps)
    keys = jax.random.split(rng.key(seed, "probes"), probes)
    nodes, weights = [], []
    for key in keys:
        values, w = run(args, _rademacher(key, dimension, dtype)).ritz()
        k = min(steps, dimension)
        pad = k - values.shape[0]  # early breakdown: pad with zero-weight nodes
        nodes.append(np.concatenate([values, np.full(pad, values[-1])]))
        weights.append(np.concatenate([w, np.zeros(pad)]))
    return SpectralDensity(np.asarray(nodes, np.float64), np.asarray(weights, np.float64), dimension)


def hessian_density(f: Callable, w: Float[Array, " p"], component: str = "total", **kwargs) -> SpectralDensity:
    """The spectral density of the Hessian of ``component`` of the jpinn loss ``f`` at ``w``."""
    factory = lambda f_, w_: hessian_operator(f_, w_, component)  # noqa: E731
    return slq(factory, (f, w), w.shape[0], **kwargs)


def top_eigenvalues(matvec_factory: Callable, args: tuple, dimension: int, k: int = 5, *, steps: int = 100,
                    seed: int = 0, dtype=None) -> np.ndarray:
    """The ``k`` largest eigenvalues (descending) by ``steps`` Lanczos steps from a Gaussian
    start; with ``steps >= dimension`` every eigenvalue (the dense spectrum, up to rounding)."""
    dtype = dtype or _dtype(args)
    v0 = jax.random.normal(rng.key(seed, "lanczos"), (dimension,), dtype)
    values, _ = _probe(matvec_factory, steps)(args, v0).ritz()
    return values[::-1][:k]
