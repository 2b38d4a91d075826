"""Landscape analysis against dense linear algebra: Lanczos, stochastic Lanczos quadrature,
the L-BFGS factor and its preconditioned spectrum, condition numbers, line scans, the CLI."""

import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jpinn
from jpinn import analysis
from jpinn.linalg import LanczosState, lanczos, lanczos_steps
from jpinn.linalg.hvp import scalar_loss
from jpinn.optim import LBFGS



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


def test_lanczos_with_p_steps_gives_every_eigenvalue(x64):
    a = _matrix(np.linspace(-3, 7, 30), seed=2)
    v0 = jnp.ones(30)
    values, _ = lanczos(_matvec(a), v0, 30).ritz()
    np.testing.assert_allclose(values, np.linalg.eigvalsh(a), atol=1e-10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lanczos_on_an_invariant_krylov_space_keeps_the_spectral_measure(dtype, x64):
    # three distinct eigenvalues: the Krylov space of any v0 has dimension 3. Whether the
    # breakdown is detected (size 3) or Lanczos goes on through the rounding (copies of the
    # same eigenvalues, with weights that add up), the quadrature is the measure along v0.
    spectrum = np.array([1.0] * 10 + [4.0] * 10 + [-2.0] * 10)
    b = _matrix(spectrum, seed=3)
    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(30, 30)))
    v0 = np.random.default_rng(0).normal(size=30)
    exact = (q.T @ v0) ** 2 / (v0 @ v0)
    tol = 1e-10 if dtype == "float64" else 1e-5
    tri = lanczos(_matvec(jnp.asarray(b, dtype)), jnp.asarray(v0, dtype), 12)
    values, weights = tri.ritz()
    assert int(tri.size) >= 3
    for value, weight in zip(values, weights):
        assert np.min(np.abs(value - np.array([-2.0, 1.0, 4.0]))) <= 1e3 * tol or weight <= tol, (value, weight)
    for eigenvalue in (-2.0, 1.0, 4.0):
        near = np.abs(values - eigenvalue) <= 1e3 * tol
        assert weights[near].sum() == pytest.approx(exact[spectrum == eigenvalue].sum(), abs=10 * tol)


def test_lanczos_stops_at_an_exact_breakdown(x64):
    d = jnp.asarray([3.0, 1.0, -2.0, 0.5])
    tri = lanczos(lambda v: d * v, jnp.asarray([1.0, 0.0, 0.0, 0.0]), 4)  # an eigenvector: w = 0 exactly
    assert int(tri.size) == 1
    values, radius = tri.ritz_bounds()
    assert values.tolist() == [3.0] and radius.tolist() == [0.0]
    tri = lanczos(lambda v: 0.0 * v, jnp.ones(4), 4)  # the zero operator
    assert int(tri.size) == 1 and tri.ritz()[0].tolist() == [0.0]


def test_lanczos_refuses_a_non_finite_operator(x64):
    tri = lanczos(lambda v: v.at[0].set(jnp.nan), jnp.ones(5), 4)
    with pytest.raises(ValueError, match="non-finite product at step 1"):
        tri.ritz()


def test_lanczos_in_chunks_equals_one_run_and_its_ritz_bounds_hold(x64):
    rng = np.random.default_rng(11)
    a = _matrix(np.concatenate([rng.uniform(-1, 1, 78), [20.0, -7.0]]), seed=4)
    v0 = jnp.asarray(rng.normal(size=80))
    whole = lanczos(_matvec(a), v0, 25)
    state = LanczosState.start(v0, 25)
    state = lanczos_steps(_matvec(a), state, 10)
    state = lanczos_steps(_matvec(a), state, 15)
    parts = state.tridiagonal()
    for x, y in zip(whole, parts):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    eigenvalues = np.linalg.eigvalsh(a)
    values, radius = whole.ritz_bounds()
    assert radius.max() > 1e-3  # 25 of 80 steps: the bounds are not all trivial
    for value, r in zip(values, radius):  # an eigenvalue of A within each Ritz value's radius
        assert np.min(np.abs(eigenvalues - value)) <= r * (1 + 1e-8) + 1e-12, (value, r)


