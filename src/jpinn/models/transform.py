"""Hard constraints: a model whose output is transformed so that conditions hold exactly."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
from jaxtyping import Array, Float


class OutputTransform(eqx.Module):
    """``fields(p) = transform(p, model(p))`` for one point ``p`` (``(d,)``) and the wrapped
    model's fields ``(k,)``.

    Example, u = 0 on the edges of [0, 1]^2 by construction::

        def vanish_on_edges(p, u):
            x, y = p
            return x * (1 - x) * y * (1 - y) * u

        model = OutputTransform(MLP(in_size=2, key=key), vanish_on_edges)

    The condition it enforces can then be left out of the problem. A wrapped model has no
    Taylor streams of its own: ``derivatives=auto`` uses nested forward mode for second
    derivatives and reverse mode for first ones (``jpinn.derivatives``). ``transform`` is
    part of the compiled program (a static field), so it must be a pure JAX function.
    """

    model: eqx.Module
    transform: Callable[[Float[Array, " d"], Float[Array, " k"]], Float[Array, " k"]] = eqx.field(static=True)

    def __call__(self, p: Float[Array, " d"]) -> Float[Array, " k"]:
        return self.transform(p, self.model(p))

    def predict(self, points: Float[Array, "n d"]) -> Float[Array, "n k"]:
        return jax.vmap(self)(points)
