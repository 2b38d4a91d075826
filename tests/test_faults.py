"""Numerical faults, each provoked: the phase ends cleanly with its reason in the log record
and the phase report, keeping finite parameters, and the next phase goes on from them.
(A line search with no acceptable step: tests/test_lbfgs.py::test_stall_ends_the_phase_with_its_reason
and tests/test_nncg.py::test_gd_stops_cleanly_when_armijo_fails.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jpinn
from jpinn.optim import GD, NNCG, STOP_REASONS, Adam
from jpinn.optim.nncg import CG_BREAKDOWN, PRECONDITIONER_FAILED
from jpinn.train import DIVERGED


def _sum_of_squares_with_bad_curvature(w0, radius):
    """f(w) = sum(w^2) whose gradient (2 w) is exact but whose Hessian-vector products are
    NaN farther than ``radius`` from ``w0`` (everywhere when radius < 0): a Hessian the
    sketch and CG cannot use while the loss and gradient stay finite."""

    @jax.custom_jvp
    def slope(w):
        return 2 * w

    @slope.defjvp
    def _slope_jvp(primals, tangents):
        (w,), (t,) = primals, tangents
        bad = jnp.max(jnp.abs(w - w0)) > radius
        return 2 * w, jnp.where(bad, jnp.nan, 2.0) * t

    @jax.custom_jvp
    def square(w):
        return w**2

    @square.defjvp
    def _square_jvp(primals, tangents):
        (w,), (t,) = primals, tangents
        return w**2, slope(w) * t

    return lambda w: (jnp.sum(square(w)), {"residual": jnp.sum(square(w))})


def _last_record(result, phase_index):
    return [r for r in result.records if r["phase_index"] == phase_index][-1]


@pytest.mark.slow
def test_a_learning_rate_that_makes_adam_diverge_ends_the_phase(tiny_problem):
    _, _, _, f, w0 = tiny_problem(n_residual=100)
    start = float(f(w0)[0])
    result = jpinn.train(f, w0, [jpinn.Phase(Adam(1e6), 200), jpinn.Phase(Adam(1e-3), 20)],
                         log_every=10, progress=False, divergence=1e3)
    diverged, recovered = result.phases
    assert diverged.stop_code == DIVERGED and diverged.stop_reason == STOP_REASONS[DIVERGED]
    assert diverged.iterations < 200 and _last_record(result, 0)["status"] == DIVERGED
    assert np.isfinite(diverged.loss) and diverged.loss <= 1e3 * start  # the step that blew up was dropped
    assert recovered.stop_reason == "budget" and recovered.iterations == 20  # the next phase goes on
    # without the guard the same run only wanders at huge losses (nothing stops it)
    unguarded = jpinn.train(f, w0, [jpinn.Phase(Adam(1e6), 200)], log_every=50, progress=False, divergence=None)
    assert unguarded.phases[0].stop_reason == "budget" and max(r["loss"] for r in unguarded.records) > 1e3 * start


def test_a_preconditioner_that_fails_after_the_fallback_ends_nncg():
    w0 = jnp.ones(6)
    f = _sum_of_squares_with_bad_curvature(w0, radius=-1.0)
    result = jpinn.train(f, w0, [jpinn.Phase(NNCG(rank=3, refresh=5, cg_max_iter=4), 5, log_every=1),
                                 jpinn.Phase(GD(), 3, log_every=1)], progress=False)
    nncg, gd = result.phases
    assert nncg.stop_code == PRECONDITIONER_FAILED and "eigendecomposition fallback" in nncg.stop_reason
    record = _last_record(result, 0)
    assert record["status"] == PRECONDITIONER_FAILED and record["info"]["cholesky_failed"]
    assert np.array_equal(np.asarray(result.phase_w[0]), np.asarray(w0))  # w unchanged
    assert gd.iterations == 3 and gd.loss < nncg.loss  # GD (no Hessian) goes on from there


def test_a_cg_breakdown_ends_nncg_keeping_the_last_good_step():
    w0 = jnp.ones(6)
    f = _sum_of_squares_with_bad_curvature(w0, radius=0.5)  # fine at w0, NaN once NNCG has moved
    result = jpinn.train(f, w0, [jpinn.Phase(NNCG(rank=3, refresh=20, cg_max_iter=4), 5, log_every=1)],
                         progress=False)
    (nncg,) = result.phases
    assert nncg.stop_code == CG_BREAKDOWN and nncg.steps == 2  # the second step broke down
    first, second = [r for r in result.records if r["phase_index"] == 0 and r["step"] > 0]
    assert first["status"] == 0 and second["info"]["cg_breakdown"] and second["status"] == CG_BREAKDOWN
    assert np.all(np.isfinite(np.asarray(result.w))) and float(f(result.w)[0]) < float(f(w0)[0])


def test_a_nan_loss_ends_the_phase_with_its_reason_in_log_and_summary(tmp_path, tiny_problem):
    """The driver's own guard, through execute(): a loss that turns NaN after a few steps."""
    _, _, _, f, w0 = tiny_problem(n_residual=100)
    poisoned = lambda w: jax.tree_util.tree_map(  # noqa: E731
        lambda x: jnp.where(jnp.max(jnp.abs(w - w0)) > 0.02, jnp.nan, x), f(w))
    result = jpinn.train(poisoned, w0, [jpinn.Phase(Adam(1e-2), 100)], log_every=5, progress=False)
    (phase,) = result.phases
    assert phase.stop_code == 1 and "non-finite" in phase.stop_reason and 0 < phase.iterations < 100
    assert np.isfinite(float(poisoned(result.w)[0]))  # the last finite parameters
    assert _last_record(result, 0)["status"] == 1
