"""The loss along a direction (the study's Figure 9), condition numbers of the Hessian, and
their growth with the number of residual points (its Figure 10).

Condition numbers are ratios of eigenvalues ordered by magnitude, |lambda_1| >= |lambda_2|
>= ...: the companion code finds its eigenvalues by deflated power iteration, which
returns them in that order, and Figure 10 plots |lambda_1 / lambda_k|. Ordered
algebraically instead (``ordering="algebraic"``), an indefinite Hessian's lambda_k can be
negative, and so can the ratio.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .. import rng
from ..linalg import LanczosState, lanczos_steps
from ..linalg.hvp import scalar_loss
from .spectrum import _dtype, hessian_operator, top_eigenvalues

ORDERINGS = ("magnitude", "algebraic")


def _ranked(eigenvalues, ordering: str) -> np.ndarray:
    """The eigenvalues in ``ordering``'s rank: largest magnitude first, or largest first."""
    if ordering not in ORDERINGS:
        raise ValueError(f"ordering: unknown {ordering!r}; allowed: {', '.join(ORDERINGS)}")
    e = np.asarray(eigenvalues, np.float64)
    return e[np.argsort(-np.abs(e), kind="stable")] if ordering == "magnitude" else np.sort(e)[::-1]


def condition_ratio(eigenvalues, index: int, ordering: str = "magnitude") -> float:
    """lambda_1 / lambda_index for eigenvalues ordered by ``ordering``: ``"magnitude"``
    (|lambda_1 / lambda_index|, largest magnitude first: the study's) or ``"algebraic"``
    (largest first, signs kept)."""
    e = _ranked(eigenvalues, ordering)
    if not 1 <= index <= e.size:
        raise ValueError(f"index: must be in 1..{e.size}, got {index!r}")
    ratio = e[0] / e[index - 1]
    return float(abs(ratio) if ordering == "magnitude" else ratio)


@dataclasses.dataclass
class LineScan:
    """phi(t) = f(w + t d) and phi'(t) at step sizes t, with the line-search tests marked.

    Armijo: phi(t) <= phi(0) + c1 t phi'(0); strong Wolfe: Armijo and |phi'(t)| <= c2 |phi'(0)|.
    """

    steps: np.ndarray
    loss: np.ndarray
    slope: np.ndarray
    loss0: float
    slope0: float
    c1: float
    c2: float

    @property
    def armijo(self) -> np.ndarray:
        return self.loss <= self.loss0 + self.c1 * self.steps * self.slope0

    @property
    def wolfe(self) -> np.ndarray:
        return self.armijo & (np.abs(self.slope) <= self.c2 * abs(self.slope0))

    @property
    def decrease(self) -> np.ndarray:
        return self.loss < self.loss0

    def to_dict(self) -> dict:
        return {"loss0": self.loss0, "slope0": self.slope0, "c1": self.c1, "c2": self.c2,
                "steps": int(self.steps.size), "decreasing_steps": int(self.decrease.sum()),
                "armijo_steps": int(self.armijo.sum()), "wolfe_steps": int(self.wolfe.sum()),
                "best_step": float(self.steps[np.argmin(self.loss)]), "best_loss": float(self.loss.min())}


@eqx.filter_jit
def _scan(f, w, d, steps):
    value = scalar_loss(f)
    phi = lambda t: jax.jvp(value, (w + t * d,), (d,))  # noqa: E731
    return jax.lax.map(phi, steps)


def line_scan(f, w: Float[Array, " p"], direction: Float[Array, " p"], steps: Sequence[float] | None = None,
              *, c1: float = 1e-4, c2: float = 0.9) -> LineScan:
    """The loss along ``direction`` from ``w`` (default steps: 241 log-spaced in [1e-10, 1e2]);
    slopes by forward mode, one jvp per step size."""
    steps = np.logspace(-10, 2, 241) if steps is None else np.asarray(steps, dtype=np.float64)
    if steps.ndim != 1 or steps.size == 0 or not np.all(np.isfinite(steps)):
        raise ValueError("steps: must be a non-empty list of finite step sizes")
    ts = jnp.asarray(steps, w.dtype)
    loss, slope = _scan(f, w, direction, jnp.concatenate([jnp.zeros((1,), w.dtype), ts]))
    loss, slope = np.asarray(loss, np.float64), np.asarray(slope, np.float64)
    return LineScan(steps, loss[1:], slope[1:], float(loss[0]), float(slope[0]), c1, c2)


