"""Korteweg-de Vries, u_t + eta u u_x + mu^2 u_xxx = 0 on [-1, 1] (periodic),
u(x, 0) = cos(pi x), eta = 1, mu = 0.022, t in [0, 1]: Zabusky and Kruskal's setting
(1965) in the form of jaxpi's KdV example.

Solved by Fourier pseudo-spectral ETDRK4 (``spectral.etdrk4``): the dispersive part
``i mu^2 k^3`` is integrated exactly; the nonlinear part ``-(i eta k / 2) FFT(u^2)`` is
dealiased by the 2/3 rule. A single soliton u = (3 c / eta) sech^2(sqrt(c) (x - c t - x0)
/ (2 mu)) is an exact solution (``soliton``), which ``tests/test_references.py`` compares.
"""

from __future__ import annotations

import numpy as np

from .spectral import etdrk4, wavenumbers

STANDARD = {"eta": 1.0, "mu": 0.022, "nx": 512, "nt": 201, "steps_per_output": 100}


def soliton(x, t, c: float, x0: float = 0.0, eta: float = 1.0, mu: float = 0.022, period: float = 2.0):
    """The travelling soliton of speed ``c`` through ``x0`` at t = 0 (on the periodic line of
    ``period``, centred at the nearest image), values on the grid ``x`` x ``t``."""
    x, t = np.asarray(x, np.float64)[:, None], np.asarray(t, np.float64)[None, :]
    shift = x - c * t - x0
    shift = shift - period * np.round(shift / period)
    return 3 * c / eta / np.cosh(np.sqrt(c) * shift / (2 * mu)) ** 2


def solve(eta: float = 1.0, mu: float = 0.022, nx: int = 512, nt: int = 201, steps_per_output: int = 100,
          t_max: float = 1.0, u0=None) -> dict[str, np.ndarray]:
    """Arrays ``x`` (``nx`` points of [-1, 1)), ``t`` (``nt`` points of [0, t_max]) and ``u``
    ``(nx, nt)``; ``u0`` (grid values) replaces cos(pi x)."""
    if not mu > 0:
        raise ValueError(f"mu: must be > 0, got {mu!r}")
    x = -1.0 + 2.0 * np.arange(nx) / nx
    t = np.linspace(0.0, t_max, nt)
    k = wavenumbers(nx, 2.0)
    keep = np.abs(np.fft.fftfreq(nx, 1.0 / nx)) < nx / 3  # the 2/3 rule
    start = np.cos(np.pi * x) if u0 is None else np.asarray(u0, np.float64)

    def nonlinear(v):
        return -0.5j * eta * k * keep * np.fft.fft(np.real(np.fft.ifft(v)) ** 2)

    u = etdrk4(start, 1j * mu**2 * k**3, nonlinear, t, steps_per_output)
    return {"x": x, "t": t, "u": u}


__all__ = ["STANDARD", "soliton", "solve"]
