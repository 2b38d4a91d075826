"""Fourier pseudo-spectral time stepping for periodic 1-D problems u_t = L u + N(u).

``etdrk4`` is the fourth-order exponential time-differencing Runge-Kutta scheme of Cox and
Matthews in the form of Kassam and Trefethen (SIAM J. Sci. Comput. 26, 2005): the linear
part ``L`` (diagonal in Fourier space) is integrated exactly and the coefficients
``(e^z - 1 - z) / z^2``-like functions of ``z = h L`` are evaluated by a contour integral
around each ``z``, which stays accurate where their Taylor series cancel. The error falls
as ``h^4`` in the step and spectrally in the grid.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

CONTOUR_POINTS = 64


def wavenumbers(n: int, length: float) -> np.ndarray:
    """The angular wavenumbers of an ``n``-point periodic grid of period ``length``
    (``np.fft.fft`` order; the Nyquist mode set to 0 where odd derivatives need it)."""
    if n < 4 or n % 2:
        raise ValueError(f"n: a Fourier grid needs an even number of points >= 4, got {n}")
    return 2 * np.pi / length * np.fft.fftfreq(n, 1.0 / n)


def etdrk4(
    u0: np.ndarray,
    linear: np.ndarray,
    nonlinear: Callable[[np.ndarray], np.ndarray],
    t_out: np.ndarray,
    steps_per_output: int,
) -> np.ndarray:
    """Solve û_t = ``linear`` * û + ``nonlinear``(û) from the grid values ``u0`` and return
    the grid values at the equally spaced times ``t_out`` (``t_out[0]`` is the start), as an
    array ``(len(u0), len(t_out))``. ``nonlinear`` maps Fourier coefficients to Fourier
    coefficients; ``steps_per_output`` steps of ``h = (t_out[1] - t_out[0]) / steps_per_output``
    lie between two outputs."""
    t_out = np.asarray(t_out, np.float64)
    if t_out.ndim != 1 or t_out.size < 2:
        raise ValueError("t_out: needs at least two times")
    gaps = np.diff(t_out)
    if not np.allclose(gaps, gaps[0], rtol=1e-12, atol=0.0) or gaps[0] <= 0:
        raise ValueError("t_out: the output times must be increasing and equally spaced")
    if steps_per_output < 1:
        raise ValueError(f"steps_per_output: must be >= 1, got {steps_per_output}")
    h = gaps[0] / steps_per_output
    lh = h * np.asarray(linear, np.complex128)
    e, e2 = np.exp(lh), np.exp(lh / 2)
    roots = np.exp(1j * np.pi * (np.arange(1, CONTOUR_POINTS + 1) - 0.5) / CONTOUR_POINTS)
    z = lh[:, None] + roots[None, :]
    q = h * np.mean((np.exp(z / 2) - 1) / z, axis=1)
    f1 = h * np.mean((-4 - z + np.exp(z) * (4 - 3 * z + z**2)) / z**3, axis=1)
    f2 = h * np.mean((2 + z + np.exp(z) * (z - 2)) / z**3, axis=1)
    f3 = h * np.mean((-4 - 3 * z - z**2 + np.exp(z) * (4 - z)) / z**3, axis=1)
    if np.isrealobj(linear) or np.all(np.imag(linear) == 0):  # real L: the means are real
        q, f1, f2, f3 = (np.real(c) for c in (q, f1, f2, f3))
    v = np.fft.fft(np.asarray(u0, np.float64))
    out = np.empty((v.size, t_out.size))
    out[:, 0] = np.asarray(u0, np.float64)
    for i in range(1, t_out.size):
        for _ in range(steps_per_output):
            nv = nonlinear(v)
            a = e2 * v + q * nv
            na = nonlinear(a)
            b = e2 * v + q * na
            nb = nonlinear(b)
            c = e2 * a + q * (2 * nb - nv)
            nc = nonlinear(c)
            v = e * v + nv * f1 + 2 * (na + nb) * f2 + nc * f3
        out[:, i] = np.real(np.fft.ifft(v))
    return out


__all__ = ["etdrk4", "wavenumbers"]
