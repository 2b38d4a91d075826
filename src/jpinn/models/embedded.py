"""Networks with input embeddings: random Fourier features (Tancik et al. 2020; Wang et
al. 2021), exact periodic embeddings, and the modified MLP of Wang, Teng and Perdikaris
(2021), jaxpi's default.

- **Periodic embedding** (``periodic``: coordinate indices with their periods): each such
  coordinate x of period P becomes cos(2 pi k x / P), sin(2 pi k x / P) for k = 1 ..
  ``harmonics``, so the network is exactly periodic in it (``tests/test_models.py``); the
  other coordinates pass unchanged (scaled onto [-1, 1] with ``input_scaling``).
- **Fourier features** (``fourier_features`` m > 0): the (embedded) input v becomes
  [cos(2 pi B v), sin(2 pi B v)] with a fixed B of m x dim(v) entries drawn from N(0, sigma^2)
  at initialisation. B is not trained (it is not in the flat parameter vector).
- ``FourierMLP``: the embedding, then the MLP (tanh, sin or gelu).
- ``ModifiedMLP``: the embedding e, then U = s(W_u e + b_u), V = s(W_v e + b_v),
  H_1 = s(W_1 e + b_1), H_{k+1} = (1 - Z_k) * U + Z_k * V with Z_k = s(W_{k+1} H_k + b_{k+1}),
  and a linear output layer.

Neither has Taylor-mode streams: ``derivatives=auto`` computes their second derivatives by
nested forward mode and first ones by reverse mode (the measured costs: README, "Networks").
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._registry import check_int
from ..derivatives import activation_function
from .mlp import MLP, _check_scaling, xavier_normal


def _check_periodic(periodic, in_size: int) -> tuple[tuple[int, float], ...]:
    out = []
    for item in periodic or ():
        index, period = item
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < in_size:
            raise ValueError(f"model.periodic: coordinate index must be in [0, {in_size}), got {index!r}")
        if not (isinstance(period, (int, float)) and math.isfinite(period) and period > 0):
            raise ValueError(f"model.periodic: period must be a finite number > 0, got {period!r}")
        out.append((index, float(period)))
    if len({i for i, _ in out}) != len(out):
        raise ValueError("model.periodic: a coordinate is listed twice")
    return tuple(out)


class Embedding(eqx.Module):
    """The input embedding (module docstring): periodic coordinates, then Fourier features."""

    in_size: int = eqx.field(static=True)
    periodic: tuple[tuple[int, float], ...] = eqx.field(static=True)
    harmonics: int = eqx.field(static=True)
    input_scaling: tuple[tuple[float, ...], tuple[float, ...]] | None = eqx.field(static=True)
    features: tuple[tuple[float, ...], ...] = eqx.field(static=True)  # B, m rows (fixed)

    def __init__(self, in_size: int, *, periodic=(), harmonics: int = 1, fourier_features: int = 0,
                 sigma: float = 1.0, input_scaling=None, key: PRNGKeyArray):
        self.in_size = check_int("model.in_size", in_size)
        self.periodic = _check_periodic(periodic, in_size)
        self.harmonics = check_int("model.harmonics", harmonics)
        self.input_scaling = _check_scaling(input_scaling, in_size)
        check_int("model.fourier_features", fourier_features, 0)
        if not (isinstance(sigma, (int, float)) and not isinstance(sigma, bool) and math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"model.sigma: must be a finite number > 0, got {sigma!r}")
        shape = (fourier_features, self.plain_size)
        if isinstance(key, jax.core.Tracer):  # built abstractly (a config's shape check): only the shape counts
            b = np.zeros(shape)
        else:
            b = sigma * np.asarray(jax.random.normal(key, shape, jnp.float32))  # the same B in any precision
        self.features = tuple(tuple(float(v) for v in row) for row in b.tolist())

    @property
    def plain_size(self) -> int:
        """The size after the periodic embedding (before Fourier features)."""
        return self.in_size + len(self.periodic) * (2 * self.harmonics - 1)

    @property
    def out_size(self) -> int:
        return 2 * len(self.features) if self.features else self.plain_size

    def __call__(self, p: Float[Array, " d"]) -> Float[Array, " e"]:
        if self.input_scaling is not None:
            lower, upper = (jnp.asarray(b, p.dtype) for b in self.input_scaling)
            scaled = 2 * (p - lower) / (upper - lower) - 1
        else:
            scaled = p
        periods = dict(self.periodic)
        parts = []
        for i in range(self.in_size):
            if i in periods:
                k = jnp.arange(1, self.harmonics + 1, dtype=p.dtype)
                angle = 2 * jnp.pi * k * p[i] / periods[i]
                parts += [jnp.cos(angle), jnp.sin(angle)]
            else:
                parts.append(scaled[i : i + 1])
        v = jnp.concatenate(parts)
        if not self.features:
            return v
        angle = 2 * jnp.pi * (jnp.asarray(self.features, p.dtype) @ v)
        return jnp.concatenate([jnp.cos(angle), jnp.sin(angle)])


class FourierMLP(eqx.Module):
    """The embedding (periodic coordinates, Fourier features), then an MLP."""

    embedding: Embedding
    mlp: MLP

    def __init__(self, width: int = 50, depth: int = 3, *, in_size: int = 2, out_size: int = 1, fourier_features: int = 64,
                 sigma: float = 1.0, periodic=(), harmonics: int = 1, input_scaling=None, activation: str = "tanh",
                 key: PRNGKeyArray, dtype=jnp.float32):
        k_embed, k_mlp = jax.random.split(key)
        self.embedding = Embedding(in_size, periodic=periodic, harmonics=harmonics, fourier_features=fourier_features,
                                   sigma=sigma, input_scaling=input_scaling, key=k_embed)
        self.mlp = MLP(width, depth, in_size=self.embedding.out_size, out_size=out_size, activation=activation,
                       key=k_mlp, dtype=dtype)

    def __call__(self, p: Float[Array, " d"]) -> Float[Array, " k"]:
        return self.mlp(self.embedding(p))

    def predict(self, points: Float[Array, "n d"]) -> Float[Array, "n k"]:
        return jax.vmap(self)(points)


def _linear(key, fan_in: int, fan_out: int, dtype) -> eqx.nn.Linear:
    layer = eqx.nn.Linear(fan_in, fan_out, key=key, dtype=dtype)
    return eqx.tree_at(lambda lin: (lin.weight, lin.bias), layer,
                       (xavier_normal(key, (fan_out, fan_in), dtype), jnp.zeros((fan_out,), dtype)))


class ModifiedMLP(eqx.Module):
    """The modified MLP (module docstring) after the embedding; ``depth`` hidden layers."""

    embedding: Embedding
    encoder_u: eqx.nn.Linear
    encoder_v: eqx.nn.Linear
    layers: tuple[eqx.nn.Linear, ...]
    activation: str = eqx.field(static=True)

    def __init__(self, width: int = 50, depth: int = 3, *, in_size: int = 2, out_size: int = 1, fourier_features: int = 0,
                 sigma: float = 1.0, periodic=(), harmonics: int = 1, input_scaling=None, activation: str = "tanh",
                 key: PRNGKeyArray, dtype=jnp.float32):
        check_int("model.width", width)
        check_int("model.depth", depth)
        activation_function(activation)
        self.activation = activation
        keys = jax.random.split(key, depth + 4)
        self.embedding = Embedding(in_size, periodic=periodic, harmonics=harmonics, fourier_features=fourier_features,
                                   sigma=sigma, input_scaling=input_scaling, key=keys[0])
        e = self.embedding.out_size
        self.encoder_u = _linear(keys[1], e, width, dtype)
        self.encoder_v = _linear(keys[2], e, width, dtype)
        sizes = [e] + [width] * depth + [out_size]
        self.layers = tuple(_linear(k, a, b, dtype) for k, a, b in zip(keys[3:], sizes[:-1], sizes[1:]))

    def __call__(self, p: Float[Array, " d"]) -> Float[Array, " k"]:
        sigma = activation_function(self.activation)
        e = self.embedding(p)
        u, v = sigma(self.encoder_u(e)), sigma(self.encoder_v(e))
        h = e
        for layer in self.layers[:-1]:
            z = sigma(layer(h))
            h = (1 - z) * u + z * v
        return self.layers[-1](h)

    def predict(self, points: Float[Array, "n d"]) -> Float[Array, "n k"]:
        return jax.vmap(self)(points)


__all__ = ["Embedding", "FourierMLP", "ModifiedMLP"]
