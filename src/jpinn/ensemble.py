"""Ensembles: several independent runs of the same shape trained as one compiled program.

The members of an ensemble are ordinary runs (a loss ``f``, start parameters ``w0`` and
phases each) that differ only in values, not in shapes: seeds (so initial parameters,
collocation points and NNCG's sketches), real-valued optimizer settings (learning rate,
mu, ...) and PDE coefficients. ``stack_members`` splits the members' ``(optimizer, loss)``
pytrees into what they share and what differs; what differs is stacked along a leading
member axis, and each chunk of ``jpinn.train`` runs under ``jax.vmap`` over it. Everything
else is the solo driver: every member keeps its own counters, status, divergence limit,
log records and checkpoints, and gets its own ``TrainResult``.

**Inner loops that stop at different iterations.** L-BFGS's line search and NNCG's CG and
Armijo loops are ``lax.while_loop``s; under ``vmap`` a while loop runs until every
member's condition is false and freezes the carry of a member whose condition already is
(the batching rule selects the old carry), so each member leaves its loop with the values
it would have had alone. ``lax.cond`` becomes a select (both branches computed, one kept).
A member whose phase ended (budget, a stop reason) is given zero active steps in later
chunks and keeps its parameters and state. So each member's numbers equal those of the
same run trained alone, up to the rounding of batched instead of single matrix products
(tests/test_ensemble.py compares them for every optimizer).

The price: a vmapped loop runs as long as its slowest member, so members that do very
different amounts of work per step (one L-BFGS member in a 25-step line search, the
others done) waste work; on a GPU the batched products are nevertheless far cheaper than
E separate runs (``benchmarks/ensemble.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .loss import PINNLoss
from .optim import ENSEMBLE_AXIS
from .train import Phase, TrainCheckpoint, TrainResult, _run_chunk, _Solo, check_phases, drive

# integer settings that may differ across members: they only feed a PRNG key
SEED_FIELDS = ("seed",)


class EnsembleError(ValueError):
    """Members that cannot share one compiled program; the message is one line."""


@dataclasses.dataclass(frozen=True)
class Stacked:
    """The members' common pytree (``shared``; None where they differ) and their
    differing leaves stacked along a leading member axis (``batched``; None elsewhere)."""

    shared: Any
    batched: Any
    size: int


def _same(a, b) -> bool:
    if isinstance(a, (jax.Array, np.ndarray)) or isinstance(b, (jax.Array, np.ndarray)):
        if not (hasattr(a, "shape") and hasattr(b, "shape")) or a.shape != b.shape or a.dtype != b.dtype:
            return False
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    return type(a) is type(b) and a == b


def stack_members(trees: Sequence[Any], what: str, float_dtype, *, xp=jnp) -> Stacked:
    """Split equal pytrees into shared and stacked parts (see ``Stacked``).

    ``xp=numpy`` stacks into NumPy arrays: a check that must not start JAX's backend (the
    command line's precheck, before a launcher starts jobs that may share a GPU).

    Leaves that differ across members must be arrays of one shape and dtype, real numbers
    (stacked in ``float_dtype``) or seeds; anything else (a width, an iteration budget, an
    L-BFGS history size, a method name) changes the compiled program and raises an
    ``EnsembleError`` naming the field.
    """
    flat = [jax.tree_util.tree_flatten_with_path(tree) for tree in trees]
    treedef = flat[0][1]
    for k, (_, other) in enumerate(flat[1:], start=1):
        if other != treedef:
            raise EnsembleError(
                f"ensemble: member {k}'s {what} has another structure than member 0's"
                f" (a different optimizer, PDE or network); members may differ only in seeds and real values"
            )
    shared, batched = [], []
    for position, (path, first) in enumerate(flat[0][0]):
        values = [leaves[position][1] for leaves, _ in flat]
        name = f"{what}{jax.tree_util.keystr(path)}"
        if all(_same(first, v) for v in values[1:]):
            shared.append(first)
            batched.append(None)
            continue
        if all(isinstance(v, (jax.Array, np.ndarray)) for v in values):
            if len({(v.shape, str(v.dtype)) for v in values}) != 1:
                raise EnsembleError(f"ensemble: {name} has different shapes across members")
            stacked = xp.stack([xp.asarray(v) for v in values])
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            last = getattr(path[-1], "name", None)
            if all(isinstance(v, int) for v in values):
                if last not in SEED_FIELDS:
                    raise EnsembleError(
                        f"ensemble: members differ in {name} ({', '.join(map(repr, values[:4]))}"
                        f"{', ...' if len(values) > 4 else ''}), an integer that shapes the compiled program;"
                        f" allowed to differ: seeds, real-valued settings, PDE coefficients"
                    )
                stacked = xp.asarray(values, xp.int32)
            else:
                stacked = xp.asarray([float(v) for v in values], float_dtype)
        else:
            raise EnsembleError(
                f"ensemble: members differ in {name} ({', '.join(map(repr, values[:4]))});"
                f" allowed to differ: seeds, real-valued settings, PDE coefficients"
            )
        shared.append(None)
        batched.append(stacked)
    return Stacked(
        jax.tree_util.tree_unflatten(treedef, shared), jax.tree_util.tree_unflatten(treedef, batched), len(trees)
    )


def _align_losses(fs: Sequence[Callable], ws: Sequence[jax.Array]) -> list[Callable]:
    """``PINNLoss`` members built separately hold separate (equal) unravel closures and
    static model parts; give them member 0's, after checking the networks' shapes agree."""
    first = fs[0]
    if not isinstance(first, PINNLoss):
        return list(fs)
    out = [first]
    def network(f, w):  # the network's part of w (an inverse problem's coefficients follow it)
        return f.unravel(w if f.n_model is None else w[: f.n_model])

    template = jax.tree.map(lambda a: (a.shape, a.dtype), network(first, ws[0]))
    for k, (f, w) in enumerate(zip(fs[1:], ws[1:]), start=1):
        if not isinstance(f, PINNLoss):
            raise EnsembleError(f"ensemble: member {k}'s loss is a {type(f).__name__}, member 0's a PINNLoss")
        if jax.tree.map(lambda a: (a.shape, a.dtype), network(f, w)) != template:
            raise EnsembleError(f"ensemble: member {k}'s network has another shape than member 0's")
        if not eqx.tree_equal(f.model_static, first.model_static):
            raise EnsembleError(f"ensemble: member {k}'s network differs from member 0's in what it fixes at"
                                f" initialisation (its activation, or a Fourier embedding's B, drawn per seed)")
        if (f.method, f.mse_factor, f.block_size, f.learned) != (first.method, first.mse_factor, first.block_size,
                                                                  first.learned):
            raise EnsembleError(
                f"ensemble: member {k}'s loss settings (derivatives, mse_factor, block_size, learn) differ from member 0's"
            )
        out.append(dataclasses.replace(f, model_static=first.model_static, unravel=first.unravel))
    return out


def _vmapped_chunk(fixed, w, state, n_active, loss_limit, chunk_steps: int):
    shared, batched = fixed

    def member(b, w, state, n_active, loss_limit):
        return _run_chunk(eqx.combine(b, shared), w, state, n_active, loss_limit, chunk_steps)

    return jax.vmap(member, axis_name=ENSEMBLE_AXIS)(batched, w, state, n_active, loss_limit)


# the stacked parameters and states are donated, the members' settings and data are not
_ensemble_chunk = eqx.filter_jit(_vmapped_chunk, donate="all-except-first")


@eqx.filter_jit
def _ensemble_init(fixed, w):
    shared, batched = fixed

    def member(b, w):
        optimizer, f = eqx.combine(b, shared)
        return optimizer.init(f, w)

    return jax.vmap(member, axis_name=ENSEMBLE_AXIS)(batched, w)


@eqx.filter_jit
def _ensemble_losses(fixed, w):
    shared, batched = fixed
    return jax.vmap(lambda b, w: eqx.combine(b, shared)[1](w)[0], axis_name=ENSEMBLE_AXIS)(batched, w)


class _Ensemble:
    """The driver's view (``jpinn.train.drive``) of E stacked members."""

    def __init__(self, fs: Sequence[Callable], phases: Sequence[Sequence[Phase]], dtype):
        self.fs = list(fs)
        self.phases = [list(p) for p in phases]
        self.size = len(self.fs)
        self.dtype = dtype
        self.losses = stack_members(self.fs, "loss", dtype)  # compares the members' data: once
        self._fixed: dict[int, Any] = {}

    def fixed(self, index: int):
        if index not in self._fixed:
            optimizers = stack_members([phases[index].optimizer for phases in self.phases],
                                       f"phase {index} ({self.phases[0][index].label})", self.dtype)
            self._fixed[index] = ((optimizers.shared, self.losses.shared), (optimizers.batched, self.losses.batched))
        return self._fixed[index]

    def init(self, fixed, w):
        return _ensemble_init(fixed, w)

    def start_losses(self, fixed, w) -> list[float]:
        return [float(v) for v in np.asarray(_ensemble_losses(fixed, w))]

    def compile(self, fixed, w, state, limit, chunk_steps: int):
        compiled = _ensemble_chunk.lower(fixed, w, state, self.counts([0] * self.size), limit, chunk_steps).compile()
        return lambda w, state, n_active, limit: compiled(fixed, w, state, n_active, limit, chunk_steps)

    def counts(self, values: Sequence[int]) -> jax.Array:
        return jnp.asarray(values, jnp.int32)

    def limits(self, values: Sequence[float], dtype) -> jax.Array:
        return jnp.asarray(values, dtype)

    def member(self, tree, k: int):
        return jax.tree_util.tree_map(lambda a: a[k] if eqx.is_array(a) else a, tree)

    def stack(self, trees: Sequence[Any]):
        return jax.tree_util.tree_map(lambda *a: jnp.stack(a) if eqx.is_array(a[0]) else a[0], *trees)


