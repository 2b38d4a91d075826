"""Hessian-vector products of a scalar loss, matrix-free.

Forward-over-reverse: H v = d/de grad f(w + e v) at e = 0, i.e. ``jax.jvp`` of
``jax.grad``. ``linearize_hvp`` linearises the gradient once at w and returns a function
v -> H v that reuses the forward pass for every product (what CG and the Nystrom sketch
want within one optimizer step); ``hvp_block`` applies it to a block of vectors.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
from jaxtyping import Array, Float


def scalar_loss(f: Callable) -> Callable:
    """``f`` as a scalar function: jpinn losses return (loss, aux), plain ones a scalar."""

    def scalar(w):
        out = f(w)
        return out[0] if isinstance(out, tuple) else out

    return scalar


def _grad(f: Callable) -> Callable:
    return jax.grad(scalar_loss(f))


def hvp(f: Callable, w: Float[Array, " p"], v: Float[Array, " p"]) -> Float[Array, " p"]:
    """H(w) v for the Hessian H of ``f`` at ``w`` (forward-over-reverse)."""
    return jax.jvp(_grad(f), (w,), (v,))[1]


def linearize_hvp(f: Callable, w: Float[Array, " p"]) -> tuple[Float[Array, " p"], Callable]:
    """The gradient at ``w`` and v -> H(w) v, sharing one linearisation of the gradient."""
    grad, hvp_fn = jax.linearize(_grad(f), w)
    return grad, hvp_fn


def value_grad_hvp(f: Callable, w: Float[Array, " p"]) -> tuple[Float[Array, ""], Float[Array, " p"], Callable]:
    """Loss, gradient and v -> H(w) v at ``w`` from one linearisation of value-and-gradient."""
    (loss, grad), linear = jax.linearize(jax.value_and_grad(scalar_loss(f)), w)
    return loss, grad, lambda v: linear(v)[1]


def hvp_block(hvp_fn: Callable, vectors: Float[Array, "k p"], batch_size: int | None = 1) -> Float[Array, "k p"]:
    """H v_i for each row v_i of ``vectors``, ``batch_size`` rows at a time (vmapped within
    a batch, ``lax.map`` across batches; None: all rows in one vmapped pass).

    One row at a time is the default: a vmapped pass multiplies every intermediate array
    by the number of rows (60 rows of the width-200 wave loss at 10,000 points asked XLA for
    31 GB), and on the CPU it was no faster (``benchmarks/cost.py``: the sketch costs about
    60 single products either way).
    """
    if batch_size is None or batch_size >= vectors.shape[0]:
        return jax.vmap(hvp_fn)(vectors)
    return jax.lax.map(hvp_fn, vectors, batch_size=batch_size)
