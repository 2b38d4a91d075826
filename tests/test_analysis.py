"""Landscape analysis against dense linear algebra: Lanczos, stochastic Lanczos quadrature,
the L-BFGS factor and its preconditioned spectrum, condition numbers, line scans, the CLI."""

import json
import math
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jpinn
from jpinn import analysis
from jpinn.linalg import lanczos
from jpinn.linalg.hvp import scalar_loss
from jpinn.optim import LBFGS

from conftest import ROOT


def _matrix(spectrum, seed=0):
    """U diag(spectrum) U^T with a random orthogonal U (float64 NumPy)."""
    n = len(spectrum)
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return (q * np.asarray(spectrum)) @ q.T


def _matvec(a):
    a = jnp.asarray(a)
    return lambda v: a @ v


def test_lanczos_reproduces_the_extreme_eigenvalues(x64):
    rng = np.random.default_rng(1)
    spectrum = np.concatenate([[-50.0, -20.0], rng.uniform(-1, 1, 196), [30.0, 100.0]])
    a = _matrix(spectrum)
    tri = jax.jit(lambda v: lanczos(_matvec(a), v, 40))(jnp.asarray(rng.normal(size=200)))
    values, weights = tri.ritz()
    assert int(tri.size) == 40
    np.testing.assert_allclose(values[[-1, -2, 0, 1]], [100.0, 30.0, -50.0, -20.0], rtol=1e-10)
    assert weights.sum() == pytest.approx(1.0, abs=1e-12)


def test_lanczos_with_p_steps_gives_every_eigenvalue_and_stops_at_breakdown(x64):
    a = _matrix(np.linspace(-3, 7, 30), seed=2)
    v0 = jnp.ones(30)
    values, _ = lanczos(_matvec(a), v0, 30).ritz()
    np.testing.assert_allclose(values, np.linalg.eigvalsh(a), atol=1e-10)
    # three distinct eigenvalues: the Krylov space has dimension 3
    b = _matrix([1.0] * 10 + [4.0] * 10 + [-2.0] * 10, seed=3)
    tri = lanczos(_matvec(b), jnp.asarray(np.random.default_rng(0).normal(size=30)), 12)
    assert int(tri.size) == 3
    np.testing.assert_allclose(np.sort(tri.ritz()[0]), [-2.0, 1.0, 4.0], atol=1e-10)


def test_slq_density_has_unit_mass_and_exact_moments_for_a_diagonal_matrix(x64):
    spectrum = np.concatenate([np.linspace(0.0, 1.0, 150), [5.0, 40.0]])
    d = jnp.asarray(spectrum)
    density = analysis.slq(lambda d_: (lambda v: d_ * v), (d,), d.shape[0], probes=4, steps=30)
    grid, values = density.density()
    assert np.trapezoid(values, grid) == pytest.approx(1.0, abs=1e-6)
    assert density.lambda_min == pytest.approx(0.0, abs=0.05)  # the Ritz values lie inside [0, 40]
    assert density.variance() == pytest.approx(5e-5 * (density.lambda_max - density.lambda_min), rel=1e-12)
    # Rademacher probes of a diagonal matrix: z^T D^k z = tr(D^k) exactly, and Gauss
    # quadrature with 30 nodes is exact for degree <= 59
    for k in (1, 2, 3, 5):
        assert density.moment(k) == pytest.approx(np.mean(spectrum**k), rel=1e-9)
    assert density.trace() == pytest.approx(spectrum.sum(), rel=1e-9)
    assert density.lambda_max == pytest.approx(40.0, rel=1e-10)