def check_members(phases: Sequence[Sequence[Phase]]) -> None:
    """The members' phases must agree in everything the driver shares: count, budgets,
    log intervals, labels and optimizer kinds (their settings are ``stack_members``' business)."""
    first = phases[0]
    for k, member in enumerate(phases[1:], start=1):
        if len(member) != len(first):
            raise EnsembleError(f"ensemble: member {k} has {len(member)} phases, member 0 {len(first)}")
        for i, (a, b) in enumerate(zip(first, member)):
            if type(a.optimizer) is not type(b.optimizer):
                raise EnsembleError(
                    f"ensemble: phase {i} runs {b.optimizer.name} in member {k}, {a.optimizer.name} in member 0"
                )
            for field in ("iterations", "log_every", "label"):
                if getattr(a, field) != getattr(b, field):
                    raise EnsembleError(
                        f"ensemble: phase {i}'s {field} is {getattr(b, field)!r} in member {k},"
                        f" {getattr(a, field)!r} in member 0; members share phase budgets and log points"
                    )


def train_ensemble(
    fs: Sequence[Callable],
    ws: Sequence[jax.Array],
    phases: Sequence[Sequence[Phase]],
    *,
    log_every: int = 100,
    callbacks: Sequence[Callable[[dict[str, Any]], None] | None] | None = None,
    progress: bool = True,
    checkpoints: Sequence[Callable[[TrainCheckpoint], None]] | None = None,
    checkpoint_every: int | None = None,
    resumes: Sequence[TrainCheckpoint] | None = None,
    records: Sequence[Sequence[dict[str, Any]]] | None = None,
    divergence: float | None = 1e8,
    compile_ahead: bool = True,
) -> list[TrainResult]:
    """Train E runs (``fs[k]``, ``ws[k]``, ``phases[k]``) as one vmapped program; one
    ``TrainResult`` per member, as ``jpinn.train.train`` would return it for that run alone.

    The arguments are ``train``'s, one per member: ``callbacks[k]`` receives member k's log
    records, ``checkpoints[k]`` its checkpoints (all taken at the same chunk boundary), and
    ``resumes`` (one checkpoint per member, taken together) continues an ensemble. One
    member runs the solo program (``train``'s, bit for bit). The members must have the same shapes (network, point counts, phases with equal budgets and
    optimizer kinds, integer settings) and may differ in seeds, real values and data.
    """
    E = len(fs)
    if E == 0 or len(ws) != E or len(phases) != E:
        raise ValueError(f"ensemble: need one loss, start vector and phase list per member, got {len(fs)}, {len(ws)}, {len(phases)}")
    for member in phases:
        check_phases(list(member))
    check_members(phases)
    for name, value in (("callbacks", callbacks), ("checkpoints", checkpoints), ("resumes", resumes), ("records", records)):
        if value is not None and len(value) != E:
            raise ValueError(f"ensemble: {name} must have one entry per member ({E}), got {len(value)}")
    shapes = {(w.shape, str(w.dtype)) for w in ws}
    if len(shapes) != 1:
        raise EnsembleError(f"ensemble: the members' parameter vectors differ in shape or dtype: {sorted(shapes)}")
    if E == 1:  # one member: the solo program itself (a vmap of one only adds overhead)
        return drive(
            _Solo(fs[0], phases[0]), ws[0], log_every=log_every, callbacks=list(callbacks or [None]),
            progress=progress, checkpoints=checkpoints, checkpoint_every=checkpoint_every, resumes=resumes,
            records=records if records is not None else [()], divergence=divergence, compile_ahead=compile_ahead,
        )
    fs = _align_losses(fs, ws)
    engine = _Ensemble(fs, phases, ws[0].dtype)
    for index in range(len(phases[0])):  # every phase's settings, checked before any compilation
        engine.fixed(index)
    w = jnp.stack([jnp.asarray(w) for w in ws])
    return drive(
        engine, w, log_every=log_every, callbacks=list(callbacks) if callbacks is not None else [None] * E,
        progress=progress, checkpoints=checkpoints, checkpoint_every=checkpoint_every, resumes=resumes,
        records=records if records is not None else [()] * E, divergence=divergence, compile_ahead=compile_ahead,
    )


__all__ = ["EnsembleError", "Stacked", "check_members", "stack_members", "train_ensemble"]
