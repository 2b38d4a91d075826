"""The study's network: an MLP on raw (x, t) with tanh, Xavier-normal weights, zero biases."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._registry import check_int
from ..derivatives import taylor_mlp


def xavier_normal(key: PRNGKeyArray, shape: tuple[int, int], dtype) -> Array:
    """Glorot/Xavier normal with gain 1 for a weight of shape (fan_out, fan_in).

    A plain (untruncated) normal with std sqrt(2 / (fan_in + fan_out)), as PyTorch's
    ``xavier_normal_`` that the study used.
    """
    fan_out, fan_in = shape
    std = jnp.sqrt(2.0 / (fan_in + fan_out)).astype(dtype)
    return std * jax.random.normal(key, shape, dtype)


class MLP(eqx.Module):
    """u(x, t) = W_L tanh(... tanh(W_1 [x, t] + b_1) ...) + b_L.

    ``depth`` is the number of hidden layers (3 in the study), ``width`` their size;
    the parameter count is 2 w^2 + 6 w + 1 for depth 3.
    """

    layers: tuple[eqx.nn.Linear, ...]
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)

    def __init__(self, width: int = 50, depth: int = 3, *, key: PRNGKeyArray, dtype=jnp.float32):
        self.width = check_int("model.width", width)
        self.depth = check_int("model.depth", depth)
        sizes = [2] + [width] * depth + [1]
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

    def __call__(self, x: Float[Array, ""], t: Float[Array, ""]) -> Float[Array, ""]:
        """The network at one point (vmap it for a batch)."""
        h = jnp.stack([x, t])
        for layer in self.layers[:-1]:
            h = jnp.tanh(layer(h))
        return self.layers[-1](h)[0]

    def taylor_terms(self, x: Float[Array, " n"], t: Float[Array, " n"], terms) -> dict[str, Float[Array, " n"]]:
        """u and the named derivative terms at the points (x[i], t[i]), by batched
        second-order Taylor propagation (``jpinn.derivatives.taylor_mlp``)."""
        return taylor_mlp(
            [layer.weight for layer in self.layers], [layer.bias for layer in self.layers], x, t, terms
        )

    def predict(self, points: Float[Array, "n 2"]) -> Float[Array, " n"]:
        """The network at a batch of points, columns (x, t)."""
        return jax.vmap(self)(points[:, 0], points[:, 1])


def n_parameters(width: int, depth: int) -> int:
    """Number of weights and biases of ``MLP(width, depth)``."""
    return 2 * width + width + (depth - 1) * (width * width + width) + width + 1
