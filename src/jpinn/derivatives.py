"""How the PDE terms u, u_x, u_t, u_xx, u_tt, u_xt of a scalar field u(x, t) are computed.

PDE definitions never choose a differentiation method: they name the terms they need and
this module returns them, evaluated at a batch of points. Two methods are offered:

- ``"reverse"``: nested reverse mode (``jax.grad`` for first derivatives, ``jax.hessian``
  for second ones), per point, vmapped over the points. The simple reference.
- ``"forward"``: nested forward mode (``jax.jvp`` of ``jax.jvp``) along the coordinate
  directions, per point, vmapped over the points, so each layer runs as one
  matrix-matrix product for the whole batch.

Both give the same numbers to dtype tolerance (tested); ``DEFAULT_METHOD`` is the faster
one on a 2-core CPU (see ``benchmarks/adam_step.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

TERMS = ("u", "u_x", "u_t", "u_xx", "u_tt", "u_xt")
METHODS = ("forward", "reverse")
DEFAULT_METHOD = "forward"

ScalarField = Callable[[Float[Array, ""], Float[Array, ""]], Float[Array, ""]]


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"derivatives: unknown method {method!r}; allowed: {', '.join(METHODS)}")
    return method


def _check_terms(terms: Iterable[str]) -> tuple[str, ...]:
    terms = tuple(terms)
    for term in terms:
        if term not in TERMS:
            raise ValueError(f"unknown derivative term {term!r}; allowed: {', '.join(TERMS)}")
    return terms


def _point_forward(u: ScalarField, terms: tuple[str, ...], x, t) -> dict[str, Array]:
    one, zero = jnp.ones_like(x), jnp.zeros_like(x)
    ex, et = (one, zero), (zero, one)

    def d(f, direction):
        # derivative of f along `direction`, as a function of (x, t)
        return lambda x_, t_: jax.jvp(f, (x_, t_), direction)[1]

    out: dict[str, Array] = {}
    need = set(terms)
    if need & {"u", "u_x"}:
        out["u"], out["u_x"] = jax.jvp(u, (x, t), ex)
    if "u_t" in need:
        out["u"], out["u_t"] = jax.jvp(u, (x, t), et)
    if "u_xx" in need:
        out["u_x"], out["u_xx"] = jax.jvp(d(u, ex), (x, t), ex)
    if "u_tt" in need:
        out["u_t"], out["u_tt"] = jax.jvp(d(u, et), (x, t), et)
    if "u_xt" in need:
        out["u_x"], out["u_xt"] = jax.jvp(d(u, ex), (x, t), et)
    if "u" in need and "u" not in out:
        out["u"] = u(x, t)
    return {k: out[k] for k in terms}


def _point_reverse(u: ScalarField, terms: tuple[str, ...], x, t) -> dict[str, Array]:
    out: dict[str, Array] = {}
    need = set(terms)
    if "u" in need:
        out["u"] = u(x, t)
    if need & {"u_x", "u_t"}:
        out["u_x"], out["u_t"] = jax.grad(u, argnums=(0, 1))(x, t)
    if need & {"u_xx", "u_tt", "u_xt"}:
        (hxx, hxt), (_, htt) = jax.hessian(u, argnums=(0, 1))(x, t)
        out["u_xx"], out["u_tt"], out["u_xt"] = hxx, htt, hxt
    return {k: out[k] for k in terms}


def derivatives(
    u: ScalarField,
    terms: Iterable[str],
    x: Float[Array, " n"],
    t: Float[Array, " n"],
    method: str = DEFAULT_METHOD,
) -> dict[str, Float[Array, " n"]]:
    """Evaluate the requested terms of ``u`` at the points ``(x[i], t[i])``.

    ``u`` maps two scalars to a scalar. Returns a dict ``term -> array of shape (n,)``.
    """
    terms = _check_terms(terms)
    point = {"forward": _point_forward, "reverse": _point_reverse}[check_method(method)]
    return jax.vmap(lambda x_, t_: point(u, terms, x_, t_))(x, t)
