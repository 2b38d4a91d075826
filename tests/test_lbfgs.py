"""L-BFGS: against SciPy's L-BFGS-B and jaxopt's LBFGS on Rosenbrock and an ill-conditioned
quadratic, strong-Wolfe steps, the two-loop recursion against the dense BFGS matrix, stalls
and tolerances as reported stops, and Adam+L-BFGS on a tiny PINN."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

import jpinn
from jpinn.optim import LBFGS, Adam, LBFGSMemory, strong_wolfe
from jpinn.optim.lbfgs import DIRECTION_TOLERANCE, GRAD_TOLERANCE, LINE_SEARCH_STALL, LOSS_TOLERANCE, STEP_TOLERANCE


def rosenbrock(w):
    return jnp.sum(100 * (w[1:] - w[:-1] ** 2) ** 2 + (1 - w[:-1]) ** 2), {}


def _quadratic(n=12, condition=1e4, seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = q @ np.diag(np.logspace(0, np.log10(condition), n)) @ q.T
    b = rng.standard_normal(n)
    a_j, b_j = jnp.asarray(a), jnp.asarray(b)
    return (lambda w: (0.5 * w @ a_j @ w - b_j @ w, {})), a, b


def _minimise(f, w0, optimizer, max_steps=500):
    """Outer steps until the optimizer reports a stop; returns w, inner iterations, infos."""
    state = optimizer.init(f, w0)
    step = eqx.filter_jit(optimizer.step)
    w, iterations, infos = w0, 0, []
    for _ in range(max_steps):
        w, state, info = step(f, w, state)
        infos.append(jax.device_get(info))
        iterations += int(info["iterations"])
        if int(info["status"]) != 0:
            break
    return w, iterations, infos, state


def _scipy(f, w0):
    value = jax.jit(lambda v: f(v)[0])
    grad = jax.jit(jax.grad(lambda v: f(v)[0]))
    return scipy.optimize.minimize(
        lambda v: float(value(jnp.asarray(v))), np.asarray(w0), jac=lambda v: np.asarray(grad(jnp.asarray(v))),
        method="L-BFGS-B", options={"maxcor": 100, "gtol": 1e-10, "ftol": 1e-16, "maxiter": 5000},
    )


@pytest.mark.parametrize("n", [2, 5, 10])
def test_rosenbrock_matches_scipy(n, x64):
    w0 = jnp.asarray(np.tile([-1.2, 1.0], n)[:n], dtype=x64)
    w, iterations, infos, _ = _minimise(rosenbrock, w0, LBFGS(stop_on_tolerance=True))
    reference = _scipy(rosenbrock, w0)
    # both reach the minimiser (1, ..., 1): tolerance 1e-4 on the parameters, 1e-8 on the value
    np.testing.assert_allclose(np.asarray(w), np.ones(n), atol=1e-4)
    np.testing.assert_allclose(reference.x, np.ones(n), atol=1e-4)
    assert float(rosenbrock(w)[0]) < 1e-8 and reference.fun < 1e-8
    # iteration counts agree within a factor of 2 (different line searches: Moré-Thuente in
    # L-BFGS-B, the reference's cubic bracketing-zoom here)
    assert 0.5 * reference.nit <= iterations <= 2 * reference.nit + 10, (iterations, reference.nit)
    assert int(infos[-1]["status"]) in (GRAD_TOLERANCE, DIRECTION_TOLERANCE, STEP_TOLERANCE, LOSS_TOLERANCE)


def test_ill_conditioned_quadratic_matches_scipy_and_solution(x64):
    f, a, b = _quadratic()
    w0 = jnp.zeros(12, dtype=x64)
    # the reference's tolerance_change = 1e-9 on the loss allows errors ~ sqrt(1e-9 / lambda_min)
    # in w; tighter tolerances for a comparison to 1e-6
    tight = LBFGS(stop_on_tolerance=True, tolerance_change=1e-15, tolerance_grad=1e-10)
    w, iterations, _, _ = _minimise(f, w0, tight)
    exact = np.linalg.solve(a, b)
    reference = _scipy(f, w0)
    scale = np.linalg.norm(exact)
    assert np.linalg.norm(np.asarray(w) - exact) / scale < 1e-6
    assert np.linalg.norm(reference.x - exact) / scale < 1e-6
    assert float(f(w)[0]) == pytest.approx(reference.fun, rel=1e-8)
    assert 0.5 * reference.nit <= iterations <= 2 * reference.nit + 10, (iterations, reference.nit)


def test_agrees_with_jaxopt_lbfgs(x64):
    # jaxopt's LBFGS (zoom line search) is the independent JAX backend we cross-check against
    import jaxopt

    w0 = jnp.asarray([-1.2, 1.0, -1.2, 1.0, 0.5], dtype=x64)
    other = jaxopt.LBFGS(lambda v: rosenbrock(v)[0], maxiter=1000, tol=1e-10, history_size=100, linesearch="zoom").run(w0)
    w, _, _, _ = _minimise(rosenbrock, w0, LBFGS(stop_on_tolerance=True))
    np.testing.assert_allclose(np.asarray(w), np.asarray(other.params), atol=1e-4)
    f, a, b = _quadratic(seed=3)
    tight = LBFGS(stop_on_tolerance=True, tolerance_change=1e-15, tolerance_grad=1e-10)
    w, _, _, _ = _minimise(f, jnp.zeros(12, dtype=x64), tight)
    other = jaxopt.LBFGS(lambda v: f(v)[0], maxiter=1000, tol=1e-12, history_size=100).run(jnp.zeros(12, dtype=x64))
    np.testing.assert_allclose(np.asarray(w), np.asarray(other.params), rtol=1e-4, atol=1e-6)


def test_every_accepted_step_is_strong_wolfe(x64):
    # one inner iteration per outer step: each step's (t, d) is in the state afterwards
    opt = LBFGS(max_iter=1, stop_on_tolerance=True)
    f = rosenbrock
    w = jnp.asarray([-1.2, 1.0, -0.5, 0.3], dtype=x64)
    state = opt.init(f, w)
    step = eqx.filter_jit(opt.step)
    checked = 0
    for _ in range(200):
        loss, grad = state.loss, state.grad
        w_new, state, info = step(f, w, state)
        if int(info["status"]) != 0:
            break
        t, d = float(state.step_size), np.asarray(state.direction)
        gtd = float(np.dot(grad, d))
        assert gtd < 0
        if int(info["wolfe_failures"]) == 0:
            np.testing.assert_allclose(np.asarray(w_new), np.asarray(w) + t * d, rtol=1e-12, atol=1e-15)
            assert float(state.loss) <= float(loss) + 1e-4 * t * gtd
            assert abs(float(np.dot(state.grad, d))) <= 0.9 * abs(gtd)
            checked += 1
        w = w_new
    assert checked > 20


def test_line_search_on_a_one_dimensional_function(x64):
    # phi(t) = (t - 3)^2 + 0.1 t^4 along d = 1 from w = 0: minimiser of phi in (0, 3)
    f = lambda w: jnp.sum((w - 3.0) ** 2 + 0.1 * w**4)  # noqa: E731
    vg = jax.value_and_grad(f)
    w = jnp.zeros(1, dtype=x64)
    loss, grad = vg(w)
    for t0 in [1e-3, 0.5, 1.0, 10.0, 100.0]:
        r = strong_wolfe(vg, w, -grad, loss, grad, jnp.asarray(t0, x64))
        gtd = float(jnp.vdot(grad, -grad))
        assert bool(r.wolfe)
        assert float(r.loss) <= float(loss) + 1e-4 * float(r.step) * gtd
        assert abs(float(jnp.vdot(r.grad, -grad))) <= 0.9 * abs(gtd)
        assert int(r.evaluations) <= 26
        np.testing.assert_allclose(float(r.loss), float(f(w - r.step * grad)), rtol=1e-12)


def _dense_inverse(pairs, gamma, n):
    """H from the BFGS recursion H <- V^T H V + rho s s^T, V = I - rho y s^T, H_0 = gamma I."""
    h = gamma * np.eye(n)
    for s, y in pairs:
        rho = 1.0 / (y @ s)
        v = np.eye(n) - rho * np.outer(y, s)
        h = v.T @ h @ v + rho * np.outer(s, s)
    return h


def test_two_loop_equals_dense_bfgs_matrix(x64):
    rng = np.random.default_rng(0)
    n, m = 7, 4
    memory = LBFGSMemory.empty(m, jnp.zeros(n, dtype=x64))
    pairs = []
    a = rng.standard_normal((n, n))
    a = a @ a.T + n * np.eye(n)  # SPD: y = A s has positive curvature
    for k in range(6):  # more pairs than the memory holds: the oldest two drop out
        s = rng.standard_normal(n)
        y = a @ s
        memory = memory.push(jnp.asarray(s), jnp.asarray(y))
        pairs.append((s, y))
        # a pair with non-positive curvature is refused
        memory_same = memory.push(jnp.asarray(s), jnp.asarray(-y))
        assert int(memory_same.count) == int(memory.count)
        np.testing.assert_array_equal(np.asarray(memory_same.s), np.asarray(memory.s))
    kept = pairs[-m:]
    gamma = kept[-1][1] @ kept[-1][0] / (kept[-1][1] @ kept[-1][1])
    assert float(memory.gamma) == pytest.approx(gamma, rel=1e-12)
    h = _dense_inverse(kept, gamma, n)
    v = rng.standard_normal(n)
    np.testing.assert_allclose(np.asarray(memory.apply_inverse(jnp.asarray(v))), h @ v, rtol=1e-10)
    s_ord, y_ord, rho_ord, _ = memory.ordered()
    np.testing.assert_allclose(np.asarray(s_ord), np.stack([p[0] for p in kept]))
    np.testing.assert_allclose(np.asarray(rho_ord), [1 / (p[1] @ p[0]) for p in kept], rtol=1e-12)


def test_curvature_guard_rejects_zero_and_non_finite(x64):
    memory = LBFGSMemory.empty(3, jnp.zeros(2, dtype=x64))
    for s, y in [([1.0, 0.0], [0.0, 1.0]), ([1.0, 1.0], [jnp.nan, 1.0]), ([1e-6, 0.0], [1e-6, 0.0]),
                 ([1.0, 0.0], [jnp.inf, 0.0])]:
        memory = memory.push(jnp.asarray(s, x64), jnp.asarray(y, x64))
    assert int(memory.count) == 0 and float(memory.gamma) == 1.0
    assert np.all(np.isfinite(np.asarray(memory.apply_inverse(jnp.ones(2, x64)))))


def test_stall_ends_the_phase_with_its_reason(misleading_loss):
    # along the (wrong) descent direction every step raises the loss: the search accepts
    # nothing, the phase ends with the stall, parameters unchanged and finite
    f = misleading_loss
    w0 = jnp.array([1.0, -2.0, 0.5])
    result = jpinn.train(f, w0, [jpinn.Phase(LBFGS(), 200)], log_every=20, progress=False)
    (phase,) = result.phases
    assert phase.stop_code == LINE_SEARCH_STALL and "no acceptable step" in phase.stop_reason
    assert phase.steps == 1 and phase.evaluations <= 26
    np.testing.assert_array_equal(np.asarray(result.w), np.asarray(w0))


def test_gradient_tolerance_stops_at_a_minimum():
    f = lambda w: (jnp.sum((w - 1.0) ** 2), {})  # noqa: E731
    result = jpinn.train(f, jnp.zeros(3), [jpinn.Phase(LBFGS(), 400)], log_every=20, progress=False)
    (phase,) = result.phases
    assert phase.stop_code in (GRAD_TOLERANCE, DIRECTION_TOLERANCE)
    assert phase.iterations < 400 and phase.steps < 20
    np.testing.assert_allclose(np.asarray(result.w), 1.0, atol=1e-5)


def test_iteration_accounting_in_the_driver(tiny_problem):
    _, _, _, loss, w0 = tiny_problem()
    records = []
    result = jpinn.train(
        loss, w0, [jpinn.Phase(Adam(1e-2), 100), jpinn.Phase(LBFGS(), 200)],
        log_every=100, callback=records.append, progress=False,
    )
    adam, lbfgs = result.phases
    assert (adam.steps, adam.iterations, adam.evaluations) == (100, 100, 100)
    # 200 study-counted iterations = 10 outer steps of at most 20 inner iterations
    assert lbfgs.steps <= 10 and lbfgs.iterations <= 200
    assert lbfgs.stop_code != 0 or lbfgs.steps == 10
    assert lbfgs.evaluations >= lbfgs.iterations  # at least one evaluation per line search
    last = records[-1]
    assert last["step"] == lbfgs.steps and last["evaluations"] == lbfgs.evaluations
    assert last["iteration"] == 100 + lbfgs.iterations
    assert set(last["info"]) >= {"step_size", "memory_pairs", "wolfe_failures", "break_reason"}
    # the final L-BFGS memory is reachable from the result
    memory = result.states[1].memory
    s, y, rho, gamma = memory.ordered()
    assert s.shape == y.shape == (int(memory.count), w0.shape[0]) and last["info"]["memory_pairs"] == int(memory.count)
    np.testing.assert_allclose(np.asarray(rho), 1 / np.sum(np.asarray(s) * np.asarray(y), axis=1), rtol=1e-4)


@pytest.mark.slow
def test_adam_lbfgs_beats_adam_alone_on_a_tiny_pinn(tiny_problem):
    _, _, _, loss, w0 = tiny_problem("convection", width=10, beta=5.0)
    adam = jpinn.train(loss, w0, [jpinn.Phase(Adam(1e-3), 600)], log_every=100, progress=False)
    both = jpinn.train(loss, w0, [jpinn.Phase(Adam(1e-3), 200), jpinn.Phase(LBFGS(), 400)],
                       log_every=100, progress=False)
    assert both.phases[1].iterations <= 400
    assert float(loss(both.w)[0]) < 0.5 * float(loss(adam.w)[0])


@pytest.mark.parametrize(
    "kwargs,field",
    [({"learning_rate": 0}, "learning_rate"), ({"max_iter": 0}, "max_iter"), ({"history_size": 2.5}, "history_size"),
     ({"tolerance_grad": -1.0}, "tolerance_grad"), ({"c1": 0.95}, "c1"), ({"max_eval": 0}, "max_eval"),
     ({"stop_on_tolerance": "yes"}, "stop_on_tolerance")],
)
def test_lbfgs_rejects_bad_hyperparameters(kwargs, field):
    with pytest.raises(ValueError, match=field):
        LBFGS(**kwargs)