@dataclasses.dataclass
class ConditionSweep:
    """Eigenvalues of the Hessian at several numbers of residual points; ``ratio`` is
    lambda_1 / lambda_index under ``ordering`` (``condition_ratio``; by magnitude, as the
    study), ``exponent`` the slope of log(ratio) against log(n_res) (least squares)."""

    n_residual: list[int]
    eigenvalues: list[np.ndarray]
    index: int
    ordering: str = "magnitude"

    def ratios(self, ordering: str | None = None) -> np.ndarray:
        return np.array([condition_ratio(e, self.index, ordering or self.ordering) for e in self.eigenvalues])

    @property
    def ratio(self) -> np.ndarray:
        return self.ratios()

    @property
    def exponent(self) -> float:
        ratio = self.ratio
        if np.any(~(ratio > 0)) or np.any(~np.isfinite(ratio)) or len(ratio) < 2:
            return float("nan")  # algebraic ordering: a negative lambda_index has no logarithm
        return float(np.polyfit(np.log(self.n_residual), np.log(ratio), 1)[0])

    def to_dict(self) -> dict:
        by_magnitude = [_ranked(e, "magnitude") for e in self.eigenvalues]
        return {"n_residual": list(self.n_residual), "index": self.index, "ordering": self.ordering,
                "lambda_max": [float(np.max(e)) for e in self.eigenvalues],
                "lambda_min": [float(np.min(e)) for e in self.eigenvalues],
                "lambda_largest_magnitude": [float(e[0]) for e in by_magnitude],
                "lambda_index_by_magnitude": [float(e[self.index - 1]) for e in by_magnitude],
                "ratio": self.ratio.tolist(), "exponent": self.exponent,
                "ratio_magnitude": self.ratios("magnitude").tolist(),
                "ratio_algebraic": self.ratios("algebraic").tolist()}


def hessian_eigenvalues(f, w: Float[Array, " p"], *, component: str = "total", k: int | None = None,
                        steps: int | None = None, seed: int = 0) -> np.ndarray:
    """The ``k`` largest Hessian eigenvalues (all of them by default) by Lanczos with full
    reorthogonalisation, ``steps`` = p by default (exact up to rounding)."""
    p = w.shape[0]
    factory = lambda f_, w_: hessian_operator(f_, w_, component)  # noqa: E731
    return top_eigenvalues(factory, (f, w), p, k or p, steps=steps or p, seed=seed)


def condition_sweep(build, n_values: Sequence[int], *, index: int | None = None, train=None,
                    ordering: str = "magnitude") -> ConditionSweep:
    """For each n in ``n_values``: ``f, w = build(n)``, optionally ``w = train(f, w)``, then
    every Hessian eigenvalue by Lanczos; ``index`` (default p) picks the denominator,
    ``ordering`` how the eigenvalues are ranked (``condition_ratio``)."""
    _ranked([], ordering)  # refuses an unknown ordering before any training
    eigenvalues, p = [], None
    for n in n_values:
        f, w = build(int(n))
        if train is not None:
            w = train(f, w)
        p = w.shape[0]
        eigenvalues.append(hessian_eigenvalues(f, w))
    index = index or p
    if not 1 <= index <= p:
        raise ValueError(f"index: must be in 1..{p}, got {index!r}")
    return ConditionSweep([int(n) for n in n_values], eigenvalues, index, ordering)


