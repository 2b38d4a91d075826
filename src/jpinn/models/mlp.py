"""The study's network: a tanh MLP, Xavier-normal weights, zero biases, for any number of
inputs (coordinates) and outputs (fields); ``activation`` sin or gelu in place of tanh
(Taylor-mode derivatives for all three)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._registry import check_int
from ..derivatives import activation_function, taylor_mlp


def xavier_normal(key: PRNGKeyArray, shape: tuple[int, int], dtype) -> Array:
    """Glorot/Xavier normal with gain 1 for a weight of shape (fan_out, fan_in).

    A plain (untruncated) normal with std sqrt(2 / (fan_in + fan_out)), as PyTorch's
    ``xavier_normal_`` that the study used.
    """
    fan_out, fan_in = shape
    std = jnp.sqrt(2.0 / (fan_in + fan_out)).astype(dtype)
    return std * jax.random.normal(key, shape, dtype)


def _check_scaling(scaling, in_size: int):
    if scaling is None:
        return None
    lower, upper = (tuple(float(v) for v in side) for side in scaling)
    if len(lower) != in_size or len(upper) != in_size or not all(lo < hi for lo, hi in zip(lower, upper)):
        raise ValueError(f"model.input_scaling: needs {in_size} lower < upper bounds, got {scaling!r}")
    return lower, upper


class MLP(eqx.Module):
    """fields(p) = W_L tanh(... tanh(W_1 s(p) + b_1) ...) + b_L (``activation``: tanh, sin or
    gelu).

    ``depth`` is the number of hidden layers (3 in the study), ``width`` their size,
    ``in_size`` the number of coordinates (2 for the study's (x, t)) and ``out_size`` the
    number of fields (1). ``input_scaling``: ``(lower, upper)`` bounds of the domain, so that
    s(p) maps the box onto [-1, 1]^d; None (the study) feeds the raw coordinates. The
    parameter count is ``n_parameters(width, depth, in_size, out_size)``.
    """

    layers: tuple[eqx.nn.Linear, ...]
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    in_size: int = eqx.field(static=True)
    out_size: int = eqx.field(static=True)
    input_scaling: tuple[tuple[float, ...], tuple[float, ...]] | None = eqx.field(static=True)
    activation: str = eqx.field(static=True)

    def __init__(self, width: int = 50, depth: int = 3, *, in_size: int = 2, out_size: int = 1,
                 input_scaling=None, activation: str = "tanh", key: PRNGKeyArray, dtype=jnp.float32):
        self.width = check_int("model.width", width)
        self.depth = check_int("model.depth", depth)
        self.in_size = check_int("model.in_size", in_size)
        self.out_size = check_int("model.out_size", out_size)
        self.input_scaling = _check_scaling(input_scaling, in_size)
        activation_function(activation)  # a one-line error for an unknown name
        self.activation = activation
        sizes = [in_size] + [width] * depth + [out_size]
        keys = jax.random.split(key, len(sizes) - 1)
        layers = []
        for k, fan_in, fan_out in zip(keys, sizes[:-1], sizes[1:]):
            layer = eqx.nn.Linear(fan_in, fan_out, key=k, dtype=dtype)
            layer = eqx.tree_at(
                lambda lin: (lin.weight, lin.bias),
                layer,
                (xavier_normal(k, (fan_out, fan_in), dtype), jnp.zeros((fan_out,), dtype)),
            )
            layers.append(layer)
        self.layers = tuple(layers)

    def _scale(self, p):
        # s(p) = 2 (p - lower) / (upper - lower) - 1, per coordinate; its Jacobian is diag(scale)
        lower, upper = (jnp.asarray(b, p.dtype) for b in self.input_scaling)
        return 2 * (p - lower) / (upper - lower) - 1

    def _scale_factors(self, dtype):
        lower, upper = (jnp.asarray(b, dtype) for b in self.input_scaling)
        return 2 / (upper - lower)

    def __call__(self, p: Float[Array, " d"]) -> Float[Array, " k"]:
        """The fields at one point (vmap it for a batch)."""
        h = p if self.input_scaling is None else self._scale(p)
        sigma = jnp.tanh if self.activation == "tanh" else activation_function(self.activation)
        for layer in self.layers[:-1]:
            h = sigma(layer(h))
        return self.layers[-1](h)

    def taylor_streams(self, points: Float[Array, "n d"], first, second):
        """The fields and their derivative streams at the rows of ``points``, by batched
        second-order Taylor propagation (``jpinn.derivatives.taylor_mlp``). With input
        scaling, the first weight absorbs the scale (chain rule: d/dp_i = scale_i d/ds_i)."""
        weights = [layer.weight for layer in self.layers]
        if self.input_scaling is not None:
            points = self._scale(points)
            weights[0] = weights[0] * self._scale_factors(points.dtype)
            # the value must see the unscaled-weight product W s(p): undo it on the inputs
            points = points / self._scale_factors(points.dtype)
        return taylor_mlp(weights, [layer.bias for layer in self.layers], points, first, second, self.activation)

    def predict(self, points: Float[Array, "n d"]) -> Float[Array, "n k"]:
        """The fields at a batch of points (one column per field)."""
        return jax.vmap(self)(points)


def n_parameters(width: int, depth: int, in_size: int = 2, out_size: int = 1) -> int:
    """Number of weights and biases of ``MLP(width, depth, in_size=, out_size=)``."""
    return in_size * width + width + (depth - 1) * (width * width + width) + out_size * (width + 1)
