"""The optimizers beyond NNCG (jpinn.optim.gauss_newton, arncg, ssbfgs) against independent
references: least squares by dense linear algebra, SciPy's Levenberg-Marquardt and BFGS on
Rosenbrock, the dense Jacobian from jax.jacfwd, a strict saddle, and a tiny PINN where
Adam+L-BFGS stalled."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

import jpinn
from jpinn.linalg import gauss_newton_product, linearize_residuals, nystrom, gauss_newton_block, dense_jacobian
from jpinn.optim import ARNCG, GaussNewton, LBFGS, LeastSquares, SSBFGS, SSBroyden, Adam, make_optimizer, StopReason


def _run(optimizer, f, w, steps):
    state = optimizer.init(f, w)
    step = jax.jit(lambda w, s: optimizer.step(f, w, s))
    infos = []
    for _ in range(steps):
        w, state, info = step(w, state)
        infos.append(jax.device_get(info))
        if int(info["status"]) != 0:
            break
    return w, infos


def _rosenbrock(w):
    return jnp.stack([10.0 * (w[1] - w[0] ** 2), 1.0 - w[0]])


@pytest.mark.parametrize("solver,m", [("cg", 30), ("cholesky", 30), ("woodbury", 6)])
def test_gauss_newton_solves_linear_least_squares_in_one_step(x64, solver, m):
    rng = np.random.default_rng(0)
    p = 10
    a = rng.normal(size=(m, p))
    b = rng.normal(size=m)
    f = LeastSquares(lambda w: jnp.asarray(a) @ w - jnp.asarray(b))
    opt = GaussNewton(solver=solver, damping_init=1e-12, damping_min=1e-12, cg_max_iter=200, cg_rtol=1e-14,
                      rank=p)
    w, infos = _run(opt, f, jnp.zeros(p), 1)
    # least squares (m >= p) or the minimum-norm solution (m < p: Woodbury, from w = 0)
    exact = np.linalg.lstsq(a, b, rcond=None)[0]
    np.testing.assert_allclose(np.asarray(w), exact, rtol=1e-6, atol=1e-8)
    assert bool(infos[0]["accepted"]) and int(infos[0]["status"]) == 0


def test_levenberg_marquardt_on_rosenbrock_matches_scipy_lm(x64):
    w0 = np.array([-1.2, 1.0])
    reference = scipy.optimize.least_squares(lambda w: np.asarray(_rosenbrock(jnp.asarray(w))), w0, method="lm",
                                             xtol=1e-15, ftol=1e-15, gtol=1e-15)
    f = LeastSquares(_rosenbrock)
    w, infos = _run(GaussNewton(solver="cholesky", damping_init=1e-3), f, jnp.asarray(w0), 100)
    np.testing.assert_allclose(np.asarray(w), reference.x, atol=1e-10)
    np.testing.assert_allclose(np.asarray(_rosenbrock(w)), reference.fun, atol=1e-10)
    # it adapted its damping: some trials rejected, the gain ratio logged
    assert any(int(i["rejections"]) > 0 for i in infos) or len(infos) < 100
    assert all(np.isfinite(float(i["gain_ratio"])) for i in infos)


@pytest.mark.slow
def test_matrix_free_gauss_newton_product_equals_the_dense_jacobian(x64, tiny_problem):
    _, _, _, loss, w0 = tiny_problem("convection", width=6, n_residual=40, dtype=jnp.float64, beta=5.0)
    lin = linearize_residuals(loss.residuals, w0)
    jac = jax.jacfwd(loss.residuals)(w0)
    v = jax.random.normal(jax.random.PRNGKey(1), w0.shape, jnp.float64)
    np.testing.assert_allclose(np.asarray(gauss_newton_product(lin, v)), np.asarray(jac.T @ (jac @ v)),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(dense_jacobian(lin, w0.shape[0])), np.asarray(jac), rtol=1e-10,
                               atol=1e-12)
    # the loss is ||r||^2
    np.testing.assert_allclose(float(loss(w0)[0]), float(jnp.vdot(lin.residuals, lin.residuals)), rtol=1e-12)


def test_nystrom_sketch_of_the_gauss_newton_matrix_against_the_dense_one(x64):
    # J of rank 8 in 40 parameters: a rank-12 sketch reproduces J^T J exactly
    rng = np.random.default_rng(2)
    left, right = rng.normal(size=(50, 8)), rng.normal(size=(8, 40))
    a = jnp.asarray(left @ right)
    lin = linearize_residuals(lambda w: a @ w, jnp.zeros(40))
    approx = nystrom(lambda v: gauss_newton_block(lin, v), jax.random.PRNGKey(0), 40, 12, dtype=jnp.float64)
    dense = np.asarray(a.T @ a)
    rebuilt = np.asarray(approx.U @ jnp.diag(approx.eigenvalues) @ approx.U.T)
    np.testing.assert_allclose(rebuilt, dense, atol=1e-8 * np.abs(dense).max())
    np.testing.assert_allclose(np.sort(np.asarray(approx.eigenvalues))[::-1][:8], np.linalg.eigvalsh(dense)[::-1][:8],
                               rtol=1e-8)


def test_arncg_escapes_a_strict_saddle_by_negative_curvature(x64):
    # f = x^2 - y^2 + y^4 / 4: a strict saddle at 0, minima at (0, +-sqrt 2) with f = -1.
    # From (1, 1e-3) Newton's method goes to the saddle; ARNCG must find the minimum.
    def f(w):
        return w[0] ** 2 - w[1] ** 2 + w[1] ** 4 / 4, {}

    w, infos = _run(ARNCG(), f, jnp.asarray([1.0, 1e-3]), 60)
    assert any(bool(i["negative_curvature"]) for i in infos)
    np.testing.assert_allclose(abs(float(w[1])), np.sqrt(2.0), rtol=1e-6)
    np.testing.assert_allclose(float(f(w)[0]), -1.0, atol=1e-10)
    # plain Newton (H^-1 g) from the same start converges to the saddle
    x = np.array([1.0, 1e-3])
    for _ in range(30):
        g = np.array([2 * x[0], -2 * x[1] + x[1] ** 3])
        h = np.diag([2.0, -2.0 + 3 * x[1] ** 2])
        x = x - np.linalg.solve(h, g)
    assert np.abs(x).max() < 1e-8


@pytest.mark.parametrize("cls", [SSBFGS, SSBroyden])
def test_self_scaled_quasi_newton_on_rosenbrock_against_scipy_bfgs(x64, cls):
    def value(w):
        return 100.0 * (w[1] - w[0] ** 2) ** 2 + (1.0 - w[0]) ** 2

    reference = scipy.optimize.minimize(lambda w: float(value(jnp.asarray(w))), np.array([-1.2, 1.0]),
                                        jac=lambda w: np.asarray(jax.grad(value)(jnp.asarray(w))), method="BFGS",
                                        options={"gtol": 1e-10})
    w, infos = _run(cls(), lambda w: (value(w), {}), jnp.asarray([-1.2, 1.0]), 200)
    np.testing.assert_allclose(np.asarray(w), reference.x, atol=1e-6)
    assert float(value(w)) < 1e-12
    assert sum(bool(i["updated"]) for i in infos) > 10
    # as many iterations as scipy's BFGS, within a factor of 2
    assert len(infos) <= 2 * reference.nit + 5, (len(infos), reference.nit)


def test_ssbfgs_refuses_a_network_above_max_parameters():
    with pytest.raises(ValueError, match="max_parameters"):
        SSBFGS(max_parameters=5).init(lambda w: (jnp.sum(w**2), {}), jnp.zeros(6))


@pytest.mark.parametrize("name,settings", [
    ("gauss_newton", {"rank": 20, "cg_max_iter": 50}),
    ("gauss_newton", {"solver": "cholesky"}),
    ("gauss_newton", {"damping": "line_search", "damping_init": 1e-6, "solver": "cholesky"}),
    ("arncg", {"cg_max_iter": 50}),
    ("ssbfgs", {}),
    ("ssbroyden", {}),
])
@pytest.mark.slow
def test_each_lowers_a_tiny_pinn_loss_below_where_adam_lbfgs_stalled(tiny_problem, name, settings):
    _, _, _, loss, w0 = tiny_problem("convection", width=8, beta=5.0)
    first = jpinn.train(loss, w0, [jpinn.Phase(Adam(1e-3), 300), jpinn.Phase(LBFGS(), 1000)],
                        log_every=100, progress=False)
    start = float(loss(first.w)[0])
    records = []
    after = jpinn.train(loss, first.w, [jpinn.Phase(make_optimizer(name, **settings), 15)], log_every=1,
                        callback=records.append, progress=False)
    end = float(loss(after.w)[0])
    assert end < start, (name, start, end)
    assert records[-1]["info"], records[-1]


def test_bad_settings_are_one_line_errors():
    for name, settings, field in [("gauss_newton", {"solver": "qr"}, "solver"),
                                  ("gauss_newton", {"damping": "trust"}, "damping"),
                                  ("gauss_newton", {"damping_init": 1e20}, "damping_init"),
                                  ("arncg", {"gamma": 1.0}, "gamma"),
                                  ("ssbfgs", {"c1": 0.95}, "c1")]:
        with pytest.raises(ValueError, match=field) as error:
            make_optimizer(name, **settings)
        assert "\n" not in str(error.value)


def test_gauss_newton_needs_residuals():
    with pytest.raises(ValueError, match="residuals"):
        GaussNewton().init(lambda w: (jnp.sum(w**2), {}), jnp.zeros(3))


def test_stop_codes_are_named():
    assert StopReason.DAMPING_LIMIT == 10 and StopReason.SOLVE_FAILED == 11


@pytest.mark.slow
def test_new_optimizers_resume_from_every_checkpoint_to_the_same_bits(tiny_problem, tmp_path):
    """Adam -> Gauss-Newton (LM, Nystrom-PCG: damping, warm start, sketch, key in the state)
    -> ARNCG -> SSBFGS (dense H) with a checkpoint every 2 steps, each saved, read back, resumed."""
    from jpinn import io
    from jpinn.train import train

    _, _, _, f, w0 = tiny_problem(n_residual=100)
    phases = [jpinn.Phase(Adam(1e-2), 20),
              jpinn.Phase(GaussNewton(rank=5, refresh=2, cg_max_iter=10), 5, log_every=1),
              jpinn.Phase(ARNCG(cg_max_iter=10), 4, log_every=1),
              jpinn.Phase(SSBFGS(), 6, log_every=2)]
    folders = []

    def save(checkpoint):
        folder = tmp_path / f"ck{len(folders)}"
        io.save_train_checkpoint(folder, checkpoint, {"seed": 0})
        folders.append(folder)

    full = train(f, w0, phases, log_every=10, progress=False, checkpoint=save, checkpoint_every=2)
    seen = set()
    for folder in folders:
        checkpoint, meta = io.load_train_checkpoint(folder, f, w0, phases)
        seen.add((meta["phase_index"], meta["has_state"]))
        resumed = train(f, w0, phases, log_every=10, progress=False, resume=checkpoint,
                        records=full.records[: checkpoint.n_records])
        assert np.array_equal(np.asarray(resumed.w), np.asarray(full.w)), meta
    assert {(k, True) for k in (1, 2, 3)} <= seen