def _outlier_spectrum(n=2000, seed=0):
    """The review's case: three outliers up to lambda_max = 1e5 over a bulk in [-0.05, 0.5]."""
    rng = np.random.default_rng(seed)
    spectrum = np.concatenate([rng.uniform(-0.05, 0.5, n - 3), [1e4, 3e4, 1e5]])
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return (q * spectrum) @ q.T


@pytest.fixture(scope="module")
def outlier_matrix():
    a = _outlier_spectrum()
    eigenvalues, vectors = np.linalg.eigh(a)
    return a, eigenvalues, vectors


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lanczos_describes_a_bulk_below_a_large_outlier_in_both_precisions(dtype, outlier_matrix, x64):
    # before issue 15 the breakdown test (beta <= 100 eps ||A||: 1.2 in float32) stopped
    # after 5 of 100 steps and gave the bulk 2 nodes
    a, eigenvalues, vectors = outlier_matrix
    v0 = np.random.default_rng(1).choice([-1.0, 1.0], a.shape[0])
    exact = (vectors.T @ v0) ** 2 / (v0 @ v0)  # the spectral measure along v0 (dense eigh)
    tri = jax.jit(lambda v: lanczos(_matvec(jnp.asarray(a, dtype)), v, 100))(jnp.asarray(v0, dtype))
    values, weights = tri.ritz()
    assert int(tri.size) == 100
    assert values.max() == pytest.approx(eigenvalues.max(), rel=1e-5)
    rtol = 1e-9 if dtype == "float64" else 1e-5
    for k in (1, 2, 3, 4):  # Gauss quadrature with 100 nodes is exact to degree 199
        assert np.sum(weights * values**k) == pytest.approx(np.sum(exact * eigenvalues**k), rel=rtol)
    # the bulk's own shape: central moments of the measure restricted to it, and its CDF
    bulk, bulk_nodes = eigenvalues < 1.0, values < 1.0
    assert bulk_nodes.sum() >= 90

    def central(x, w, k):
        return np.sum(w * (x - 0.225) ** k) / np.sum(w)

    rtol = 1e-8 if dtype == "float64" else 2e-3
    for k in (2, 4, 6, 8):
        assert central(values[bulk_nodes], weights[bulk_nodes], k) == pytest.approx(
            central(eigenvalues[bulk], exact[bulk], k), rel=rtol), k
    grid = np.linspace(-0.05, 0.5, 56)
    cdf = lambda x, w: np.array([w[x <= t].sum() for t in grid])  # noqa: E731
    assert np.max(np.abs(cdf(values, weights) - cdf(eigenvalues, exact))) <= 0.03


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


def _dense_hessian(scalar, w):
    """The dense Hessian, compiled (op by op it takes 20 s even at p = 17)."""
    return np.asarray(jax.jit(jax.hessian(scalar))(w))


@functools.lru_cache(maxsize=None)  # float64 arrays, shared by the x64 tests that need the same run
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


@pytest.mark.slow
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
    hessian = _dense_hessian(scalar_loss(f), w)
    expected = np.linalg.eigvals(h_k @ hessian).real
    got = analysis.preconditioned_top_eigenvalues(f, w, factor, k=p + m, steps=p + m)
    tol = 1e-8 * np.abs(expected).max()
    assert p + 1 <= got.size <= p + m
    for value in expected:  # every eigenvalue of H_k H is found
        assert np.min(np.abs(got - value)) <= tol, value
    for value in got:  # and nothing else but zero
        assert min(np.min(np.abs(expected - value)), abs(value)) <= tol, value


