"""The PINN loss as a pure function of a flat parameter vector (PAPER.md section 2).

    loss(w) = sum over conditions c of  weight_c x MSE_c,   MSE_c = sum over c's parts of
                                                            (sum of squares) / n_c

each condition averaged over its own points (``jpinn.problems.conditions``), in the order
the problem lists them. For the study's problems: MSE(residual) + MSE(initial) +
MSE(boundary), weights 1 (what produced the study's numbers); a term with several parts
(the wave's initial value and velocity, its two Dirichlet ends) is the sum of their MSEs.
``mse_factor = 0.5`` gives the 1/(2n) factors of the paper's equation instead. Derivative
terms come from ``jpinn.derivatives``.

**Inverse problems.** ``build_loss(..., learn=("nu",))`` trains coefficients of the problem
(those its class lists in ``learnable``) with the network: the flat vector w holds the
network's parameters, then one entry per learned coefficient (its log for positive ones,
``"log"``), and the loss evaluates the problem at those values (``PINNLoss.problem_at``).
Optimizers see one vector as always; ``PINNLoss.coefficients(w)`` reads the values back.

**The residual vector.** ``PINNLoss.residuals(w)`` is r(w), every condition's residuals
scaled by sqrt(weight x mse_factor / n_c) and concatenated, so that loss(w) = ||r(w)||^2:
what Gauss-Newton methods linearise.

**Blocks.** A mean of squares is a sum over points, so a large point set can be evaluated
``block_size`` points at a time: a ``lax.scan`` over blocks whose body is rematerialised
(``jax.checkpoint``), so the gradient and the Hessian-vector product recompute one block's
forward pass instead of storing it. The numbers are the same up to summation order; the
point is speed on a CPU: one block's working set (a few derivative streams of
``block_size x width`` floats) stays in the caches, where 10,000 points at once do not.
On the study's 2-core CPU this made the gradient and the Hessian-vector product of the
width-200 network about 1.3-2.3x faster (``benchmarks/cost.py --blocks``). The best block
held about 2^17 floats per stream (512 points at width 200, 2048 at width 50), so
``block_size="auto"`` picks the power of two nearest below 2^17 / (widest layer), within
[256, 8192], on a CPU; on a GPU, where large batches are what it is good at, no blocks.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float

from .data import Collocation, PointSet
from .derivatives import DEFAULT_METHOD, TaylorModel, check_method, evaluate_terms
from .problems import AbstractProblem
from .problems.domain import PeriodicPair

COMPONENTS = ("residual", "initial", "boundary")  # the study's problems' components
POINTS_AXIS = "points"  # the mesh axis the collocation points are split along
AUTO_BLOCK_FLOATS = 2**17  # floats per stream and block on a CPU (benchmarks/cost.py --blocks)


def resolve_block_size(block_size: int | str | None, model=None) -> int | None:
    """``"auto"`` -> the block size for the default backend and this model's widest layer
    (None on GPU/TPU); checks explicit sizes."""
    if block_size == "auto":
        if jax.default_backend() != "cpu":
            return None
        leaves = [a for a in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array)) if a.ndim]
        widest = max((max(a.shape) for a in leaves), default=1)
        block = 2 ** int(math.floor(math.log2(max(AUTO_BLOCK_FLOATS / widest, 1))))
        return min(max(block, 256), 8192)
    if block_size is None:
        return None
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size <= 0:
        raise ValueError(f"loss.block_size: must be an integer >= 1, null or auto, got {block_size!r}")
    return block_size


def _sums_of_squares(residuals: Callable, points, block_size: int | None) -> tuple[Array, ...]:
    """For each residual part, the sum over points of its square.

    ``residuals`` maps a pytree of point arrays (leading axis: the points) to a tuple of
    per-point residual arrays. With ``block_size``, whole blocks run in a rematerialised
    scan and the remainder as one more call.
    """

    def sums(batch):
        return tuple(jnp.sum(jnp.square(r)) for r in residuals(batch))

    n = jax.tree.leaves(points)[0].shape[0]
    if block_size is None or n < 2 * block_size:
        return sums(points)
    blocks = n // block_size
    split = blocks * block_size
    body = jax.checkpoint(sums)
    head = jax.tree.map(lambda a: a[:split].reshape(blocks, block_size, *a.shape[1:]), points)

    def step(total, batch):
        return tuple(a + b for a, b in zip(total, body(batch))), None

    zeros = tuple(jnp.zeros(s.shape, s.dtype) for s in jax.eval_shape(sums, jax.tree.map(lambda a: a[:1], points)))
    total, _ = jax.lax.scan(step, zeros, head)
    if split < n:
        total = tuple(a + b for a, b in zip(total, sums(jax.tree.map(lambda a: a[split:], points))))
    return total


def _sharded_sums(residuals: Callable, points, mesh) -> tuple[Array, ...]:
    """``_sums_of_squares`` with the points split over ``mesh``'s devices: the largest
    leading part whose size the device count divides is constrained to be sharded along
    the points, so each device evaluates its share and XLA adds the partial sums across
    devices (an all-reduce); the few remaining points are evaluated on every device."""
    from jax.sharding import NamedSharding, PartitionSpec

    n = jax.tree.leaves(points)[0].shape[0]
    split = n - n % mesh.size
    spec = NamedSharding(mesh, PartitionSpec(POINTS_AXIS))
    totals = None
    if split:
        head = jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a[:split], spec), points)
        totals = _sums_of_squares(residuals, head, None)
    if split < n:
        tail = _sums_of_squares(residuals, jax.tree.map(lambda a: a[split:], points), None)
        totals = tail if totals is None else tuple(a + b for a, b in zip(totals, tail))
    return totals


def _mse(residuals: Callable, points, block_size: int | None, mesh=None) -> Array:
    n = jax.tree.leaves(points)[0].shape[0]
    if mesh is not None:
        return sum(_sharded_sums(residuals, points, mesh)) / n
    return sum(_sums_of_squares(residuals, points, block_size)) / n


def _parts(value) -> tuple[Array, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def condition_residuals(condition, model, variables, method: str):
    """The function ``PointSet -> tuple of per-point residual arrays`` of one condition."""
    names = variables.coordinates

    def coordinates(points, values=None):
        c = {name: points[:, i] for i, name in enumerate(names)}
        if values is not None:
            c["values"] = values
        return c

    def residuals(s: PointSet):
        d = evaluate_terms(model, condition.terms, s.points, variables, method)
        if isinstance(condition.where, PeriodicPair):
            d = (d, evaluate_terms(model, condition.terms, s.partner, variables, method))
        return _parts(condition.residual(d, coordinates(s.points, s.values)))

    return residuals


def loss_components(
    problem: AbstractProblem,
    model,
    data: Collocation,
    *,
    method: str = DEFAULT_METHOD,
    mse_factor: float = 1.0,
    block_size: int | None = None,
    mesh=None,
    weights: dict[str, float] | None = None,
) -> dict[str, Float[Array, ""]]:
    """Each condition's weighted loss term, by name, of any model (a function of one point
    ``(d,)`` returning its fields ``(k,)``), not only a network.

    Passing the exact solution checks a problem's definition: every term must vanish.
    ``block_size`` evaluates each point set that many points at a time (module docstring);
    ``mesh`` (a ``jax.sharding.Mesh`` with the axis ``"points"``) splits them over devices;
    ``weights`` (condition -> weight) replaces the conditions' own.
    """
    variables = problem.variables
    out = {}
    for condition in problem.weighted_conditions(weights):
        residuals = condition_residuals(condition, model, variables, method)
        term = mse_factor * _mse(residuals, data.sets[condition.name], block_size, mesh)
        out[condition.name] = term if _is_one(condition.weight) else condition.weight * term
    return out


def _is_one(weight) -> bool:
    return isinstance(weight, (int, float)) and weight == 1


def residual_vector(
    problem: AbstractProblem, model, data: Collocation, *, method: str = DEFAULT_METHOD, mse_factor: float = 1.0,
    weights: dict[str, float] | None = None,
) -> Float[Array, " m"]:
    """r = concat over conditions and their parts of sqrt(weight x mse_factor / n_c) x residuals,
    so that sum(r^2) is the loss (one batch, no blocks)."""
    variables = problem.variables
    blocks = []
    for condition in problem.weighted_conditions(weights):
        s = data.sets[condition.name]
        scale = jnp.sqrt(condition.weight * mse_factor / s.points.shape[0])
        blocks += [scale * r for r in condition_residuals(condition, model, variables, method)(s)]
    return jnp.concatenate(blocks)


class PINNLoss(eqx.Module):
    """``f(w) -> (total, {condition: term})`` over a flat parameter vector; ``residuals(w)``
    is the residual vector r(w) with ``total = sum(r^2)``.

    A pytree (the point arrays are its leaves), so it can be passed to jitted functions as
    an argument rather than baked in as constants. Build it with ``build_loss``;
    ``loss.model(w)`` turns a flat vector back into the network.
    """

    pde: AbstractProblem
    data: Collocation
    model_static: Any = eqx.field(static=True)
    unravel: Callable[[Array], Any] = eqx.field(static=True)
    method: str = eqx.field(static=True, default=DEFAULT_METHOD)
    mse_factor: float = eqx.field(static=True, default=1.0)
    block_size: int | None = eqx.field(static=True, default=None)
    mesh: Any = eqx.field(static=True, default=None)  # data parallelism: see shard_loss
    weights: tuple[tuple[str, float], ...] = eqx.field(static=True, default=())  # loss.weights
    # an inverse problem's learned coefficients (name, "log" | "linear"): w holds the
    # network's n_model parameters, then one entry each (module docstring)
    learned: tuple[tuple[str, str], ...] = eqx.field(static=True, default=())
    n_model: int | None = eqx.field(static=True, default=None)

    @property
    def problem(self) -> AbstractProblem:
        return self.pde

    def model(self, w: Float[Array, " p"]):
        """The network with parameters ``w``."""
        return eqx.combine(self.unravel(w if self.n_model is None else w[: self.n_model]), self.model_static)

    def coefficients(self, w: Float[Array, " p"]) -> dict[str, Float[Array, ""]]:
        """The learned coefficients' values at ``w`` ({} for a forward problem)."""
        return {name: coefficient_value(w[self.n_model + i], kind) for i, (name, kind) in enumerate(self.learned)}

    def problem_at(self, w: Float[Array, " p"]) -> AbstractProblem:
        """The problem with its learned coefficients at their values in ``w``."""
        if not self.learned:
            return self.pde
        values = self.coefficients(w)
        return eqx.tree_at(lambda p: [getattr(p, n) for n in values], self.pde, list(values.values()))

    def components(self, w: Float[Array, " p"]) -> dict[str, Float[Array, ""]]:
        model = self.model(w)
        return loss_components(
            self.problem_at(w), model, self.data, method=self.method, mse_factor=self.mse_factor,
            block_size=self.block_size, mesh=self.mesh, weights=dict(self.weights),
        )

    def residuals(self, w: Float[Array, " p"]) -> Float[Array, " m"]:
        """The residual vector r(w) (module docstring)."""
        return residual_vector(self.problem_at(w), self.model(w), self.data, method=self.method,
                               mse_factor=self.mse_factor, weights=dict(self.weights))

    def __call__(self, w: Float[Array, " p"]) -> tuple[Float[Array, ""], dict[str, Float[Array, ""]]]:
        parts = self.components(w)
        values = list(parts.values())
        total = values[0]
        for value in values[1:]:
            total = total + value
        return total, parts


