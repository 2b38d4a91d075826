"""NNCG and GD: Armijo, a strictly convex quadratic, a tiny PINN after L-BFGS, GD's
monotone decrease, flags and configs."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jpinn
from jpinn.optim import GD, LBFGS, NNCG, Adam, armijo
from jpinn.optim.nncg import ARMIJO_FAILED


def test_armijo_accepts_only_sufficient_decrease(x64):
    f = lambda w: jnp.sum(w**4) + jnp.sum(w**2)  # noqa: E731
    w = jnp.array([1.0, -0.5, 2.0], dtype=x64)
    g = jax.grad(f)(w)
    for scale in [0.01, 1.0, 10.0, 1000.0]:
        d = scale * g
        gtd = jnp.vdot(g, d)
        t, f_t, k, ok = armijo(f, w, d, f(w), gtd)
        assert bool(ok)
        assert float(f_t) <= float(f(w)) - 0.1 * float(t) * float(gtd)
        assert float(f_t) == pytest.approx(float(f(w - t * d)), rel=1e-12)
        assert float(t) == 0.5 ** int(k)
        if int(k) > 0:  # the previous, larger step failed the test
            t_prev = 2 * float(t)
            assert float(f(w - t_prev * d)) > float(f(w)) - 0.1 * t_prev * float(gtd)
    # an ascent "direction" never passes: the cap is reached and flagged
    t, f_t, k, ok = armijo(f, w, -g, f(w), jnp.vdot(g, -g), max_backtracks=12)
    assert not bool(ok) and int(k) == 12 and float(t) == 0.0 and float(f_t) == float(f(w))


def test_nncg_minimises_a_convex_quadratic_in_few_steps(x64):
    rng = np.random.default_rng(0)
    n = 30
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = q @ np.diag(np.logspace(0, 4, n)) @ q.T
    b = rng.standard_normal(n)
    a_j, b_j = jnp.asarray(a), jnp.asarray(b)
    f = lambda w: (0.5 * w @ a_j @ w - b_j @ w, {})  # noqa: E731
    opt = NNCG(mu=1e-8, rank=10, cg_max_iter=100, cg_tol=1e-12)
    w = jnp.zeros(n, dtype=x64)
    state = opt.init(f, w)
    step = eqx.filter_jit(opt.step)
    infos = []
    for _ in range(3):
        w, state, info = step(f, w, state)
        infos.append(info)
    exact = np.linalg.solve(a, b)
    np.testing.assert_allclose(np.asarray(w), exact, rtol=1e-6, atol=1e-8)
    # the first step is a full Newton step on (A + mu I): t = 1, a descent direction
    assert float(infos[0]["step_size"]) == 1.0 and not bool(infos[0]["fallback"])
    assert int(infos[0]["hvps"]) == 10 + int(infos[0]["cg_iterations"]) + 1


@pytest.mark.slow
def test_nncg_lowers_the_loss_where_lbfgs_stopped(tiny_problem):
    _, _, _, loss, w0 = tiny_problem("convection", width=10, beta=5.0)
    first = jpinn.train(loss, w0, [jpinn.Phase(Adam(1e-3), 300), jpinn.Phase(LBFGS(), 600)],
                        log_every=100, progress=False)
    start = float(loss(first.w)[0])
    records = []
    after = jpinn.train(loss, first.w, [jpinn.Phase(NNCG(mu=1e-2, rank=20, cg_max_iter=100), 20)],
                        log_every=5, callback=records.append, progress=False)
    end = float(loss(after.w)[0])
    assert end < start, (start, end)
    info = records[-1]["info"]
    assert {"step_size", "cg_iterations", "hvps", "backtracks", "fallback", "cg_residual"} <= set(info)
    assert 0 < info["cg_iterations"] <= 100 and info["hvps"] >= info["cg_iterations"]


def test_gd_never_increases_the_loss(tiny_problem):
    _, _, _, loss, w0 = tiny_problem("reaction")
    records = []
    jpinn.train(loss, w0, [jpinn.Phase(GD(), 60)], log_every=1, callback=records.append, progress=False)
    losses = [r["loss"] for r in records]
    assert all(b <= a for a, b in zip(losses, losses[1:]))
    assert losses[-1] < losses[0]


def test_gd_stops_cleanly_when_armijo_fails(misleading_loss):
    f = misleading_loss
    result = jpinn.train(f, jnp.array([1.0, 2.0]), [jpinn.Phase(GD(max_backtracks=10), 50)],
                         log_every=10, progress=False)
    (phase,) = result.phases
    assert phase.stop_code == ARMIJO_FAILED and phase.iterations == 1
    np.testing.assert_array_equal(np.asarray(result.w), [1.0, 2.0])


@pytest.mark.parametrize(
    "kwargs,field",
    [({"mu": 0}, "mu"), ({"rank": 0}, "rank"), ({"refresh": -1}, "refresh"), ({"cg_max_iter": 0}, "cg_max_iter"),
     ({"cg_rtol": -1.0}, "cg_rtol"), ({"cg_forcing": "quadratic"}, "cg_forcing"), ({"shift": "none"}, "shift"),
     ({"cg_negative_curvature": "ignore"}, "cg_negative_curvature"),
     ({"armijo_alpha": 1.5}, "armijo_alpha")],
)
def test_nncg_rejects_bad_hyperparameters(kwargs, field):
    with pytest.raises(ValueError, match=field):
        NNCG(**kwargs)
