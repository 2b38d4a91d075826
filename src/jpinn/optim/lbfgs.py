"""L-BFGS as the study ran it (PAPER.md section 3): PyTorch's ``LBFGS`` with
``history_size=100``, ``line_search_fn="strong_wolfe"``, ``max_iter=20``, reproduced in JAX.

One ``step`` is one outer step of the reference: up to ``max_iter`` inner iterations (and
at most ``max_eval`` loss-and-gradient evaluations), each a two-loop-recursion direction
and a strong-Wolfe line search, all inside one compiled ``lax.while_loop``. The reference's
rules, kept exactly:

- the very first iteration of the optimizer's life steps along -g with the trial step
  ``lr * min(1, 1 / ||g||_1)``; later ones use the two-loop direction and trial step ``lr``;
- a pair (s, y) enters the memory only when its curvature y^T s exceeds 1e-10 (jpinn also
  refuses a non-finite one); the oldest pair leaves when the memory is full;
  the initial scaling is gamma = y^T s / y^T y of the newest pair;
- the outer step ends early when max|g| <= ``tolerance_grad``, when the directional
  derivative g^T d > -``tolerance_change``, when max|t d| <= ``tolerance_change`` or when the
  loss changes by less than ``tolerance_change``.

Where the reference would go on calling its step without ever moving again (a gradient
below tolerance, no descent direction, a line search that accepted nothing, t = 0: the
study's Figure 9 stall), jpinn ends the phase with that reason as its status
(a ``StopReason``). A small step or a flat loss ends the outer step only, as in the
reference, and is logged as ``break_reason``; ``stop_on_tolerance=True`` makes them end
the phase too (what a "run to convergence" comparison wants).

The memory is reachable for the loss-landscape analysis: ``state.memory`` is an
``LBFGSMemory`` (``s``, ``y``, ``rho`` in a circular buffer, ``gamma``); its
``ordered()`` gives the stored pairs oldest first.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from ._base import RUNNING, AbstractOptimizer, StopReason, any_member, base_info, check_positive
from .linesearch import LineSearchResult, strong_wolfe

# this module's stop codes, as plain ints (jpinn.optim.StopReason names them all)
GRAD_TOLERANCE = int(StopReason.GRAD_TOLERANCE)
DIRECTION_TOLERANCE = int(StopReason.DIRECTION_TOLERANCE)
STEP_TOLERANCE = int(StopReason.STEP_TOLERANCE)
LOSS_TOLERANCE = int(StopReason.LOSS_TOLERANCE)
LINE_SEARCH_STALL = int(StopReason.LINE_SEARCH_STALL)

CURVATURE_THRESHOLD = 1e-10  # the reference stores (s, y) only when y^T s exceeds this


class LBFGSMemory(eqx.Module):
    """The L-BFGS memory: pairs s_i = w_{i+1} - w_i, y_i = g_{i+1} - g_i, rho_i = 1 / y_i^T s_i.

    Stored in a circular buffer of ``m`` rows: ``count`` rows are filled and ``head`` is
    the row the next pair goes to (so the newest pair is row ``head - 1``). Empty rows are
    zero with rho = 0, so they drop out of the two-loop recursion. ``gamma`` scales the
    initial inverse Hessian H_0 = gamma I.
    """

    s: Float[Array, "m p"]
    y: Float[Array, "m p"]
    rho: Float[Array, " m"]
    gamma: Float[Array, ""]
    count: Int[Array, ""]
    head: Int[Array, ""]

    @classmethod
    def empty(cls, history: int, w: Float[Array, " p"]) -> "LBFGSMemory":
        zeros = jnp.zeros((history, w.shape[0]), w.dtype)
        return cls(zeros, zeros, jnp.zeros((history,), w.dtype), jnp.ones((), w.dtype), jnp.int32(0), jnp.int32(0))

    @property
    def history(self) -> int:
        return self.s.shape[0]

    def order(self) -> Int[Array, " m"]:
        """Row indices oldest first (the filled rows are the last ``count`` of them)."""
        m = self.history
        return (self.head + jnp.arange(m)) % m

    def ordered(self) -> tuple[Array, Array, Array, Array]:
        """(s, y, rho, gamma) with the ``count`` stored pairs, oldest first (host arrays)."""
        count = int(self.count)
        index = self.order()[self.history - count:]
        return self.s[index], self.y[index], self.rho[index], self.gamma

    def push(self, s: Array, y: Array, active=True) -> "LBFGSMemory":
        """Add (s, y) if its curvature is positive and finite (the reference's rule) and
        ``active`` (an ensemble member still in its inner loop).

        A rejected pair rewrites the head row with its old values: the update touches one
        row (O(p)), not the whole buffer (a select of two m x p buffers per iteration)."""
        ys = jnp.vdot(y, s)
        yy = jnp.vdot(y, y)
        ok = (ys > CURVATURE_THRESHOLD) & jnp.isfinite(ys) & jnp.isfinite(yy) & (yy > 0) & active
        row = self.head
        return LBFGSMemory(
            s=self.s.at[row].set(jnp.where(ok, s, self.s[row])),
            y=self.y.at[row].set(jnp.where(ok, y, self.y[row])),
            rho=self.rho.at[row].set(jnp.where(ok, 1.0 / jnp.where(ok, ys, 1.0), self.rho[row])),
            gamma=jnp.where(ok, ys / jnp.where(ok, yy, 1.0), self.gamma),
            count=jnp.where(ok, jnp.minimum(self.count + 1, self.history), self.count),
            head=jnp.where(ok, (self.head + 1) % self.history, self.head),
        )

    def apply_inverse(self, v: Float[Array, " p"]) -> Float[Array, " p"]:
        """H v for the L-BFGS inverse-Hessian approximation H (two-loop recursion)."""
        order = self.order()

        def newest_first(k, carry):
            q, alpha = carry
            i = order[self.history - 1 - k]
            a = self.rho[i] * jnp.vdot(self.s[i], q)
            return q - a * self.y[i], alpha.at[i].set(a)

        q, alpha = jax.lax.fori_loop(0, self.history, newest_first, (v, jnp.zeros_like(self.rho)))
        r = self.gamma * q

        def oldest_first(k, r):
            i = order[k]
            b = self.rho[i] * jnp.vdot(self.y[i], r)
            return r + (alpha[i] - b) * self.s[i]

        return jax.lax.fori_loop(0, self.history, oldest_first, r)


class LBFGSState(eqx.Module):
    """What the reference keeps between outer steps, plus the cached loss and gradient at w."""

    memory: LBFGSMemory
    direction: Float[Array, " p"]       # d of the last inner iteration
    step_size: Float[Array, ""]         # t of the last inner iteration
    prev_grad: Float[Array, " p"]       # gradient where the last direction was computed
    loss: Float[Array, ""]              # loss at the current w
    grad: Float[Array, " p"]            # gradient at the current w
    n_iter: Int[Array, ""]              # inner iterations since init (the reference's n_iter)
    evaluations: Int[Array, ""]         # loss-and-gradient evaluations since init


class _Inner(eqx.Module):
    w: Array
    state: LBFGSState
    iterations: Array
    evaluations: Array
    status: Array
    stop: Array
    wolfe_failures: Array
    last_step: Array
    reason: Array


class LBFGS(AbstractOptimizer):
    """L-BFGS with a strong-Wolfe line search, PyTorch's semantics (see the module doc).

    Fields are the reference's arguments: ``learning_rate`` (lr, the first trial step),
    ``max_iter`` inner iterations per outer step, ``max_eval`` evaluations per outer step
    (None: 1.25 max_iter), ``history_size``, ``tolerance_grad``, ``tolerance_change``, and
    the line search's ``c1``, ``c2`` and ``max_ls`` (trials after the first, so at most
    ``max_ls + 1`` evaluations per search, as the reference). ``stop_on_tolerance`` ends
    the phase at the first small step or flat loss instead of only the outer step.
    """

    learning_rate: float = 1.0
    max_iter: int = 20
    max_eval: int | None = None
    history_size: int = 100
    tolerance_grad: float = 1e-7
    tolerance_change: float = 1e-9
    c1: float = 1e-4
    c2: float = 0.9
    max_ls: int = 25
    stop_on_tolerance: bool = False

    name: ClassVar[str] = "lbfgs"

    def __check_init__(self):
        check_positive(self.name, "learning_rate", self.learning_rate)
        for field in ("max_iter", "history_size", "max_ls"):
            check_positive(self.name, field, getattr(self, field), integer=True)
        if self.max_eval is not None:
            check_positive(self.name, "max_eval", self.max_eval, integer=True)
        for field in ("tolerance_grad", "tolerance_change"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
                raise ValueError(f"{field}: must be a finite number >= 0, got {value!r} (lbfgs)")
        if not isinstance(self.stop_on_tolerance, bool):
            raise ValueError(f"stop_on_tolerance: must be true or false, got {self.stop_on_tolerance!r} (lbfgs)")
        if not (isinstance(self.c1, (int, float)) and isinstance(self.c2, (int, float)) and 0 < self.c1 < self.c2 < 1):
            raise ValueError(f"c1: must satisfy 0 < c1 < c2 < 1, got c1={self.c1!r}, c2={self.c2!r} (lbfgs)")

    @property
    def iterations_per_step(self) -> int:  # type: ignore[override]
        return self.max_iter

    @property
    def evaluations_per_step(self) -> int:
        return self.max_eval if self.max_eval is not None else self.max_iter * 5 // 4

    def init(self, f, w):
        (loss, _), grad = jax.value_and_grad(f, has_aux=True)(w)
        zeros = jnp.zeros_like(w)
        return LBFGSState(
            memory=LBFGSMemory.empty(self.history_size, w),
            direction=zeros, step_size=jnp.zeros((), w.dtype), prev_grad=zeros,
            loss=loss, grad=grad, n_iter=jnp.int32(0), evaluations=jnp.int32(1),
        )

    def step(self, f, w, state: LBFGSState):
        value_and_grad = lambda v: _loss_and_grad(f, v)  # noqa: E731
        loss0, grad0 = state.loss, state.grad
        converged = jnp.max(jnp.abs(grad0)) <= self.tolerance_grad
        carry = _Inner(
            w=w, state=state, iterations=jnp.int32(0), evaluations=jnp.int32(1),
            status=jnp.where(converged, GRAD_TOLERANCE, RUNNING).astype(jnp.int32),
            stop=converged, wolfe_failures=jnp.int32(0), last_step=jnp.zeros((), w.dtype),
            reason=jnp.where(converged, GRAD_TOLERANCE, RUNNING).astype(jnp.int32),
        )

        def inner(c: _Inner) -> _Inner:
            s = c.state
            go = ~c.stop  # always true in a solo run; an ensemble member may be done
            n_iter = s.n_iter + 1
            first = n_iter == 1
            # curvature pair of the previous inner iteration, then the two-loop direction. The
            # reference empties its memory at its first iteration; here it is empty already
            # (``init`` made it so and the first iteration pushes nothing), so no reset: a
            # branch that returned the m x p buffers cost a copy of both per inner iteration
            memory = s.memory.push(s.direction * s.step_size, s.grad - s.prev_grad, active=go & ~first)
            direction = jnp.where(first, -s.grad, memory.apply_inverse(-s.grad))
            trial = jnp.where(
                first, self.learning_rate * jnp.minimum(1.0, 1.0 / jnp.sum(jnp.abs(s.grad))), self.learning_rate
            ).astype(c.w.dtype)
            gtd = jnp.vdot(s.grad, direction)
            not_descent = gtd > -self.tolerance_change

            def search(_):
                return strong_wolfe(
                    value_and_grad, c.w, direction, s.loss, s.grad, trial,
                    c1=self.c1, c2=self.c2, tolerance_change=self.tolerance_change, max_ls=self.max_ls,
                )

            def skip(_):
                return LineSearchResult(trial, s.loss, s.grad, jnp.int32(0), jnp.asarray(True))

            result = jax.lax.cond(not_descent, skip, search, None)
            moved = ~not_descent
            w_new = jnp.where(moved, c.w + result.step * direction, c.w)
            evaluations = c.evaluations + result.evaluations
            iterations = c.iterations + 1
            new_state = LBFGSState(
                memory=memory, direction=direction, step_size=result.step, prev_grad=s.grad,
                loss=jnp.where(moved, result.loss, s.loss), grad=jnp.where(moved, result.grad, s.grad),
                n_iter=n_iter, evaluations=s.evaluations + result.evaluations,
            )
            # the reference's end-of-iteration tests. A gradient below tolerance, a direction
            # that is not a descent direction and a search that accepted nothing leave the
            # reference stuck at w for good: those end the phase. A small step or a flat
            # loss end the outer step only (the reference's next call may go on), unless
            # stop_on_tolerance asks for the phase to end too.
            grad_small = jnp.max(jnp.abs(new_state.grad)) <= self.tolerance_grad
            step_small = jnp.max(jnp.abs(direction * result.step)) <= self.tolerance_change
            loss_flat = jnp.abs(new_state.loss - s.loss) < self.tolerance_change
            stalled = moved & (result.step == 0)
            reason = jnp.select(
                [not_descent, grad_small, stalled, step_small, loss_flat],
                [DIRECTION_TOLERANCE, GRAD_TOLERANCE, LINE_SEARCH_STALL, STEP_TOLERANCE, LOSS_TOLERANCE],
                RUNNING,
            ).astype(jnp.int32)
            budget_done = (iterations >= self.max_iter) | (evaluations >= self.evaluations_per_step)
            stuck = not_descent | grad_small | stalled
            soft = (reason == STEP_TOLERANCE) | (reason == LOSS_TOLERANCE)
            ends_phase = stuck | (self.stop_on_tolerance & soft & ~budget_done)
            status = jnp.where(ends_phase, reason, RUNNING).astype(jnp.int32)
            return _Inner(
                w=w_new, state=new_state, iterations=iterations, evaluations=evaluations, status=status,
                stop=(reason != RUNNING) | budget_done,
                reason=jnp.where(budget_done & soft, RUNNING, reason).astype(jnp.int32),
                wolfe_failures=c.wolfe_failures + (moved & ~result.wolfe).astype(jnp.int32),
                last_step=result.step,
            )

        def body(c: _Inner) -> _Inner:
            # A member that stopped keeps its carry. The memory needs no select here (its
            # push was masked): selecting between two identical buffers folds away, where
            # vmap's own rule for a per-member loop condition would copy the m x p buffers
            # of every member at every inner iteration.
            new = inner(c)
            same = eqx.tree_at(lambda t: t.state.memory, c, new.state.memory)
            return jax.tree_util.tree_map(lambda a, b: jnp.where(~c.stop, a, b), new, same)

        out = jax.lax.while_loop(lambda c: any_member(~c.stop), body, carry)
        info = base_info(loss0, jnp.linalg.norm(grad0), out.iterations, out.status)
        info.update(
            evaluations=out.evaluations - 1,  # the loss at w was cached, not re-evaluated
            step_size=out.last_step,
            wolfe_failures=out.wolfe_failures,
            memory_pairs=out.state.memory.count,
            break_reason=out.reason,  # why the outer step ended early (0: its budget)
        )
        return out.w, out.state, info


def _loss_and_grad(f, w):
    (loss, _), grad = jax.value_and_grad(f, has_aux=True)(w)
    return loss, grad
