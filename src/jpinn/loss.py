"""The PINN loss as a pure function of a flat parameter vector (PAPER.md section 2).

    loss(w) = MSE(residual) + MSE(initial) + MSE(boundary)

each term averaged over its own points, weights 1 (what produced the study's numbers).
A term with several parts (the wave's initial value and velocity, its two Dirichlet ends)
is the sum of their MSEs. ``mse_factor = 0.5`` gives the 1/(2n) factors of the paper's
equation instead. Residuals are evaluated per point and vmapped over the points by
``jpinn.derivatives``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float

from .data import Collocation
from .derivatives import DEFAULT_METHOD, ScalarField, check_method, derivatives
from .pdes import AbstractPDE

COMPONENTS = ("residual", "initial", "boundary")


def _mse(parts: tuple[Array, ...]) -> Array:
    return sum(jnp.mean(jnp.square(p)) for p in parts)


def loss_components(
    pde: AbstractPDE,
    u: ScalarField,
    data: Collocation,
    *,
    method: str = DEFAULT_METHOD,
    mse_factor: float = 1.0,
) -> dict[str, Float[Array, ""]]:
    """The three named loss terms of any scalar field ``u(x, t)``, not only a network.

    Passing ``pde.exact`` checks a problem's definition: every term must vanish.
    """
    res = data.residual_points
    d = derivatives(u, pde.residual_terms, res[:, 0], res[:, 1], method)
    residual = pde.residual(d, res[:, 0], res[:, 1])
    ini = data.initial_points
    d0 = derivatives(u, pde.initial_terms, ini[:, 0], ini[:, 1], method)
    left, right = data.boundary_left, data.boundary_right
    dl = derivatives(u, pde.boundary_terms, left[:, 0], left[:, 1], method)
    dr = derivatives(u, pde.boundary_terms, right[:, 0], right[:, 1], method)
    return {
        "residual": mse_factor * _mse((residual,)),
        "initial": mse_factor * _mse(pde.initial_residuals(d0, ini[:, 0])),
        "boundary": mse_factor * _mse(pde.boundary_residuals(dl, dr, left[:, 1])),
    }


class PINNLoss(eqx.Module):
    """``f(w) -> (total, {"residual", "initial", "boundary"})`` over a flat parameter vector.

    A pytree (the collocation arrays are its leaves), so it can be passed to jitted
    functions as an argument rather than baked in as constants. Build it with
    ``build_loss``; ``loss.model(w)`` turns a flat vector back into the network.
    """

    pde: AbstractPDE
    data: Collocation
    model_static: Any = eqx.field(static=True)
    unravel: Callable[[Array], Any] = eqx.field(static=True)
    method: str = eqx.field(static=True, default=DEFAULT_METHOD)
    mse_factor: float = eqx.field(static=True, default=1.0)

    def model(self, w: Float[Array, " p"]):
        """The network with parameters ``w``."""
        return eqx.combine(self.unravel(w), self.model_static)

    def components(self, w: Float[Array, " p"]) -> dict[str, Float[Array, ""]]:
        model = self.model(w)
        return loss_components(
            self.pde, model, self.data, method=self.method, mse_factor=self.mse_factor
        )

    def __call__(self, w: Float[Array, " p"]) -> tuple[Float[Array, ""], dict[str, Float[Array, ""]]]:
        parts = self.components(w)
        return parts["residual"] + parts["initial"] + parts["boundary"], parts


def flatten_model(model) -> tuple[Float[Array, " p"], Callable[[Array], Any], Any]:
    """Split a model into its flat parameter vector, the unravel function and its static part."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    w, unravel = ravel_pytree(params)
    return w, unravel, static


def build_loss(
    pde: AbstractPDE,
    model,
    data: Collocation,
    *,
    method: str = DEFAULT_METHOD,
    mse_factor: float = 1.0,
) -> tuple[PINNLoss, Float[Array, " p"]]:
    """The loss of ``model`` on ``pde`` and ``data``, and the model's flat parameters ``w0``."""
    check_method(method)
    if not (isinstance(mse_factor, (int, float)) and mse_factor > 0 and mse_factor < float("inf")):
        raise ValueError(f"loss.mse_factor: must be a finite number > 0, got {mse_factor!r}")
    w0, unravel, static = flatten_model(model)
    return PINNLoss(pde, data, static, unravel, method, float(mse_factor)), w0


def value_and_grad(f: PINNLoss, w: Float[Array, " p"]):
    """``((loss, components), grad)`` of a loss at ``w``."""
    return jax.value_and_grad(f, has_aux=True)(w)
