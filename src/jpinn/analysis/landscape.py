"""The loss along a direction (the study's Figure 9) and the condition number of the Hessian
against the number of residual points (its Figure 10)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..linalg.hvp import scalar_loss
from .spectrum import hessian_operator, top_eigenvalues


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
    """Eigenvalues of the Hessian at several numbers of residual points; ``ratio`` is the
    largest eigenvalue over the ``index``-th largest, ``exponent`` the slope of
    log(ratio) against log(n_res) (least squares)."""

    n_residual: list[int]
    eigenvalues: list[np.ndarray]
    index: int

    @property
    def ratio(self) -> np.ndarray:
        return np.array([e[0] / e[self.index - 1] for e in self.eigenvalues])

    @property
    def exponent(self) -> float:
        ratio = self.ratio
        if np.any(ratio <= 0) or len(ratio) < 2:
            return float("nan")
        return float(np.polyfit(np.log(self.n_residual), np.log(ratio), 1)[0])

    def to_dict(self) -> dict:
        return {"n_residual": list(self.n_residual), "index": self.index,
                "lambda_max": [float(e[0]) for e in self.eigenvalues],
                "lambda_index": [float(e[self.index - 1]) for e in self.eigenvalues],
                "ratio": self.ratio.tolist(), "exponent": self.exponent}


def hessian_eigenvalues(f, w: Float[Array, " p"], *, component: str = "total", k: int | None = None,
                        steps: int | None = None, seed: int = 1) -> np.ndarray:
    """The ``k`` largest Hessian eigenvalues (all of them by default) by Lanczos with full
    reorthogonalisation, ``steps`` = p by default (exact up to rounding)."""
    p = w.shape[0]
    factory = lambda f_, w_: hessian_operator(f_, w_, component)  # noqa: E731
    return top_eigenvalues(factory, (f, w), p, k or p, steps=steps or p, seed=seed)


def condition_sweep(build, n_values: Sequence[int], *, index: int | None = None, train=None) -> ConditionSweep:
    """For each n in ``n_values``: ``f, w = build(n)``, optionally ``w = train(f, w)``, then
    every Hessian eigenvalue by Lanczos; ``index`` (default p) picks the denominator."""
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
    return ConditionSweep([int(n) for n in n_values], eigenvalues, index)
