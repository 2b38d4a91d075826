"""Reaction-diffusion, u_t = nu u_xx + rho u (1 - u) on [0, 2 pi] (periodic),
u(x, 0) = exp(-(x - pi)^2 / (2 (pi/4)^2)), t in [0, 1]: the companion code's
``reaction_diffusion`` system (Krishnapriyan et al. 2021, carried into the study's code).

Two references:

- ``solve``: converged, by Fourier pseudo-spectral ETDRK4 with the linear part ``-nu k^2 + rho``
  and the nonlinear part ``-rho u^2`` (fourth order in the step, spectral in the grid);
- ``companion``: the companion code's own computation, reproduced: 256 points x in [0, 2 pi)
  (2 pi left out), 100 times t = linspace(0, 1, 100), and from each time to the next one
  Lie step of size 1 / 100 (not 1 / 99, the grid's spacing): the exact logistic reaction,
  then exact diffusion in Fourier space. The companion code's published errors were
  measured against this one. At nu = 3, rho = 5 it is 6.5e-3 (L2RE) from ``solve``: 2.7e-3
  of splitting error (against ``solve`` at the times i / 100 its steps reach), the rest from
  labelling those times i / 99.

The Gaussian is not quite periodic (its slope jumps by 3e-3 across x = 0), so the grid error
falls algebraically (4-5x per doubling, measured); ``STANDARD``'s 512 points leave about
5e-8.
"""

from __future__ import annotations

import numpy as np

from .spectral import etdrk4, wavenumbers

STANDARD = {"nx": 512, "nt": 100, "steps_per_output": 20}


def initial(x):
    return np.exp(-((x - np.pi) ** 2) / (2 * (np.pi / 4) ** 2))


def _check(nu, rho):
    if not nu >= 0:
        raise ValueError(f"nu: must be >= 0, got {nu!r}")
    if not np.isfinite(rho):
        raise ValueError(f"rho: must be finite, got {rho!r}")


def solve(nu: float, rho: float, nx: int = 512, nt: int = 100, steps_per_output: int = 20) -> dict[str, np.ndarray]:
    """Arrays ``x`` (``nx`` points of [0, 2 pi)), ``t`` (``nt`` points of [0, 1]) and ``u``
    ``(nx, nt)``, converged."""
    _check(nu, rho)
    x = 2 * np.pi * np.arange(nx) / nx
    t = np.linspace(0.0, 1.0, nt)
    k = wavenumbers(nx, 2 * np.pi)
    u = etdrk4(initial(x), -nu * k**2 + rho, lambda v: -rho * np.fft.fft(np.real(np.fft.ifft(v)) ** 2), t,
               steps_per_output)
    return {"x": x, "t": t, "u": u}


def companion(nu: float, rho: float, nx: int = 256, nt: int = 100) -> dict[str, np.ndarray]:
    """The companion code's splitting on its grid (module docstring): ``x``, ``t``, ``u``
    ``(nx, nt)``."""
    _check(nu, rho)
    x = 2 * np.pi * np.arange(nx) / nx
    t = np.linspace(0.0, 1.0, nt)
    dt = 1.0 / nt
    decay = np.exp(-nu * wavenumbers(nx, 2 * np.pi) ** 2 * dt)
    u = np.empty((nx, nt))
    u[:, 0] = v = initial(x)
    for i in range(1, nt):
        grown = v * np.exp(rho * dt)
        v = grown / (grown + 1 - v)
        v = np.real(np.fft.ifft(np.fft.fft(v) * decay))
        u[:, i] = v
    return {"x": x, "t": t, "u": u}


__all__ = ["STANDARD", "companion", "initial", "solve"]
