"""2-D heat with a source, u_t = kappa (u_xx + u_yy) + 1 on [0, 1]^2, u = 0 on the boundary
and at t = 0, t in [0, 1].

There is no closed form; the solution is the sine series (the constant source has the
coefficients 16 / (pi^2 m n) for odd m and n, 0 otherwise), exact in time, mode by mode:

    u = sum_{m, n odd} 16 / (pi^2 m n) (1 - e^{-kappa lambda t}) / (kappa lambda)
        sin(m pi x) sin(n pi y),      lambda = pi^2 (m^2 + n^2),

summed over the first ``modes`` odd m and n. The source is discontinuous at the boundary
(1 inside, 0 on it), so the series converges algebraically: the truncation error at the centre falls as
modes^-3 (8x per doubling ; ``tests/test_references.py`` measures the order). ``STANDARD``'s 1,000 modes
leave about 2e-10 there.
"""

from __future__ import annotations

import numpy as np

STANDARD = {"kappa": 0.1, "nx": 65, "nt": 21, "modes": 1000}


def solve(kappa: float = 0.1, nx: int = 65, nt: int = 21, modes: int = 1000, x=None, t=None) -> dict[str, np.ndarray]:
    """Arrays ``x``, ``y`` (``nx`` points of [0, 1] each, unless ``x`` is given), ``t`` (``nt``
    points of [0, 1], unless given) and ``u`` ``(nx, nx, nt)`` on their ij mesh."""
    if not kappa > 0:
        raise ValueError(f"kappa: must be > 0, got {kappa!r}")
    if modes < 1:
        raise ValueError(f"modes: must be >= 1, got {modes!r}")
    x = np.linspace(0.0, 1.0, nx) if x is None else np.asarray(x, np.float64)
    t = np.linspace(0.0, 1.0, nt) if t is None else np.asarray(t, np.float64)
    m = 2 * np.arange(modes) + 1.0
    basis = np.sin(np.pi * x[:, None] * m[None, :])  # (nx, modes)
    lam = np.pi**2 * (m[:, None] ** 2 + m[None, :] ** 2)
    coeff = 16 / (np.pi**2 * m[:, None] * m[None, :])
    u = np.empty((x.size, x.size, t.size))
    for j, tj in enumerate(t):
        c = coeff * -np.expm1(-kappa * lam * tj) / (kappa * lam)
        u[:, :, j] = basis @ c @ basis.T
    return {"x": x, "y": x.copy(), "t": t, "u": u}


__all__ = ["STANDARD", "solve"]