def test_slq_moments_within_the_stochastic_error_of_a_dense_matrix(x64):
    rng = np.random.default_rng(4)
    spectrum = np.concatenate([rng.uniform(0, 2, 120), [10.0]])
    a = _matrix(spectrum, seed=5)
    probes = 10
    density = analysis.slq(lambda a_: (lambda v: a_ @ v), (jnp.asarray(a),), a.shape[0], probes=probes, steps=40)
    p = a.shape[0]
    for k in (1, 2):
        b = np.linalg.matrix_power(a, k)
        off = b - np.diag(np.diag(b))
        std = math.sqrt(2 * np.sum(off**2) / probes) / p  # Rademacher: Var z^T B z = 2 sum_{i!=j} B_ij^2
        exact = np.trace(b) / p
        assert abs(density.moment(k) - exact) <= 4 * std + 1e-12, (k, density.moment(k), exact, std)
        assert std > 0


def _tiny_lbfgs_run(dtype, width=3, iterations=40, history=6):
    pde = jpinn.pdes.make_pde("convection", beta=1.0)
    data = jpinn.sample_collocation(pde, n_x=17, n_t=11, n_residual=40, seed=0, dtype=dtype)
    model = jpinn.models.MLP(width=width, depth=1, key=jax.random.PRNGKey(0), dtype=dtype)
    f, w0 = jpinn.build_loss(pde, model, data)
    result = jpinn.train(f, w0, [jpinn.Phase(LBFGS(history_size=history), iterations)], log_every=20, progress=False)
    return f, result.phase_w[0], result.states[0]


def _bfgs_inverse(s, y, rho, gamma):
    """The L-BFGS inverse-Hessian approximation by the dense BFGS recursion (oldest first)."""
    p = s.shape[1]
    h = gamma * np.eye(p)
    for si, yi, ri in zip(s, y, rho):
        v = np.eye(p) - ri * np.outer(yi, si)
        h = v.T @ h @ v + ri * np.outer(si, si)
    return h


def test_lbfgs_factor_and_preconditioned_spectrum_match_dense_algebra(x64):
    f, w, state = _tiny_lbfgs_run(x64)
    factor = analysis.LBFGSFactor.from_memory(state.memory)
    m = factor.s.shape[0]
    p = w.shape[0]
    assert 2 <= m <= 6 and factor.shape == (p, p + m)
    s, y, rho, gamma = (np.asarray(a) for a in (factor.s, factor.y, factor.rho, factor.gamma))
    h_k = _bfgs_inverse(s, y, rho, float(gamma))
    ht = factor.dense()
    np.testing.assert_allclose(ht @ ht.T, h_k, rtol=1e-9, atol=1e-9 * np.abs(h_k).max())
    # the same matrix as the optimizer's own two-loop recursion
    two_loop = np.asarray(jax.vmap(state.memory.apply_inverse)(jnp.eye(p, dtype=x64)))
    np.testing.assert_allclose(two_loop, h_k, rtol=1e-8, atol=1e-9 * np.abs(h_k).max())
    # transpose is the adjoint of apply
    z = jnp.asarray(np.random.default_rng(0).normal(size=p + m))
    u = jnp.asarray(np.random.default_rng(1).normal(size=p))
    assert float(jnp.vdot(factor.apply(z), u)) == pytest.approx(float(jnp.vdot(z, factor.transpose(u))), rel=1e-10)
    # spectrum of Ht^T H Ht == eigenvalues of H_k H, plus 0 (m-fold; Lanczos sees a repeated
    # eigenvalue once, so it returns p + 1 values or a few more near zero)
    hessian = np.asarray(jax.hessian(scalar_loss(f))(w))
    expected = np.linalg.eigvals(h_k @ hessian).real
    got = analysis.preconditioned_top_eigenvalues(f, w, factor, k=p + m, steps=p + m)
    tol = 1e-8 * np.abs(expected).max()
    assert p + 1 <= got.size <= p + m
    for value in expected:  # every eigenvalue of H_k H is found
        assert np.min(np.abs(got - value)) <= tol, value
    for value in got:  # and nothing else but zero
        assert min(np.min(np.abs(expected - value)), abs(value)) <= tol, value


