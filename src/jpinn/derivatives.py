"""How the PDE terms u, u_x, u_t, u_xx, u_tt, u_xt of a scalar field u(x, t) are computed.

PDE definitions never choose a differentiation method: they name the terms they need and
this module returns them, evaluated at a batch of points. Three methods are offered:

- ``"reverse"``: nested reverse mode (``jax.grad`` for first derivatives, ``jax.hessian``
  for second ones), per point, vmapped over the points. The simple reference; works for
  any field.
- ``"forward"``: nested forward mode (``jax.jvp`` of ``jax.jvp``) along the coordinate
  directions, per point, vmapped over the points, so each layer runs as one
  matrix-matrix product for the whole batch. Works for any field.
- ``"taylor"``: second-order Taylor mode written out for a tanh network
  (``taylor_mlp``): the value and exactly the requested derivative "streams" travel
  through the layers together, all streams of a layer in one matrix product (for the
  wave: u, u_x, u_t, u_xx, u_tt, five streams where nested ``jvp`` carries eight), and the
  tanh chain rule is applied once per stream, in closed form. It needs a field that
  implements ``taylor_terms(x, t, terms)`` (a ``TaylorField``; ``jpinn.models.MLP`` does).
  ``jax.experimental.jet`` does the same generically but was no faster than nested
  ``jvp`` here (it carries u twice and its tanh rule is a general series recursion).

- ``"auto"`` (the default): reverse mode when the terms are u_x and u_t without second
  derivatives (one backward pass yields both; Taylor mode would carry three streams),
  otherwise ``taylor`` when the field supports it, else nested forward mode for second
  derivatives and reverse mode for first ones. This was the fastest choice measured on
  the 2-core CPU for each study PDE at widths 50 and 200 (convection: reverse 10-20%
  faster than taylor; reaction, one direction: taylor 1.5x faster than reverse; wave:
  taylor 1.6-2x faster than nested forward; ``benchmarks/cost.py --methods``).

All methods give the same numbers to dtype tolerance (tested).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, runtime_checkable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

TERMS = ("u", "u_x", "u_t", "u_xx", "u_tt", "u_xt")
METHODS = ("auto", "taylor", "forward", "reverse")
DEFAULT_METHOD = "auto"

ScalarField = Callable[[Float[Array, ""], Float[Array, ""]], Float[Array, ""]]


@runtime_checkable
class TaylorField(Protocol):
    """A field that evaluates its own derivative terms on a batch (the ``taylor`` method)."""

    def taylor_terms(
        self, x: Float[Array, " n"], t: Float[Array, " n"], terms: tuple[str, ...]
    ) -> dict[str, Float[Array, " n"]]: ...


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


_BASIS = {"x": (1.0, 0.0), "t": (0.0, 1.0)}
_SECOND = {"u_xx": ("x", "x"), "u_tt": ("t", "t"), "u_xt": ("x", "t")}


def _point_forward(u: ScalarField, terms: tuple[str, ...], x, t) -> dict[str, Array]:
    # Second derivatives: for each pair of directions (a, b), one jvp along b of the jvp
    # along a; vmapping over the pairs evaluates the primal u(x, t) once and yields u, u_a
    # and u_b as by-products. First derivatives not covered that way: one jvp per
    # direction, vmapped over the directions.
    need = set(terms)
    out: dict[str, Array] = {}
    pairs = [(name, *_SECOND[name]) for name in _SECOND if name in need]
    as_vec = lambda names: jnp.asarray([_BASIS[n] for n in names], dtype=x.dtype)  # noqa: E731
    if pairs:
        v1, v2 = as_vec([p[1] for p in pairs]), as_vec([p[2] for p in pairs])

        def nested(a, b):
            inner = lambda x_, t_: jax.jvp(u, (x_, t_), (a[0], a[1]))  # noqa: E731
            (value, d_a), (d_b, d_ab) = jax.jvp(inner, (x, t), (b[0], b[1]))
            return value, d_a, d_b, d_ab

        value, d_a, d_b, d_ab = jax.vmap(nested)(v1, v2)
        out["u"] = value[0]
        for k, (name, a, b) in enumerate(pairs):
            out[name] = d_ab[k]
            out[f"u_{a}"], out[f"u_{b}"] = d_a[k], d_b[k]
    first = [n for n in ("x", "t") if f"u_{n}" in need and f"u_{n}" not in out]
    if first:
        value, d = jax.vmap(lambda v: jax.jvp(u, (x, t), (v[0], v[1])))(as_vec(first))
        out["u"] = value[0]
        for k, n in enumerate(first):
            out[f"u_{n}"] = d[k]
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


def taylor_mlp(
    weights: Sequence[Float[Array, "out in"]],
    biases: Sequence[Float[Array, " out"]],
    x: Float[Array, " n"],
    t: Float[Array, " n"],
    terms: Iterable[str],
) -> dict[str, Float[Array, " n"]]:
    """The terms of u(x, t) = W_L tanh(... tanh(W_1 [x, t] + b_1) ...) + b_L on a batch.

    Second-order forward (Taylor) propagation. Each hidden layer carries the activation h
    and its derivatives h_x, h_t, h_xx, h_tt, h_xt (only those the terms need) as
    ``(n, width)`` "streams". A linear layer maps every stream by the same weight (the bias
    only enters the value), so the streams are stacked into one ``(k n, width)`` matrix and
    multiplied once; tanh then acts per stream with a = tanh(z), s = 1 - a^2:

        h = a,   h_i = s z_i,   h_ij = s z_ij - 2 a s z_i z_j.

    The first layer's input derivatives are constant (z_x = W[:, 0], z_t = W[:, 1],
    z_ij = 0), so it is done in closed form without a matrix product.
    """
    terms = _check_terms(terms)
    need = set(terms)
    second = [name[2:] for name in ("u_xx", "u_tt", "u_xt") if name in need]
    first = [d for d in ("x", "t") if f"u_{d}" in need or any(d in ij for ij in second)]
    keys = ["", *first, *second]  # stream names: value, first, second derivatives
    n = x.shape[0]

    w1, b1 = weights[0], biases[0]
    a = jnp.tanh(x[:, None] * w1[:, 0] + t[:, None] * w1[:, 1] + b1)
    s = 1 - a * a
    column = {"x": w1[:, 0], "t": w1[:, 1]}
    streams = {"": a}
    streams.update({i: s * column[i] for i in first})
    streams.update({ij: -2 * a * s * column[ij[0]] * column[ij[1]] for ij in second})

    def linear(streams, weight):
        stacked = jnp.concatenate([streams[k] for k in keys], axis=0)
        z = stacked @ weight.T
        return {k: z[i * n : (i + 1) * n] for i, k in enumerate(keys)}

    for weight, bias in zip(weights[1:-1], biases[1:-1]):
        z = linear(streams, weight)
        a = jnp.tanh(z[""] + bias)
        s = 1 - a * a
        streams = {"": a}
        streams.update({i: s * z[i] for i in first})
        streams.update({ij: s * z[ij] - 2 * a * s * z[ij[0]] * z[ij[1]] for ij in second})
    z = linear(streams, weights[-1])
    out = {("u_" + k if k else "u"): v[:, 0] for k, v in z.items()}
    out["u"] = out["u"] + biases[-1][0]
    return {k: out[k] for k in terms}


def resolve_method(u, terms: Iterable[str], method: str = DEFAULT_METHOD) -> str:
    """The concrete method (``taylor``, ``forward`` or ``reverse``) used for ``u`` and ``terms``."""
    terms = _check_terms(terms)
    if check_method(method) == "auto":
        second = any(term in _SECOND for term in terms)
        both_first = {"u_x", "u_t"} <= set(terms)
        if isinstance(u, TaylorField) and (second or not both_first):
            return "taylor"
        return "forward" if second else "reverse"
    if method == "taylor" and not isinstance(u, TaylorField):
        raise ValueError(
            f"derivatives: method 'taylor' needs a field with taylor_terms(x, t, terms) "
            f"(jpinn.models.MLP has it), got {type(u).__name__}; use auto, forward or reverse"
        )
    return method


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
    method = resolve_method(u, terms, method)
    if method == "taylor":
        return u.taylor_terms(x, t, terms)
    point = {"forward": _point_forward, "reverse": _point_reverse}[method]
    return jax.vmap(lambda x_, t_: point(u, terms, x_, t_))(x, t)