def flatten_model(model) -> tuple[Float[Array, " p"], Callable[[Array], Any], Any]:
    """Split a model into its flat parameter vector, the unravel function and its static part."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    w, unravel = ravel_pytree(params)
    return w, unravel, static


LEARN_KINDS = ("log", "linear")


def coefficient_value(value, kind: str):
    """A learned coefficient's value from its entry in w (``kind`` log or linear)."""
    return jnp.exp(value) if kind == "log" else value


def check_learn(problem: AbstractProblem, learn) -> tuple[tuple[str, str], ...]:
    """``loss.learn`` (coefficient names) checked against the problem's ``learnable``;
    returns (name, kind) pairs. One-line ValueErrors."""
    if learn is None:
        return ()
    if isinstance(learn, str) or not isinstance(learn, (list, tuple)):
        raise ValueError(f"loss.learn: must be a list of coefficient names, got {learn!r}")
    allowed = dict(problem.learnable)
    out = []
    for name in learn:
        if name not in allowed:
            raise ValueError(f"loss.learn: {name!r} is not a learnable coefficient of {problem.name}; allowed: "
                             f"{', '.join(allowed) or 'none (a forward problem)'}")
        if allowed[name] not in LEARN_KINDS:
            raise ValueError(f"{problem.name}: learnable[{name!r}] must be one of {', '.join(LEARN_KINDS)}")
        value = getattr(problem, name)
        if allowed[name] == "log" and not value > 0:
            raise ValueError(f"pde.{name}: a coefficient learned in log space must start > 0, got {value!r}")
        out.append((name, allowed[name]))
    if len({n for n, _ in out}) != len(out):
        raise ValueError(f"loss.learn: names repeat: {', '.join(learn)}")
    return tuple(out)