@pytest.mark.slow
def test_hessian_eigenvalues_match_numpy_eigvalsh(x64):
    f, w, _ = _tiny_lbfgs_run(x64, width=4, iterations=20)
    dense = np.linalg.eigvalsh(_dense_hessian(scalar_loss(f), w))[::-1]
    got = analysis.hessian_eigenvalues(f, w)
    np.testing.assert_allclose(got, dense, atol=1e-9 * np.abs(dense).max())
    residual_only = np.linalg.eigvalsh(_dense_hessian(analysis.component_loss(f, "residual"), w))[::-1]
    np.testing.assert_allclose(analysis.hessian_eigenvalues(f, w, component="residual"), residual_only,
                               atol=1e-9 * np.abs(residual_only).max())


@pytest.mark.slow
def test_condition_sweep_ratio_and_exponent(x64):
    pde = jpinn.pdes.make_pde("convection", beta=1.0)
    model = jpinn.models.MLP(width=3, depth=1, key=jax.random.PRNGKey(0), dtype=x64)

    def build(n):
        data = jpinn.sample_collocation(pde, n_x=33, n_t=21, n_residual=n, seed=0, dtype=x64)
        return jpinn.build_loss(pde, model, data)

    sweep = analysis.condition_sweep(build, [20, 80, 320])
    ratios, algebraic = [], []
    for n in (20, 80, 320):
        f, w = build(n)
        e = np.linalg.eigvalsh(_dense_hessian(scalar_loss(f), w))
        by_magnitude = e[np.argsort(-np.abs(e))]
        ratios.append(abs(by_magnitude[0] / by_magnitude[-1]))
        algebraic.append(e[-1] / e[0])
    np.testing.assert_allclose(sweep.ratio, ratios, rtol=1e-6)
    np.testing.assert_allclose(sweep.ratios("algebraic"), algebraic, rtol=1e-6)
    slope = (np.log(ratios[2]) - np.log(ratios[0])) / (np.log(320) - np.log(20))
    # three points: the least-squares slope of evenly spaced log n is the end-to-end slope
    assert sweep.exponent == pytest.approx(slope, rel=1e-6)
    with pytest.raises(ValueError, match="index"):
        analysis.condition_sweep(build, [20], index=1000)


def test_condition_ratio_orders_by_magnitude_as_the_study():
    eigenvalues = [120.0, -35.0, 4.0, 0.5, -0.02]
    # by magnitude: 120, -35, 4, 0.5, -0.02 -> |120 / -0.02| and |120 / 4|
    assert analysis.condition_ratio(eigenvalues, 5) == pytest.approx(6000.0)
    assert analysis.condition_ratio(eigenvalues, 3) == pytest.approx(30.0)
    # algebraic: 120, 4, 0.5, -0.02, -35 -> 120 / -35 < 0 (no logarithm, no exponent)
    assert analysis.condition_ratio(eigenvalues, 5, "algebraic") == pytest.approx(-120.0 / 35.0)
    sweep = analysis.ConditionSweep([10, 20], [np.array(eigenvalues), 2 * np.array(eigenvalues)], 5, "algebraic")
    assert np.all(sweep.ratio < 0) and math.isnan(sweep.exponent)
    with pytest.raises(ValueError, match="ordering: unknown 'size'"):
        analysis.condition_ratio(eigenvalues, 2, "size")


def _operator(a):
    return (lambda a_: (lambda v: a_ @ v)), (jnp.asarray(a),)


def test_condition_estimate_converges_before_p_steps_and_matches_the_dense_ratio(x64):
    rng = np.random.default_rng(0)
    spectrum = np.concatenate([[1e-2], rng.uniform(1.0, 100.0, 297), [1e4], [-3e3]])
    a = _matrix(spectrum, seed=6)
    factory, args = _operator(a)
    estimate = analysis.estimate_condition(factory, args, 300, rtol=1e-6, chunk=20)
    assert estimate.converged and not estimate.exhaustive and estimate.steps < 300
    assert estimate.ratio == pytest.approx(analysis.condition_ratio(np.linalg.eigvalsh(a), 300), rel=1e-5)
    assert estimate.largest == pytest.approx(1e4, rel=1e-9) and estimate.smallest == pytest.approx(1e-2, rel=1e-5)
    assert estimate.floor == pytest.approx(1e4 * 2.0**-52) and not estimate.below_rounding
    # in float32 an eigenvalue of 1e-9 next to 1e4 is below the operator's rounding: flagged
    near_singular = _matrix(np.concatenate([[1e-9], np.linspace(1, 10, 38), [1e4]])).astype(np.float32)
    tiny = analysis.estimate_condition(*_operator(near_singular), 40)
    assert tiny.below_rounding
    # capped before the smallest eigenvalue settles: reported as not converged, and a lower bound
    capped = analysis.estimate_condition(factory, args, 300, rtol=1e-6, chunk=5, max_steps=10)
    assert not capped.converged and capped.steps == 10 and capped.ratio < estimate.ratio


