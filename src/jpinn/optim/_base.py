"""The one optimizer interface of jpinn (DESIGN.md, "One optimizer interface").

An optimizer is a frozen ``eqx.Module`` whose fields are its hyperparameters, with

    init(f, w) -> state
    step(f, w, state) -> (w, state, info)

``f(w) -> (loss, components)`` is the loss over a flat parameter vector ``w``. ``state``
and ``info`` are pytrees of fixed-shape arrays, so a step compiles once and runs inside
``lax.scan``. ``info`` always holds

- ``loss``: the loss at the ``w`` the step started from,
- ``grad_norm``: the 2-norm of the gradient there,
- ``iterations``: how many iterations the step counts for (the study's counting: an
  L-BFGS outer step of 20 inner iterations counts 20),
- ``evaluations``: how many loss-and-gradient evaluations the step made,
- ``status``: 0 while the method can go on, else a ``StopReason`` code that ends the
  phase after this step (an int32 array: the enumeration only names the codes);

and anything else the method wants logged. Optimizers never log, print or touch files.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import math
import types
from collections.abc import Mapping
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp


class StopReason(enum.IntEnum):
    """Why a phase ended: every stop code of jpinn, with its message.

    0 and 1 are set by the driver, 20 by its divergence guard; optimizers return codes
    2..9. The integers are stored in log records, run folders and summaries (``stop_code``
    next to ``stop_reason``, the message), so a code keeps its number and its message for
    good; a new one takes the next free number. Inside compiled code a status is a plain
    int32 array: the enumeration only names its codes, and the modules' names for them
    (``RUNNING``, ``ARMIJO_FAILED``, ``DIVERGED``, ...) are those codes as plain ints.
    ``StopReason(code).message`` is a code's message; ``stop_reason(code)`` also names a
    code this enumeration does not hold.
    """

    message: str

    def __new__(cls, code: int, message: str):
        member = int.__new__(cls, code)
        member._value_ = code
        member.message = message
        return member

    # the driver (jpinn.train)
    RUNNING = 0, "budget"
    NONFINITE = 1, "non-finite loss, gradient or parameters (kept the last finite parameters)"
    # L-BFGS (jpinn.optim.lbfgs)
    GRAD_TOLERANCE = 2, "gradient below tolerance_grad (max|g| <= tolerance_grad)"
    DIRECTION_TOLERANCE = 3, "directional derivative above -tolerance_change (g^T d > -tolerance_change)"
    STEP_TOLERANCE = 4, "step below tolerance_change (max|t d| <= tolerance_change)"
    LOSS_TOLERANCE = 5, "loss change below tolerance_change"
    LINE_SEARCH_STALL = 6, "line search found no acceptable step (no trial lowered the loss: t = 0)"
    # Armijo backtracking (jpinn.optim.linesearch.armijo: NNCG and GD)
    ARMIJO_FAILED = 7, "Armijo backtracking found no decrease within max_backtracks"
    # NNCG (jpinn.optim.nncg)
    PRECONDITIONER_FAILED = 8, (
        "Nystrom preconditioner not finite (Cholesky and its eigendecomposition fallback both failed)"
    )
    CG_BREAKDOWN = 9, "CG breakdown: non-finite curvature p^T (H + mu I) p or residual"
    # Gauss-Newton and ARNCG (jpinn.optim.gauss_newton, jpinn.optim.arncg)
    DAMPING_LIMIT = 10, (
        "no acceptable step: the damping or regulariser went past its maximum (or max_rejections trials)"
    )
    SOLVE_FAILED = 11, "Gauss-Newton linear solve failed (Cholesky or CG not finite)"
    # the driver's divergence guard (jpinn.train)
    DIVERGED = 20, (
        "diverged: loss above divergence x the loss where the phase started"
        " (kept the parameters before the step)"
    )


def stop_reason(code: int) -> str:
    """The message of stop code ``code``; ``"code N"`` for a code jpinn does not know
    (a run folder written by a later version, say)."""
    try:
        return StopReason(int(code)).message
    except ValueError:
        return f"code {int(code)}"


# the driver's codes under their own names, as plain ints (what a status array and a phase's
# stop_code hold); the optimizers' codes are named likewise in their modules
RUNNING = int(StopReason.RUNNING)
NONFINITE = int(StopReason.NONFINITE)
# code -> message, read-only (derived from StopReason)
STOP_REASONS: Mapping[int, str] = types.MappingProxyType({int(r): r.message for r in StopReason})


# the codes that end a phase on a fault rather than by its budget or a convergence test
# (a run whose phases all end on one exits with status 3: scripts/train.py)
FAULTS = frozenset(int(r) for r in (StopReason.NONFINITE, StopReason.PRECONDITIONER_FAILED, StopReason.CG_BREAKDOWN,
                                    StopReason.SOLVE_FAILED, StopReason.DIVERGED))

# the vmap axis of an ensemble's members (jpinn.ensemble)
ENSEMBLE_AXIS = "ensemble"


def any_member(flag):
    """``flag`` for a solo run; inside an ensemble (traced under ``jpinn.ensemble``'s vmap),
    whether it holds for any member, as one unbatched boolean.

    Under vmap, ``lax.cond`` on a per-member predicate becomes a select that computes both
    branches for every member: an expensive branch that is rarely taken (a Nystrom sketch
    every ``refresh`` steps, a line search's extrapolation) would then run at every call.
    ``lax.cond(any_member(flag), lambda: where(flag, expensive(), cheap), lambda: cheap)``
    stays a branch, taken when some member needs it, each member keeping its own result.
    """
    try:
        return jax.lax.psum(jnp.asarray(flag).astype(jnp.int32), ENSEMBLE_AXIS) > 0
    except NameError:  # no ensemble axis: a solo run
        return flag


def rebuilt_where(flag, build, previous):
    """``previous`` with ``build()`` in its place where ``flag`` holds (per member in an ensemble).

    ``build`` runs inside a branch taken only when some member needs it (``any_member``), so
    an expensive rebuild (a Nystrom sketch, an eigendecomposition fallback) costs nothing on
    the calls where no member asks for it. ``previous`` and ``build()`` are pytrees of one
    structure."""
    return jax.lax.cond(
        any_member(flag),
        lambda: jax.tree_util.tree_map(lambda new, old: jnp.where(flag, new, old), build(), previous),
        lambda: previous,
    )


def check_positive(optimizer: str, field: str, value: Any, *, integer: bool = False) -> None:
    """One-line ValueError unless ``value`` is a finite number > 0 (an integer if asked)."""
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        raise ValueError(f"{field}: must be {kind} > 0, got {value!r} ({optimizer})")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{field}: must be {kind} > 0, got {value!r} ({optimizer})")


def check_fraction(optimizer: str, field: str, value: Any, *, closed_below: bool = False) -> None:
    """One-line ValueError unless ``value`` lies in (0, 1), or in [0, 1) if ``closed_below``."""
    interval = "[0, 1)" if closed_below else "(0, 1)"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
        (0 <= value < 1) if closed_below else (0 < value < 1)
    )
    if not ok:
        raise ValueError(f"{field}: must be a number in {interval}, got {value!r} ({optimizer})")


def base_info(loss, grad_norm, iterations: int = 1, status: int = RUNNING, evaluations: int = 1) -> dict[str, Any]:
    """The five entries every ``info`` carries."""
    return {
        "loss": loss,
        "grad_norm": grad_norm,
        "iterations": jnp.asarray(iterations, jnp.int32),
        "evaluations": jnp.asarray(evaluations, jnp.int32),
        "status": jnp.asarray(status, jnp.int32),
    }


class AbstractOptimizer(eqx.Module):
    """Base class: subclasses are final and set ``name`` and ``iterations_per_step``."""

    name: ClassVar[str]
    # how many study-counted iterations one step is at most (Adam 1, L-BFGS max_iter)
    iterations_per_step: ClassVar[int] = 1

    @abc.abstractmethod
    def init(self, f, w) -> Any:
        """The optimizer state for starting at ``w``."""

    @abc.abstractmethod
    def step(self, f, w, state) -> tuple[Any, Any, dict[str, Any]]:
        """One step from ``w``: the new parameters, the new state and the step's info."""

    def hyperparameters(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