@dataclasses.dataclass
class ConditionEstimate:
    """|lambda_largest| / |lambda_smallest| (by magnitude) from Lanczos run until the two
    extreme-magnitude Ritz values settle.

    ``radius_*``: A has an eigenvalue within this distance of the Ritz value (the Lanczos
    residual bound). ``converged``: both radii are below ``rtol`` of their values and the
    ratio moved by less than ``rtol`` over the last chunk of steps. ``exhaustive``: the
    Krylov space is the whole space (``steps`` = p) or invariant (a breakdown), so the Ritz
    values are eigenvalues and the ratio is the condition number of the operator along the
    start vector's Krylov space, exact up to rounding. Otherwise ``smallest`` is the
    smallest-magnitude eigenvalue found so far: an eigenvalue closer to zero may remain
    undiscovered (indefinite spectra put it inside the spectrum, where Lanczos converges
    last), so a non-exhaustive ratio is a lower bound up to that caveat. ``floor`` is the
    operator's rounding, eps |largest| in its dtype: a ``smallest`` below it is rounding,
    and the ratio then only says that the operator is singular to working precision
    (``below_rounding``).
    """

    ratio: float
    largest: float
    smallest: float
    radius_largest: float
    radius_smallest: float
    steps: int
    dimension: int
    converged: bool
    exhaustive: bool
    floor: float
    history: list[tuple[int, float]]

    @property
    def below_rounding(self) -> bool:
        return abs(self.smallest) <= self.floor

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("ratio", "largest", "smallest", "radius_largest", "radius_smallest",
                                              "steps", "dimension", "converged", "exhaustive", "floor",
                                              "below_rounding")} | {
            "history": [list(h) for h in self.history]}


def _extend(matvec_factory):
    @eqx.filter_jit
    def run(args, state, steps):
        return lanczos_steps(matvec_factory(*args), state, steps)

    return run


def estimate_condition(matvec_factory, args: tuple, dimension: int, *, rtol: float = 1e-3,
                       max_steps: int | None = None, chunk: int = 50, seed: int = 0, dtype=None) -> ConditionEstimate:
    """The magnitude condition number |lambda|_max / |lambda|_min of the symmetric operator
    ``matvec_factory(*args)`` by Lanczos with full reorthogonalisation from a Gaussian start
    (stream ``lanczos`` of ``seed``), extended ``chunk`` steps at a time until the extreme
    Ritz values settle (``ConditionEstimate``), the space is exhausted, or ``max_steps``
    (default p; memory: max_steps x p numbers)."""
    for name, value in (("max_steps", max_steps if max_steps is not None else 1), ("chunk", chunk)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: must be an integer >= 1, got {value!r}")
    if not (isinstance(rtol, (int, float)) and 0 < rtol < 1):
        raise ValueError(f"rtol: must be a number in (0, 1), got {rtol!r}")
    dtype = dtype or _dtype(args)
    capacity = min(max_steps or dimension, dimension)
    run = _extend(matvec_factory)
    state = LanczosState.start(jax.random.normal(rng.key(seed, "lanczos"), (dimension,), dtype), capacity)
    history: list[tuple[int, float]] = []
    while True:
        state = run(args, state, jnp.asarray(chunk, jnp.int32))
        tri = state.tridiagonal()
        steps = int(state.step)
        values, radius = tri.ritz_bounds()
        big, small = int(np.argmax(np.abs(values))), int(np.argmin(np.abs(values)))
        with np.errstate(divide="ignore"):
            ratio = float(abs(values[big]) / abs(values[small]))
        exhaustive = int(tri.size) < steps or steps == dimension
        certified = radius[big] <= rtol * abs(values[big]) and radius[small] <= rtol * abs(values[small])
        settled = bool(history) and abs(ratio - history[-1][1]) <= rtol * ratio
        history.append((steps, ratio))
        if exhaustive or (certified and settled) or steps >= capacity:
            return ConditionEstimate(ratio, float(values[big]), float(values[small]), float(radius[big]),
                                     float(radius[small]), steps, dimension, bool(exhaustive or (certified and settled)),
                                     bool(exhaustive), float(jnp.finfo(dtype).eps * abs(values[big])), history)


def hessian_condition(f, w: Float[Array, " p"], component: str = "total", **kwargs) -> ConditionEstimate:
    """``estimate_condition`` for the Hessian of ``component`` of the jpinn loss ``f`` at ``w``."""
    factory = lambda f_, w_: hessian_operator(f_, w_, component)  # noqa: E731
    return estimate_condition(factory, (f, w), w.shape[0], **kwargs)