def test_hessian_eigenvalues_match_numpy_eigvalsh(x64):
    f, w, _ = _tiny_lbfgs_run(x64, width=4, iterations=20)
    dense = np.linalg.eigvalsh(np.asarray(jax.hessian(scalar_loss(f))(w)))[::-1]
    got = analysis.hessian_eigenvalues(f, w)
    np.testing.assert_allclose(got, dense, atol=1e-9 * np.abs(dense).max())
    residual_only = np.linalg.eigvalsh(np.asarray(jax.hessian(analysis.component_loss(f, "residual"))(w)))[::-1]
    np.testing.assert_allclose(analysis.hessian_eigenvalues(f, w, component="residual"), residual_only,
                               atol=1e-9 * np.abs(residual_only).max())


def test_condition_sweep_ratio_and_exponent(x64):
    pde = jpinn.pdes.make_pde("convection", beta=1.0)
    model = jpinn.models.MLP(width=3, depth=1, key=jax.random.PRNGKey(0), dtype=x64)

    def build(n):
        data = jpinn.sample_collocation(pde, n_x=33, n_t=21, n_residual=n, seed=0, dtype=x64)
        return jpinn.build_loss(pde, model, data)

    sweep = analysis.condition_sweep(build, [20, 80, 320])
    ratios = []
    for n in (20, 80, 320):
        f, w = build(n)
        e = np.linalg.eigvalsh(np.asarray(jax.hessian(scalar_loss(f))(w)))[::-1]
        ratios.append(e[0] / e[-1])
    np.testing.assert_allclose(sweep.ratio, ratios, rtol=1e-6)
    if all(r > 0 for r in ratios):
        slope = (np.log(ratios[2]) - np.log(ratios[0])) / (np.log(320) - np.log(20))
        # three points: the least-squares slope of evenly spaced log n is the end-to-end slope
        assert sweep.exponent == pytest.approx(slope, rel=1e-6)
    with pytest.raises(ValueError, match="index"):
        analysis.condition_sweep(build, [20], index=1000)


def test_line_scan_on_a_quadratic(x64):
    # f(w) = 0.5 w^T A w, d = -g: phi(t) = f0 - t g.g + 0.5 t^2 g^T A g, phi'(t) = -g.g + t g^T A g
    a = jnp.asarray(_matrix([1.0, 2.0, 10.0], seed=6))
    f = lambda w: 0.5 * w @ a @ w  # noqa: E731
    w = jnp.asarray([1.0, -2.0, 0.5])
    g = a @ w
    steps = np.logspace(-3, 1, 81)
    scan = analysis.line_scan(f, w, -g, steps, c1=1e-4, c2=0.9)
    gg, gag = float(g @ g), float(g @ a @ g)
    np.testing.assert_allclose(scan.loss, float(f(w)) - steps * gg + 0.5 * steps**2 * gag, rtol=1e-12)
    np.testing.assert_allclose(scan.slope, -gg + steps * gag, rtol=1e-10, atol=1e-12)
    # Armijo holds for t <= 2 (1 - c1) g.g / g^T A g; strong Wolfe for |phi'(t)| <= 0.9 g.g as well
    t_armijo = 2 * (1 - 1e-4) * gg / gag
    np.testing.assert_array_equal(scan.armijo, steps <= t_armijo)
    np.testing.assert_array_equal(scan.wolfe, (steps <= t_armijo) & (np.abs(-gg + steps * gag) <= 0.9 * gg))
    assert scan.wolfe.any() and (~scan.wolfe).any()


@pytest.fixture
def spectrum_script():
    sys.path.insert(0, str(ROOT / "scripts"))
    import spectrum as module

    return module


def _tiny_run(tmp_path, optimizer):
    config = {
        "seed": 1, "dtype": "float32", "derivatives": "auto", "log_every": 10, "quiet": True, "plot": False,
        "pde": {"name": "wave", "beta": 2.0, "c2": 4.0}, "model": {"name": "mlp", "width": 6, "depth": 2},
        "data": {"name": "study", "n_x": 17, "n_t": 11, "n_residual": 60, "seed": 1, "test_set": "full"},
        "optimizer": optimizer,
    }
    run_dir = tmp_path / "run"
    jpinn.experiment.execute(jpinn.experiment.build(config), run_dir, progress=False)
    return run_dir


