"""Derivative terms of any field with respect to any coordinate, up to fourth order.

Problems never choose a differentiation method: a condition names the terms it reads and
this module evaluates them on a batch of points. A term is written with the problem's own
names (``Variables``):

- ``"u"``: the field u;
- ``"u_x"``: du/dx; ``"v_y"``: dv/dy;
- ``"u_xy"``: d2u/dxdy (the order of the two coordinates does not matter), ``"u_tt"``;
- ``"u_xxx"``, ``"u_xxxx"``, ``"u_xxy"``: third and fourth derivatives (KdV,
  Kuramoto-Sivashinsky);
- ``"lap_u"``: the Laplacian of u over the spatial coordinates (all but the time one).

Coordinate names may have several characters (``x1 ... x10``); a term whose coordinates can
be split in two ways is refused. Three methods are offered:

- ``"reverse"``: nested reverse mode (``jax.grad``, ``jax.hessian``) per point, vmapped over
  the points. The simple reference; works for any model.
- ``"forward"``: nested forward mode (``jax.jvp`` of ``jax.jvp``) along the coordinate
  directions, per point, vmapped over the points and over the direction pairs, so each
  layer runs as one matrix-matrix product for the whole batch. Works for any model.
- ``"taylor"``: second-order Taylor mode written out for a tanh network (``taylor_mlp``):
  the value and exactly the requested derivative "streams" travel through the layers
  together, all streams of a layer in one matrix product (for the wave: u, u_x, u_t,
  u_xx, u_tt, five streams where nested ``jvp`` carries eight), and the tanh chain rule is
  applied once per stream, in closed form. Every output field comes out of the same
  streams. It needs a model with ``taylor_streams`` (a ``TaylorModel``; ``jpinn.models.MLP``
  has it). ``jax.experimental.jet`` does the same generically but was no faster than nested
  ``jvp`` here (it carries u twice and its tanh rule is a general series recursion).

- ``"auto"`` (the default): reverse mode when the terms are first derivatives of one field
  in two or more directions and no second derivative (one backward pass yields them all;
  Taylor mode would carry one stream per direction), otherwise ``taylor`` when the model
  supports it, else nested forward mode for second derivatives and reverse mode for first
  ones. This was the fastest choice measured on the 2-core CPU for each study PDE at
  widths 50 and 200 (convection: reverse 10-20% faster than taylor; reaction, one
  direction: taylor 1.5x faster than reverse; wave: taylor 1.6-2x faster than nested
  forward; ``benchmarks/cost.py --compare``).

Terms of order three and four are evaluated by nested forward mode (``jax.jvp`` of
``jax.jvp`` ...) per point, vmapped over the points, whatever the method: the methods above
compute the terms of order two and less, and the higher ones are added beside them (Taylor
mode carries at most second-order streams).

All methods give the same numbers to dtype tolerance (tested against ``jax.jacfwd`` and
``jax.hessian``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, runtime_checkable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

METHODS = ("auto", "taylor", "forward", "reverse")
MAX_ORDER = 4
DEFAULT_METHOD = "auto"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*\Z")

PointFunction = Callable[[Float[Array, " d"]], Float[Array, " k"]]
Stream = tuple[int, ...]  # () the value, (i,) d/dx_i, (i, j) with i <= j d2/dx_i dx_j


@runtime_checkable
class TaylorModel(Protocol):
    """A model that propagates derivative streams itself (the ``taylor`` method)."""

    def taylor_streams(
        self, points: Float[Array, "n d"], first: tuple[int, ...], second: tuple[tuple[int, int], ...]
    ) -> dict[Stream, Float[Array, "n k"]]: ...


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"derivatives: unknown method {method!r}; allowed: {', '.join(METHODS)}")
    return method


class Term(eqx.Module):
    """A parsed term: ``field`` (index), its coordinate indices (``directions``, sorted; as
    many as its order, 0 to ``MAX_ORDER``), or the Laplacian (``laplacian=True``, over
    ``directions``)."""

    name: str
    field: int
    directions: tuple[int, ...]
    laplacian: bool = False

    def streams(self) -> list[Stream]:
        if self.laplacian:
            return [(i, i) for i in self.directions]
        return [self.directions]

    @property
    def high(self) -> bool:
        """Of order three or more (evaluated by nested forward mode, module docstring)."""
        return not self.laplacian and len(self.directions) > 2


class Variables(eqx.Module):
    """The names a problem's terms are written in: its coordinates (inputs, in column order),
    its fields (outputs, in order) and which coordinate is time (excluded from ``lap_``)."""

    coordinates: tuple[str, ...]
    fields: tuple[str, ...] = ("u",)
    time: str | None = None

    def __check_init__(self):
        for kind, names in (("coordinate", self.coordinates), ("field", self.fields)):
            if not names:
                raise ValueError(f"problem: at least one {kind} name is needed")
            for name in names:
                if not isinstance(name, str) or not _NAME.match(name):
                    raise ValueError(f"problem: {kind} name {name!r} must be a letter then letters or digits (no '_')")
            if len(set(names)) != len(names):
                raise ValueError(f"problem: {kind} names repeat: {', '.join(names)}")
        if "lap" in self.fields:
            raise ValueError("problem: 'lap' cannot be a field name (lap_u is the Laplacian)")
        if self.time is not None and self.time not in self.coordinates:
            raise ValueError(f"problem: time coordinate {self.time!r} is not among {', '.join(self.coordinates)}")

    @property
    def space(self) -> tuple[str, ...]:
        return tuple(c for c in self.coordinates if c != self.time)

    def all_terms(self, order: int = 2) -> tuple[str, ...]:
        """Every term up to ``order`` (the Laplacian with the second-order ones)."""
        out = []
        for f in self.fields:
            out.append(f)
            out += [f"{f}_{c}" for c in self.coordinates] if order >= 1 else []
            if order >= 2:
                out += [f"{f}_{a}{b}" for a, b in itertools.combinations_with_replacement(self.coordinates, 2)]
                out.append(f"lap_{f}")
        return tuple(out)

    def _split(self, text: str, most: int = MAX_ORDER) -> list[tuple[int, ...]]:
        # every way of writing text as one to ``most`` coordinate names
        ways = []
        for i, a in enumerate(self.coordinates):
            if text == a:
                ways.append((i,))
            elif text.startswith(a) and most > 1:
                ways += [(i, *rest) for rest in self._split(text[len(a):], most - 1)]
        return ways

    def parse(self, term: str) -> Term:
        """The term named ``term``; a one-line ValueError naming what is allowed otherwise."""
        allowed = f"fields {', '.join(self.fields)}; coordinates {', '.join(self.coordinates)}"
        if not isinstance(term, str):
            raise ValueError(f"unknown derivative term {term!r}; a term is a string such as u, u_x, u_xy or lap_u")
        if term.startswith("lap_"):
            field = term[4:]
            if field not in self.fields:
                raise ValueError(f"unknown derivative term {term!r}: {field!r} is not a field ({allowed})")
            if not self.space:
                raise ValueError(f"derivative term {term!r}: the problem has no spatial coordinate")
            space = tuple(self.coordinates.index(c) for c in self.space)
            return Term(term, self.fields.index(field), space, True)
        field, _, rest = term.partition("_")
        if field not in self.fields:
            raise ValueError(f"unknown derivative term {term!r}: {field!r} is not a field ({allowed})")
        if not _:
            return Term(term, self.fields.index(field), ())
        ways = {tuple(sorted(w)) for w in self._split(rest)}
        if not ways:
            raise ValueError(
                f"unknown derivative term {term!r}: {rest!r} is not one to {MAX_ORDER} coordinates ({allowed}; at most"
                f" order {MAX_ORDER})"
            )
        if len(ways) > 1:
            raise ValueError(f"derivative term {term!r} is ambiguous: {rest!r} splits into coordinates in several ways")
        return Term(term, self.fields.index(field), ways.pop())


STUDY_VARIABLES = Variables(("x", "t"), ("u",), "t")


def _plan(terms: Sequence[Term]) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    """The first-derivative directions and second-derivative pairs the terms need. Pairs are
    ordered diagonal first (coordinate order), then mixed (i < j); directions in coordinate
    order, including both directions of every pair (Taylor mode's streams)."""
    pairs = {s for t in terms for s in t.streams() if len(s) == 2}
    diagonal = sorted(p for p in pairs if p[0] == p[1])
    mixed = sorted(p for p in pairs if p[0] != p[1])
    second = tuple(diagonal + mixed)
    first = sorted({s[0] for t in terms for s in t.streams() if len(s) == 1} | {i for p in second for i in p})
    return tuple(first), second


def _assemble(terms: Sequence[Term], streams: dict[Stream, Array]) -> dict[str, Array]:
    out = {}
    for term in terms:
        if term.laplacian:
            parts = [streams[s][..., term.field] for s in term.streams()]
            total = parts[0]
            for part in parts[1:]:
                total = total + part
            out[term.name] = total
        else:
            out[term.name] = streams[term.directions][..., term.field]
    return out


def _basis(directions, d: int, dtype) -> Array:
    return jnp.asarray([[1.0 if k == i else 0.0 for k in range(d)] for i in directions], dtype=dtype)


def _point_forward(g: PointFunction, terms: Sequence[Term], xs: tuple) -> dict[Stream, Array]:
    # Second derivatives: for each pair of directions (a, b), one jvp along b of the jvp
    # along a; vmapping over the pairs evaluates the primal once and yields the value, the
    # a- and b-derivatives as by-products. First derivatives not covered that way: one jvp
    # per direction, vmapped over the directions. ``xs``: the point's coordinates, as scalars.
    d = len(xs)
    u = lambda *coords: g(jnp.stack(coords))  # noqa: E731
    _, pairs = _plan(terms)
    wanted_first = sorted({s[0] for t in terms for s in t.streams() if len(s) == 1})
    out: dict[Stream, Array] = {}
    if pairs:
        va, vb = _basis([a for a, _ in pairs], d, xs[0].dtype), _basis([b for _, b in pairs], d, xs[0].dtype)

        def nested(a, b):
            inner = lambda *coords: jax.jvp(u, coords, tuple(a[i] for i in range(d)))  # noqa: E731
            (value, d_a), (d_b, d_ab) = jax.jvp(inner, xs, tuple(b[i] for i in range(d)))
            return value, d_a, d_b, d_ab

        value, d_a, d_b, d_ab = jax.vmap(nested)(va, vb)
        out[()] = value[0]
        for k, (a, b) in enumerate(pairs):
            out[(a, b)] = d_ab[k]
            out[(a,)], out[(b,)] = d_a[k], d_b[k]
    first = [i for i in wanted_first if (i,) not in out]
    if first:
        value, deriv = jax.vmap(lambda v: jax.jvp(u, xs, tuple(v[i] for i in range(d))))(_basis(first, d, xs[0].dtype))
        out[()] = value[0]
        for k, i in enumerate(first):
            out[(i,)] = deriv[k]
    if () not in out:
        out[()] = u(*xs)
    return out


def _point_reverse(g: PointFunction, terms: Sequence[Term], xs: tuple) -> dict[Stream, Array]:
    d = len(xs)
    u = lambda *coords: g(jnp.stack(coords))  # noqa: E731
    argnums = tuple(range(d))
    out: dict[Stream, Array] = {}
    if any(t.directions == () and not t.laplacian for t in terms):
        out[()] = u(*xs)
    first = [t for t in terms if len(t.directions) == 1 and not t.laplacian]
    second = [t for t in terms if len(t.directions) == 2 or t.laplacian]
    if first:
        fields = sorted({t.field for t in first})
        if len(fields) == 1:  # one backward pass for the field's whole gradient
            f = fields[0]
            grads = jax.grad(lambda *coords: u(*coords)[f], argnums=argnums)(*xs)
            k = jax.eval_shape(u, *xs).shape[0]
            for i in range(d):
                out[(i,)] = grads[i][None] if k == 1 else jnp.zeros((k,), grads[i].dtype).at[f].set(grads[i])
        else:
            jac = jax.jacrev(u, argnums=argnums)(*xs)  # d arrays (k,)
            for i in range(d):
                out[(i,)] = jac[i]
    if second:
        hess = jax.hessian(u, argnums=argnums)(*xs)  # hess[i][j]: (k,)
        for i in range(d):
            for j in range(i, d):
                out[(i, j)] = hess[i][j]
    return out


ACTIVATIONS = ("tanh", "sin", "gelu")


def activation_function(name: str) -> Callable[[Array], Array]:
    """The elementwise activation ``name`` (``ACTIVATIONS``)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"model.activation: unknown {name!r}; allowed: {', '.join(ACTIVATIONS)}")
    return {"tanh": jnp.tanh, "sin": jnp.sin, "gelu": jax.nn.gelu}[name]


def _activation_and_derivatives(name: str, z):
    # sigma(z), sigma'(z), sigma''(z) elementwise: closed forms for sin, nested jvps otherwise
    if name == "sin":
        a = jnp.sin(z)
        return a, jnp.cos(z), -a
    sigma = activation_function(name)
    first = lambda x: jax.jvp(sigma, (x,), (jnp.ones_like(x),))  # noqa: E731
    (a, s), (_, q) = jax.jvp(first, (z,), (jnp.ones_like(z),))
    return a, s, q


def _taylor_first_layer(weight, bias, columns, first, second, activation="tanh"):
    # z = W p + b with constant input derivatives z_i = W[:, i], z_ij = 0: in closed form.
    z = columns[0][:, None] * weight[:, 0]
    for i in range(1, len(columns)):
        z = z + columns[i][:, None] * weight[:, i]
    column = [weight[:, i] for i in range(len(columns))]
    if activation != "tanh":  # h_i = s z_i, h_ij = q z_i z_j
        a, s, q = _activation_and_derivatives(activation, z + bias)
        streams = {(): a}
        streams.update({(i,): s * column[i] for i in first})
        streams.update({(i, j): q * column[i] * column[j] for i, j in second})
        return streams
    a = jnp.tanh(z + bias)
    s = 1 - a * a
    streams = {(): a}
    streams.update({(i,): s * column[i] for i in first})
    streams.update({(i, j): -2 * a * s * column[i] * column[j] for i, j in second})
    return streams


def taylor_mlp(
    weights: Sequence[Float[Array, "out in"]],
    biases: Sequence[Float[Array, " out"]],
    points: Float[Array, "n d"],
    first: tuple[int, ...],
    second: tuple[tuple[int, int], ...],
    activation: str = "tanh",
) -> dict[Stream, Float[Array, "n k"]]:
    """The value and derivative streams of u(p) = W_L tanh(... tanh(W_1 p + b_1) ...) + b_L
    (or with the ``activation`` sin or gelu in place of tanh: h_ij = s z_ij + q z_i z_j with
    s, q its first and second derivatives at z).

    Second-order forward (Taylor) propagation. Each hidden layer carries the activation h
    and its derivatives h_i (``first``) and h_ij (``second``) as ``(n, width)`` streams. A
    linear layer maps every stream by the same weight (the bias only enters the value), so
    the streams are stacked into one ``(k n, width)`` matrix and multiplied once; tanh then
    acts per stream with a = tanh(z), s = 1 - a^2:

        h = a,   h_i = s z_i,   h_ij = s z_ij - 2 a s z_i z_j.

    The first layer's input derivatives are constant (z_i = W[:, i], z_ij = 0), so it is
    done in closed form without a matrix product. ``second`` pairs need both their
    directions in ``first``. Returns stream -> ``(n, outputs)``.
    """
    keys: list[Stream] = [(), *((i,) for i in first), *second]
    n = points.shape[0]
    columns = [points[:, i] for i in range(points.shape[1])]
    streams = _taylor_first_layer(weights[0], biases[0], columns, first, second, activation)

    def linear(streams, weight):
        stacked = jnp.concatenate([streams[k] for k in keys], axis=0)
        z = stacked @ weight.T
        return {k: z[i * n : (i + 1) * n] for i, k in enumerate(keys)}

    for weight, bias in zip(weights[1:-1], biases[1:-1]):
        z = linear(streams, weight)
        if activation != "tanh":
            a, s, q = _activation_and_derivatives(activation, z[()] + bias)
            streams = {(): a}
            streams.update({(i,): s * z[(i,)] for i in first})
            streams.update({(i, j): s * z[(i, j)] + q * z[(i,)] * z[(j,)] for i, j in second})
            continue
        a = jnp.tanh(z[()] + bias)
        s = 1 - a * a
        streams = {(): a}
        streams.update({(i,): s * z[(i,)] for i in first})
        streams.update({(i, j): s * z[(i, j)] - 2 * a * s * z[(i,)] * z[(j,)] for i, j in second})
    out = linear(streams, weights[-1])
    out[()] = out[()] + biases[-1]
    return out


def _point_high(g: PointFunction, terms: Sequence[Term], xs: tuple) -> dict[Stream, Array]:
    # each term of order >= 3 by nested jvps along its directions, innermost first
    d = len(xs)
    u = lambda *coords: g(jnp.stack(coords))  # noqa: E731
    out: dict[Stream, Array] = {}
    for term in terms:
        f = u
        for i in term.directions:
            e = tuple(jnp.asarray(1.0 if k == i else 0.0, xs[0].dtype) for k in range(d))
            f = (lambda inner, e: lambda *coords: jax.jvp(inner, coords, e)[1])(f, e)
        out[term.directions] = f(*xs)
    return out


def resolve_method(model, terms: Iterable[Term], method: str = DEFAULT_METHOD) -> str:
    """The concrete method (``taylor``, ``forward`` or ``reverse``) used for ``model`` and the
    terms of order two and less in ``terms`` (higher ones: module docstring)."""
    terms = tuple(t for t in terms if not t.high)
    if check_method(method) == "auto":
        second = any(len(t.directions) == 2 or t.laplacian for t in terms)
        first = [t for t in terms if len(t.directions) == 1 and not t.laplacian]
        one_backward = len(first) >= 2 and len({t.field for t in first}) == 1
        if isinstance(model, TaylorModel) and (second or not one_backward):
            return "taylor"
        return "forward" if second else "reverse"
    if method == "taylor" and not isinstance(model, TaylorModel):
        raise ValueError(
            f"derivatives: method 'taylor' needs a model with taylor_streams (jpinn.models.MLP has it), "
            f"got {type(model).__name__}; use auto, forward or reverse"
        )
    return method


def evaluate_terms(
    model: PointFunction,
    terms: Iterable[str],
    points: Float[Array, "n d"],
    variables: Variables = STUDY_VARIABLES,
    method: str = DEFAULT_METHOD,
) -> dict[str, Float[Array, " n"]]:
    """The named terms of ``model`` (a function of one point ``(d,)`` returning its ``k``
    fields ``(k,)``) at every row of ``points``: a dict term -> ``(n,)``."""
    parsed = [variables.parse(t) for t in terms]
    high = [t for t in parsed if t.high]
    parsed = [t for t in parsed if not t.high]
    method = resolve_method(model, parsed, method)
    columns = [points[:, i] for i in range(points.shape[1])]
    out = {}
    if high:
        out = _assemble(high, jax.vmap(lambda *xs: _point_high(model, high, xs))(*columns))
    if not parsed:
        return out
    if method == "taylor":
        first, second = _plan(parsed)
        return {**_assemble(parsed, model.taylor_streams(points, first, second)), **out}
    point = {"forward": _point_forward, "reverse": _point_reverse}[method]
    streams = jax.vmap(lambda *xs: point(model, parsed, xs))(*columns)
    return {**_assemble(parsed, streams), **out}


__all__ = ["ACTIVATIONS", "MAX_ORDER", "METHODS", "DEFAULT_METHOD", "STUDY_VARIABLES", "TaylorModel", "Term", "Variables", "check_method",
           "activation_function", "evaluate_terms", "resolve_method", "taylor_mlp"]