def check_mse_factor(mse_factor) -> float:
    """``mse_factor`` if it is a finite number > 0 (bools refused), else a one-line ValueError."""
    if isinstance(mse_factor, bool) or not isinstance(mse_factor, (int, float)) or not (0 < mse_factor < math.inf):
        raise ValueError(f"loss.mse_factor: must be a finite number > 0 (1 code, 0.5 paper), got {mse_factor!r}")
    return mse_factor


def build_loss(
    pde: AbstractProblem,
    model,
    data: Collocation,
    *,
    method: str = DEFAULT_METHOD,
    mse_factor: float = 1.0,
    block_size: int | str | None = "auto",
    weights: dict[str, float] | None = None,
    learn=(),
) -> tuple[PINNLoss, Float[Array, " p"]]:
    """The loss of ``model`` on the problem ``pde`` and ``data``, and the model's flat
    parameters ``w0``.

    ``method``: see ``jpinn.derivatives``; ``block_size``: points per block (module
    docstring), ``"auto"`` for the backend's default, None for one batch; ``weights``:
    condition -> weight, in place of the conditions' own; ``learn``: coefficients of the
    problem (among its ``learnable``) trained with the network, an inverse problem: ``w0``
    then ends with them (log of the value for ``"log"`` ones), from the problem's values.
    """
    from .problems import check_problem

    if check_method(method) == "taylor" and not isinstance(model, TaylorModel):
        raise ValueError(
            f"derivatives: method 'taylor' needs a model with taylor_streams (jpinn.models.MLP has it), "
            f"got {type(model).__name__}; use auto, forward or reverse"
        )
    check_problem(pde, weights)
    missing = [c.name for c in pde.conditions() if c.name not in data.sets]
    if missing:
        raise ValueError(f"data: no points for the condition(s) {', '.join(missing)} of {pde.name}")
    block_size = resolve_block_size(block_size, model)
    check_mse_factor(mse_factor)
    learned = check_learn(pde, learn)
    w0, unravel, static = flatten_model(model)
    weights = tuple((k, float(v)) for k, v in (weights or {}).items())
    n_model = None
    if learned:
        n_model = int(w0.shape[0])
        start = [math.log(getattr(pde, n)) if kind == "log" else float(getattr(pde, n)) for n, kind in learned]
        w0 = jnp.concatenate([w0, jnp.asarray(start, w0.dtype)])
    return PINNLoss(pde, data, static, unravel, method, float(mse_factor), block_size, None, weights, learned,
                    n_model), w0