ADAM_LBFGS = {"name": "adam_lbfgs", "phases": [
    {"name": "adam", "iterations": 20, "learning_rate": 1e-3},
    {"name": "lbfgs", "iterations": 40, "history_size": 10}]}


# slow: the default suite keeps test_cli_trains_from_hydra_overrides_then_analyses for the
# command line, test_condition_sweep_ratio_and_exponent for the sweep (10-minute budget)
@pytest.mark.slow
def test_cli_writes_every_declared_file(tmp_path, spectrum_script, capsys):
    run_dir = _tiny_run(tmp_path, ADAM_LBFGS)
    assert (run_dir / "checkpoint" / "lbfgs.npz").is_file()
    out = tmp_path / "spec"
    code = spectrum_script.main([str(run_dir), "--probes", "2", "--steps", "8", "--top", "3", "--out", str(out)])
    assert code == 0
    for name in ("spectrum.npz", "spectrum.json", "density.png", "direction.png"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "spectrum.json").read_text())
    assert summary["at"] == "lbfgs" and set(summary["analyses"]) == {"density", "top", "preconditioned", "direction"}
    for component in ("total", "residual", "initial", "boundary"):
        assert summary["density"][component]["lambda_max"] >= summary["density"][component]["lambda_min"]
        assert len(summary["top"][component]) == 3
        assert "condition" in summary["preconditioned"][component]
    with np.load(out / "spectrum.npz") as arrays:
        assert {"density/total/values", "preconditioned/residual/nodes", "direction/wolfe", "top/initial"} <= set(arrays)
        # the top eigenvalue by Lanczos and the largest Ritz value of the SLQ agree in order of magnitude
        assert arrays["top/total"][0] > 0


def test_cli_refuses_a_folder_that_is_not_a_run(tmp_path, spectrum_script, capsys):
    assert spectrum_script.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spectrum.py: error:") and "not a jpinn run folder" in err and "\n" not in err
    adam_only = _tiny_run(tmp_path, {"name": "adam", "phases": [{"name": "adam", "iterations": 10}]})
    assert spectrum_script.main([str(adam_only), "--analyses", "preconditioned"]) == 2
    assert "needs a run with an L-BFGS phase" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_condition_sweep(tmp_path, spectrum_script, x64):
    out = tmp_path / "cond"
    assert spectrum_script.main(["--condition-sweep", "--n-residual", "64", "128", "--train", "0", "20",
                                 "--out", str(out)]) == 0
    summary = json.loads((out / "spectrum.json").read_text())["condition_sweep"]
    assert summary["index"] == 129 and len(summary["ratio"]) == 2
    assert (out / "condition.png").is_file()


def test_cli_trains_from_hydra_overrides_then_analyses(tmp_path, spectrum_script, capsys):
    overrides = ["pde=reaction", "model.width=5", "model.depth=1", "data.n_residual=50", "data.n_x=17",
                 "data.n_t=11", "optimizer=adam_lbfgs", "optimizer.iterations=40", "optimizer.switch=20",
                 "plot=false", "quiet=true"]
    run_dir, out = tmp_path / "trained", tmp_path / "spec"
    code = spectrum_script.main(["--config", *overrides, "--train-dir", str(run_dir), "--probes", "2",
                                 "--steps", "6", "--components", "total", "--out", str(out)])
    assert code == 0
    assert (run_dir / "summary.json").is_file() and (run_dir / "checkpoint" / "lbfgs.npz").is_file()
    summary = json.loads((out / "spectrum.json").read_text())
    assert summary["pde"] == "reaction" and list(summary["density"]) == ["total"]
    # a bad override: one line, exit 2, nothing trained
    assert spectrum_script.main(["--config", "pde=heat", "--train-dir", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spectrum.py: error:") and "pde" in err and "\n" not in err
    assert not (tmp_path / "bad").exists()
