"""Viscous Burgers u_t + u u_x = nu u_xx on the real line (or a periodic interval) by the
Cole-Hopf transform, with Gauss-Hermite quadrature (SciPy's nodes and weights, accurate for thousands of nodes
where NumPy's recurrence overflows past about 1,000).

u = -2 nu (log theta)_x turns Burgers into the heat equation theta_t = nu theta_xx, whose
solution is the initial theta_0 = exp(phi) averaged against the heat kernel. Writing
y = x - sqrt(4 nu t) z, both integrals of the transform become integrals against e^{-z^2}:

    u(x, t) = sum_i w_i u0(y_i) e^{phi(y_i)} / sum_i w_i e^{phi(y_i)},
    phi(y) = -(1 / (2 nu)) int_0^y u0,

with the Gauss-Hermite nodes z_i and weights w_i. The sums are taken in log space
(``phi`` reaches 1 / (pi nu) = 100 in the standard setting), so nothing overflows.

The standard setting (Raissi et al. 2019, PINNacle's Burgers 1-D): u0 = -sin(pi x) on
[-1, 1], u(-1, t) = u(1, t) = 0, nu = 0.01 / pi, t in [0, 1]: a shock forms at x = 0 by
t = 1 / pi. There phi = (1 - cos(pi y)) / (2 pi nu), and the integrand in z peaks near
z = (x -+ 1) / sqrt(4 nu t), far in the Gaussian's tail, as a bump of width about 0.5:
the quadrature needs nodes out to |z| ~ 9 and a node spacing well under that width, which
``DEFAULT_NODES`` gives (``tests/test_references.py`` measures the error against the node
count).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.special

DEFAULT_NODES = 400
STANDARD_NU = 0.01 / np.pi


def _check(nu, nodes, t):
    if not nu > 0:
        raise ValueError(f"nu: must be > 0, got {nu!r}")
    if nodes < 2:
        raise ValueError(f"nodes: must be >= 2, got {nodes!r}")
    if np.any(t < 0):
        raise ValueError("t: times must be >= 0")


def _average(u0, phi, x, t, nu, z, log_w):
    # u at the points (x[i], t[i]), t > 0: the weighted average of u0 over the nodes
    y = x[:, None] - np.sqrt(4 * nu * t)[:, None] * z[None, :]
    a = log_w[None, :] + phi(y)
    a = np.exp(a - np.max(a, axis=1, keepdims=True))
    return np.sum(a * u0(y), axis=1) / np.sum(a, axis=1)


def _nodes(nodes: int):
    z, w = scipy.special.roots_hermite(nodes)
    with np.errstate(divide="ignore"):
        return z, np.log(w)  # weights far in the tail underflow to 0: log 0 = -inf drops them


def cole_hopf_at(u0: Callable, phi: Callable, x, t, nu: float, nodes: int = DEFAULT_NODES) -> np.ndarray:
    """u at the scattered points (``x[i]``, ``t[i]``) (arrays of one shape), as ``cole_hopf``."""
    x, t = np.asarray(x, np.float64).ravel(), np.asarray(t, np.float64).ravel()
    _check(nu, nodes, t)
    out = np.asarray(u0(x), np.float64).copy()
    later = t > 0
    if later.any():
        out[later] = _average(u0, phi, x[later], t[later], nu, *_nodes(nodes))
    return out


def cole_hopf(u0: Callable, phi: Callable, x, t, nu: float, nodes: int = DEFAULT_NODES) -> np.ndarray:
    """u on the grid ``x`` x ``t`` (an array ``(len(x), len(t))``) for the initial values
    ``u0(y)`` and their potential ``phi(y) = -(1 / (2 nu)) int_0^y u0`` (module docstring).
    At t = 0 the values are ``u0(x)``."""
    x, t = np.asarray(x, np.float64), np.asarray(t, np.float64)
    _check(nu, nodes, t)
    z, log_w = _nodes(nodes)
    out = np.empty((x.size, t.size))
    for j, tj in enumerate(t):
        out[:, j] = u0(x) if tj == 0 else _average(u0, phi, x, np.full(x.shape, tj), nu, z, log_w)
    return out


def standard_initial(nu: float = STANDARD_NU) -> tuple[Callable, Callable]:
    """The standard setting's u0 = -sin(pi y) and its potential phi (module docstring)."""

    def u0(y):
        return -np.sin(np.pi * y)

    def phi(y):
        return (1 - np.cos(np.pi * y)) / (2 * np.pi * nu)

    return u0, phi


def standard(nu: float = STANDARD_NU, nx: int = 256, nt: int = 101, nodes: int = DEFAULT_NODES) -> dict[str, np.ndarray]:
    """The standard setting (module docstring) on ``nx`` equally spaced x in [-1, 1] and
    ``nt`` times in [0, 1]: arrays ``x``, ``t`` and ``u`` ``(nx, nt)``."""
    x, t = np.linspace(-1.0, 1.0, nx), np.linspace(0.0, 1.0, nt)
    u = cole_hopf(*standard_initial(nu), x, t, nu, nodes)
    u[[0, -1], :] = 0.0  # sin(pi) is 1.2e-16, not 0; the boundary values are exactly 0
    return {"x": x, "t": t, "u": u}


__all__ = ["DEFAULT_NODES", "STANDARD_NU", "cole_hopf", "cole_hopf_at", "standard", "standard_initial"]