def value_and_grad(f: PINNLoss, w: Float[Array, " p"]):
    """``((loss, components), grad)`` of a loss at ``w``."""
    return jax.value_and_grad(f, has_aux=True)(w)


def check_devices(devices) -> int:
    """``devices`` if it is a count (an integer >= 1), else a one-line ValueError; ``"all"``
    is checked by the caller, the visible devices by ``resolve_devices``."""
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ValueError(f"devices: must be an integer >= 1 or all, got {devices!r}")
    return devices


def resolve_devices(devices: int | str | None) -> list:
    """``devices`` (a count, ``"all"`` or None: one) as a list of the first visible devices."""
    visible = jax.devices()
    if devices is None:
        return visible[:1]
    if devices == "all":
        return visible
    if check_devices(devices) > len(visible):
        raise ValueError(f"devices: {devices} asked, {len(visible)} visible ({visible[0].platform}); allowed: 1..{len(visible)} or all")
    return visible[:devices]


def shard_loss(f: PINNLoss, w: Float[Array, " p"], devices: int | str | None = "all") -> tuple[PINNLoss, Array]:
    """Data parallelism: ``f`` with its collocation points split over ``devices`` (a list,
    a count or ``"all"``), and ``w`` replicated on them.

    The point arrays are replicated on every device (they are small: 10,000 x 2 floats);
    inside the loss, each point set's largest device-divisible part is constrained to be
    sharded along the points (``jax.lax.with_sharding_constraint``), so each device
    evaluates the network and its derivatives on its own share and the partial sums of
    squares are added across devices. The loss, its gradient and Hessian-vector products
    (and every optimizer built on them) equal the single-device ones up to the order of
    summation. Blocks (``block_size``) are a single-device cache optimisation: off here.
    With one device, ``f`` and ``w`` are returned unchanged.
    """
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    devices = devices if isinstance(devices, list) else resolve_devices(devices)
    if len(devices) == 1:
        return f, w
    mesh = Mesh(np.array(devices), (POINTS_AXIS,))
    replicated = NamedSharding(mesh, PartitionSpec())
    data = jax.device_put(f.data, replicated)
    sharded = dataclasses.replace(f, data=data, block_size=None, mesh=mesh)
    return sharded, jax.device_put(w, replicated)
