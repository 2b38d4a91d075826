"""The line searches: strong Wolfe (L-BFGS) and Armijo backtracking (NNCG and GD).

Strong-Wolfe line search with the reference optimizer's rules (PAPER.md section 3).

The study's L-BFGS is PyTorch's, whose line search is the bracketing-then-zoom search of
Nocedal & Wright (Algorithms 3.5 and 3.6) with these particular choices, reproduced here:

- bracketing: a trial that violates sufficient decrease (or, after the second trial, does
  not improve on the previous one) or has a non-negative slope closes the bracket; a trial
  that meets the curvature condition is accepted; otherwise the next trial is the cubic
  interpolation minimiser, clamped to [t + 0.01 (t - t_prev), 10 t];
- zoom: cubic interpolation inside the bracket, pushed 10% of the bracket width away from
  its ends when two interpolations in a row make insufficient progress; the search stops
  when the bracket width times max|d| is below ``tolerance_change``;
- at most ``max_ls`` (25) trials after the first one, so at most 26 evaluations, as the
  reference counts; if the bracketing phase uses them all, the better of t = 0 and the
  last trial is returned.

The search returns the best point found (the bracket's low end), which can be t = 0 when
no trial lowered the loss: the caller reads that as a stall (the study's Figure 9).
Everything is one ``lax.while_loop`` per phase, one loss-and-gradient evaluation per
iteration, so it compiles into the optimizer step.

``armijo`` is the study's Armijo backtracking (Algorithm 7): from t = 1, multiply t by
``factor`` until the loss decreases enough, at most ``max_backtracks`` times; one loss
evaluation per trial, in one ``lax.while_loop``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, Bool

from ._base import any_member


class LineSearchResult(NamedTuple):
    step: Float[Array, ""]          # accepted step size t (0 when nothing was accepted)
    loss: Float[Array, ""]          # loss at w + t d
    grad: Float[Array, " p"]        # gradient at w + t d
    evaluations: Int[Array, ""]     # loss-and-gradient evaluations used
    wolfe: Bool[Array, ""]          # True when the strong-Wolfe conditions hold at t


def cubic_minimizer(t1, f1, g1, t2, f2, g2, lower, upper):
    """Minimiser of the cubic through (t1, f1, g1) and (t2, f2, g2), clamped to [lower, upper].

    Nocedal & Wright eq. (3.59). Falls back to the midpoint of [lower, upper] when the cubic
    has no real minimiser or the data are degenerate (t1 == t2, non-finite values).
    """
    d1 = g1 + g2 - 3 * (f1 - f2) / (t1 - t2)
    d2_square = d1 * d1 - g1 * g2
    d2 = jnp.sqrt(jnp.maximum(d2_square, 0.0))
    from_t2 = t2 - (t2 - t1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    from_t1 = t1 - (t1 - t2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    minimizer = jnp.where(t1 <= t2, from_t2, from_t1)
    clamped = jnp.minimum(jnp.maximum(minimizer, lower), upper)
    ok = (d2_square >= 0) & jnp.isfinite(clamped)
    return jnp.where(ok, clamped, 0.5 * (lower + upper))


class _Search(NamedTuple):
    # the current trial and the one before it
    t: Array
    f: Array
    g: Array
    gtd: Array
    t_prev: Array
    f_prev: Array
    g_prev: Array
    gtd_prev: Array
    # bracket [a, b] with values, gradients and slopes; low is the index of the better end
    bt: Array
    bf: Array
    bg: Array
    bgtd: Array
    low: Array
    stage: Array            # 0 bracketing, 1 zooming, 2 finished
    wolfe: Array
    evaluations: Array
    insufficient: Array


def strong_wolfe(
    value_and_grad: Callable[[Array], tuple[Array, Array]],
    w: Float[Array, " p"],
    direction: Float[Array, " p"],
    loss: Float[Array, ""],
    grad: Float[Array, " p"],
    initial_step: Float[Array, ""],
    *,
    c1: float = 1e-4,
    c2: float = 0.9,
    tolerance_change: float = 1e-9,
    max_ls: int = 25,
) -> LineSearchResult:
    """Search along ``direction`` from ``w`` for a step meeting the strong-Wolfe conditions

        L(w + t d) <= L(w) + c1 t g^T d    and    |g(w + t d)^T d| <= c2 |g^T d|.

    ``value_and_grad(w) -> (loss, grad)``; ``direction`` must be a descent direction.
    """
    dtype = loss.dtype
    gtd0 = jnp.vdot(grad, direction)
    d_norm = jnp.max(jnp.abs(direction))
    at = lambda t: value_and_grad(w + t * direction)  # noqa: E731

    t = jnp.asarray(initial_step, dtype)
    f_new, g_new = at(t)
    zero = jnp.zeros((), dtype)
    state = _Search(
        t=t, f=f_new, g=g_new, gtd=jnp.vdot(g_new, direction),
        t_prev=zero, f_prev=loss, g_prev=grad, gtd_prev=gtd0,
        bt=jnp.zeros(2, dtype), bf=jnp.zeros(2, dtype), bg=jnp.stack([grad, grad]),
        bgtd=jnp.zeros(2, dtype), low=jnp.int32(0), stage=jnp.int32(0),
        wolfe=jnp.asarray(False), evaluations=jnp.int32(1), insufficient=jnp.asarray(False),
    )

    def pair(a, b):
        return jnp.stack([a, b])

    # ---- bracketing -------------------------------------------------------------------
    def bracket_cond(s: _Search):
        return (s.stage == 0) & (s.evaluations - 1 < max_ls)

    def bracket_body(s: _Search):
        n_trials = s.evaluations - 1  # trials after the first
        armijo_fails = (s.f > loss + c1 * s.t * gtd0) | ((n_trials > 1) & (s.f >= s.f_prev))
        curvature_ok = jnp.abs(s.gtd) <= -c2 * gtd0
        uphill = s.gtd >= 0

        def close_bracket(s: _Search):
            return s._replace(
                bt=pair(s.t_prev, s.t), bf=pair(s.f_prev, s.f), bg=jnp.stack([s.g_prev, s.g]),
                bgtd=pair(s.gtd_prev, s.gtd), stage=jnp.int32(1),
            )

        def accept(s: _Search):
            return s._replace(
                bt=pair(s.t, s.t), bf=pair(s.f, s.f), bg=jnp.stack([s.g, s.g]),
                bgtd=pair(s.gtd, s.gtd), stage=jnp.int32(2), wolfe=jnp.asarray(True),
            )

        branch = jnp.where(armijo_fails, 0, jnp.where(curvature_ok, 1, jnp.where(uphill, 0, 2)))
        extrapolating = branch == 2
        lower = s.t + 0.01 * (s.t - s.t_prev)
        upper = s.t * 10
        t_next = cubic_minimizer(s.t_prev, s.f_prev, s.gtd_prev, s.t, s.f, s.gtd, lower, upper)
        # the one evaluation of the body, only when extrapolating: a branch, not a select,
        # also inside an ensemble (any_member), where most members accept at once
        f_next, g_next = jax.lax.cond(
            any_member(extrapolating), lambda: at(jnp.where(extrapolating, t_next, s.t)), lambda: (s.f, s.g)
        )
        extrapolated = s._replace(
            t=t_next, f=f_next, g=g_next, gtd=jnp.vdot(g_next, direction),
            t_prev=s.t, f_prev=s.f, g_prev=s.g, gtd_prev=s.gtd,
            evaluations=s.evaluations + 1,
        )
        return jax.tree_util.tree_map(
            lambda a, b, c: jnp.where(branch == 0, a, jnp.where(branch == 1, b, c)),
            close_bracket(s), accept(s), extrapolated,
        )

    state = jax.lax.while_loop(bracket_cond, bracket_body, state)

    # out of evaluations while bracketing: choose between t = 0 and the last trial
    def exhausted(s: _Search):
        return s._replace(
            bt=pair(zero, s.t), bf=pair(loss, s.f), bg=jnp.stack([grad, s.g]),
            bgtd=pair(gtd0, s.gtd), stage=jnp.int32(1),
        )

    state = jax.lax.cond(state.stage == 0, exhausted, lambda s: s, state)
    state = state._replace(low=jnp.where(state.bf[0] <= state.bf[1], 0, 1).astype(jnp.int32))

    # ---- zoom ---------------------------------------------------------------------------
    def zoom_cond(s: _Search):
        width = jnp.abs(s.bt[1] - s.bt[0])
        return (s.stage == 1) & (s.evaluations - 1 < max_ls) & (width * d_norm >= tolerance_change)

    def zoom_body(s: _Search):
        lo_t, hi_t = jnp.min(s.bt), jnp.max(s.bt)
        t = cubic_minimizer(s.bt[0], s.bf[0], s.bgtd[0], s.bt[1], s.bf[1], s.bgtd[1], lo_t, hi_t)
        # keep the trial away from the bracket's ends when progress is poor
        margin = 0.1 * (hi_t - lo_t)
        near_end = jnp.minimum(hi_t - t, t - lo_t) < margin
        at_or_outside = (t >= hi_t) | (t <= lo_t)
        push = near_end & (s.insufficient | at_or_outside)
        pushed = jnp.where(jnp.abs(t - hi_t) < jnp.abs(t - lo_t), hi_t - margin, lo_t + margin)
        t = jnp.where(push, pushed, t)
        insufficient = near_end & ~push
        f_new, g_new = at(t)
        gtd_new = jnp.vdot(g_new, direction)
        low, high = s.low, 1 - s.low

        def set_end(bt, bf, bg, bgtd, index, t_, f_, g_, gtd_):
            return bt.at[index].set(t_), bf.at[index].set(f_), bg.at[index].set(g_), bgtd.at[index].set(gtd_)

        worse = (f_new > loss + c1 * t * gtd0) | (f_new >= s.bf[low])
        # case 1: the trial becomes the high end
        bt1, bf1, bg1, bgtd1 = set_end(s.bt, s.bf, s.bg, s.bgtd, high, t, f_new, g_new, gtd_new)
        low1 = jnp.where(bf1[0] <= bf1[1], 0, 1).astype(jnp.int32)
        # case 2: the trial becomes the low end (the old low may first move to the high end)
        wolfe2 = jnp.abs(gtd_new) <= -c2 * gtd0
        flip = ~wolfe2 & (gtd_new * (s.bt[high] - s.bt[low]) >= 0)
        bt2, bf2, bg2, bgtd2 = jax.lax.cond(
            flip,
            lambda: set_end(s.bt, s.bf, s.bg, s.bgtd, high, s.bt[low], s.bf[low], s.bg[low], s.bgtd[low]),
            lambda: (s.bt, s.bf, s.bg, s.bgtd),
        )
        bt2, bf2, bg2, bgtd2 = set_end(bt2, bf2, bg2, bgtd2, low, t, f_new, g_new, gtd_new)
        pick = lambda a, b: jnp.where(worse, a, b)  # noqa: E731
        return s._replace(
            bt=pick(bt1, bt2), bf=pick(bf1, bf2), bg=jnp.where(worse, bg1, bg2), bgtd=pick(bgtd1, bgtd2),
            low=pick(low1, low), stage=jnp.where(~worse & wolfe2, 2, 1).astype(jnp.int32),
            wolfe=~worse & wolfe2, evaluations=s.evaluations + 1, insufficient=insufficient,
        )

    state = jax.lax.while_loop(zoom_cond, zoom_body, state)
    low = state.low
    return LineSearchResult(
        step=state.bt[low], loss=state.bf[low], grad=state.bg[low],
        evaluations=state.evaluations, wolfe=state.wolfe,
    )


def armijo(value, w, direction, loss, gtd, *, alpha: float = 0.1, factor: float = 0.5, max_backtracks: int = 30):
    """Largest t in {1, factor, factor^2, ...} with L(w - t d) <= L(w) - alpha t g^T d.

    Algorithm 7 of the study. Returns (t, loss at w - t d, backtracks, success); on failure
    (``max_backtracks`` reached) t = 0 and the loss is L(w).
    """

    def cond(state):
        t, f_t, k = state
        return (~(f_t <= loss - alpha * t * gtd)) & (k < max_backtracks)

    def body(state):
        t, _, k = state
        t = t * factor
        return t, value(w - t * direction), k + 1

    t0 = jnp.ones((), loss.dtype)
    t, f_t, k = jax.lax.while_loop(cond, body, (t0, value(w - direction), jnp.int32(0)))
    ok = f_t <= loss - alpha * t * gtd
    return jnp.where(ok, t, 0.0), jnp.where(ok, f_t, loss), k, ok