@pytest.mark.slow
def test_condition_estimate_of_a_small_network_is_exhaustive_and_exact(x64):
    # the review's finding: a 40-step SLQ estimate (lambda_max over the smallest positive Ritz
    # value) was 1.4e5 where the dense ratio is 6.4e7; the estimate runs to the dense value
    f, w, _ = _tiny_lbfgs_run(x64, width=4, iterations=20)
    dense = np.linalg.eigvalsh(_dense_hessian(scalar_loss(f), w))
    estimate = analysis.hessian_condition(f, w, rtol=1e-8, chunk=8)
    assert estimate.converged
    assert estimate.ratio == pytest.approx(analysis.condition_ratio(dense, dense.size), rel=1e-6)
    assert estimate.to_dict()["steps"] <= w.shape[0]


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
    from jpinn.cli import spectrum as module

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
        assert "condition_ritz" in summary["preconditioned"][component]
    with np.load(out / "spectrum.npz") as arrays:
        assert {"density/total/values", "preconditioned/residual/nodes", "direction/wolfe", "top/initial"} <= set(arrays)
        # the top eigenvalue by Lanczos and the largest Ritz value of the SLQ agree in order of magnitude
        assert arrays["top/total"][0] > 0


@pytest.mark.slow
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
    assert summary["index"] == 129 and len(summary["ratio"]) == 2 and summary["ordering"] == "magnitude"
    assert summary["protocol"] == "jpinn" and summary["dtype"] == "float64" and summary["train"]["adam_lr"] == 1e-3
    assert all(r > 0 for r in summary["ratio"]) and summary["ratio"] == summary["ratio_magnitude"]
    assert (out / "condition.png").is_file()


def test_cli_condition_protocols_are_one_option_away(spectrum_script):
    _, study = spectrum_script.parse(["--condition-sweep", "--protocol", "study", "--out", "x"])
    assert (study.adam_lr, study.train, study.seed, study.dtype) == (1e-4, [11000, 30000], 345, "float32")
    _, mixed = spectrum_script.parse(["--condition-sweep", "--protocol", "study", "--seed", "7", "--out", "x"])
    assert mixed.seed == 7 and mixed.dtype == "float32"
    _, quick = spectrum_script.parse(["--condition-sweep", "--out", "x"])
    assert (quick.adam_lr, quick.train, quick.seed, quick.dtype) == (1e-3, [1000, 1000], 0, "float64")


@pytest.mark.slow
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
    assert "condition" not in summary["analyses"]  # only when asked for
    assert spectrum_script.main([str(run_dir), "--analyses", "condition", "--components", "total", "residual",
                                 "--out", str(tmp_path / "cond")]) == 0
    condition = json.loads((tmp_path / "cond" / "spectrum.json").read_text())["condition"]
    for component in ("total", "residual"):  # p = 21: Lanczos exhausts the space
        assert condition[component]["converged"] and condition[component]["exhaustive"]
        assert condition[component]["ratio"] >= 1 and condition[component]["steps"] <= 21
    # a bad override: one line, exit 2, nothing trained
    assert spectrum_script.main(["--config", "pde=stokes", "--train-dir", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spectrum.py: error:") and "pde" in err and "\n" not in err
    assert not (tmp_path / "bad").exists()
