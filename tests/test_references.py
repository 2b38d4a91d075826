"""jpinn's reference solvers against closed forms, published values and their own
refinement; the cache of references; the new problems' residuals against exact solutions of
their PDEs (with the derivative engine's third derivatives)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg

import jpinn
from jpinn.loss import condition_residuals
from jpinn.references import allen_cahn, burgers, cached, heat2d, kdv, reaction_diffusion, reference_path


def _order(errors):
    """Observed orders log2(e_k / e_{k+1}) of errors at halving steps (or doubling grids)."""
    errors = np.asarray(errors)
    return np.log2(errors[:-1] / errors[1:])


# --- Burgers: Cole-Hopf -------------------------------------------------------------------

def test_cole_hopf_matches_a_closed_form_burgers_solution():
    # theta = 1 + eps e^{-nu k^2 t} cos(k x) solves the heat equation; u = -2 nu theta_x / theta
    nu, k, eps = 0.05, np.pi, 0.5
    x, t = np.linspace(-1, 1, 41), np.linspace(0, 1, 6)
    decay = eps * np.exp(-nu * k * k * t)[None, :]
    exact = 2 * nu * k * decay * np.sin(k * x[:, None]) / (1 + decay * np.cos(k * x[:, None]))
    got = burgers.cole_hopf(lambda y: 2 * nu * eps * k * np.sin(k * y) / (1 + eps * np.cos(k * y)),
                            lambda y: np.log1p(eps * np.cos(k * y)), x, t, nu, nodes=40)
    np.testing.assert_allclose(got, exact, atol=1e-14)


def test_cole_hopf_tends_to_the_inviscid_solution_at_first_order_in_nu():
    # Before the shock forms (t < 1/pi), the inviscid solution of u_t + u u_x = 0 with
    # u(x, 0) = -sin(pi x) is u = -sin(pi (x - u t)) along characteristics (Newton below,
    # to round-off); a viscous solution differs by O(nu), so the gap halves with nu.
    x, t = np.linspace(-1, 1, 201), np.array([0.1, 0.2, 0.25])
    X, T = x[:, None], t[None, :]
    inviscid = -np.sin(np.pi * X) * np.ones_like(T)
    for _ in range(50):
        inviscid -= (inviscid + np.sin(np.pi * (X - inviscid * T))) / (1 - np.pi * T * np.cos(np.pi * (X - inviscid * T)))
    assert np.abs(inviscid + np.sin(np.pi * (X - inviscid * T))).max() < 1e-14
    gaps = []
    for nu in burgers.STANDARD_NU / 2.0 ** np.arange(4):
        gaps.append(np.abs(burgers.cole_hopf(*burgers.standard_initial(nu), x, t, nu) - inviscid).max(axis=0))
    ratios = np.array(gaps[:-1]) / np.array(gaps[1:])
    assert np.all((1.9 < ratios) & (ratios < 2.1)), ratios  # measured 1.92-2.00
    assert gaps[-1].max() < 5e-3, gaps[-1]


def test_cole_hopf_gives_the_published_shock_slope():
    # Basdevant et al. (1986), Burgers with nu = 0.01 / pi: the steepest slope,
    # du/dx = -152.00516 at x = 0, t = 1.6037 / pi
    nu, h = burgers.STANDARD_NU, 1e-6
    u = burgers.cole_hopf(lambda y: -np.sin(np.pi * y), lambda y: (1 - np.cos(np.pi * y)) / (2 * np.pi * nu),
                          np.array([-h, h]), np.array([1.6037 / np.pi]), nu)
    assert abs((u[1, 0] - u[0, 0]) / (2 * h) + 152.00516) < 2e-5


def test_cole_hopf_converges_in_the_node_count_at_the_shock():
    ref = burgers.standard(nx=33, nt=6, nodes=800)["u"]
    errors = [np.abs(burgers.standard(nx=33, nt=6, nodes=n)["u"] - ref).max() for n in (30, 60, 120)]
    assert errors[0] > 1e-4 and errors[0] > 100 * errors[1] and errors[2] < 1e-12, errors
    u = burgers.standard(nx=33, nt=6, nodes=200)
    np.testing.assert_array_equal(u["u"][1:-1, 0], -np.sin(np.pi * u["x"][1:-1]))
    assert np.all(u["u"][[0, -1]] == 0)


# --- ETDRK4 solvers ------------------------------------------------------------------------

def test_allen_cahn_is_fourth_order_in_the_step_and_converges_in_the_grid():
    kw = dict(nx=256, nt=3, t_max=0.2)
    ref = allen_cahn.solve(**kw, steps_per_output=400)["u"]
    errors = [np.abs(allen_cahn.solve(**kw, steps_per_output=s)["u"] - ref).max() for s in (10, 20, 40)]
    assert np.all(_order(errors) > 3.5), errors
    fine = allen_cahn.solve(nx=2048, nt=3, t_max=0.2, steps_per_output=100)["u"]
    grid = [np.abs(allen_cahn.solve(nx=n, nt=3, t_max=0.2, steps_per_output=100)["u"] - fine[:: 2048 // n]).max()
            for n in (256, 512, 1024)]
    assert np.all(_order(grid) > 1.5), grid  # the initial slope's jump at x = +-1: algebraic


def test_kdv_keeps_a_soliton_and_converges_spectrally():
    x = -1 + 2 * np.arange(256) / 256
    t = np.linspace(0, 0.5, 6)
    start = kdv.soliton(x, [0.0], c=1.0, x0=-0.5)[:, 0]
    got = kdv.solve(nx=256, nt=6, t_max=0.5, steps_per_output=400, u0=start)["u"]
    np.testing.assert_allclose(got, kdv.soliton(x, t, c=1.0, x0=-0.5), atol=3e-6)
    ref = kdv.solve(nx=512, nt=3, t_max=0.2, steps_per_output=400)["u"]
    steps = [np.abs(kdv.solve(nx=512, nt=3, t_max=0.2, steps_per_output=s)["u"] - ref).max() for s in (50, 100)]
    assert _order(steps)[0] > 3.5, steps
    grid = [np.abs(kdv.solve(nx=n, nt=3, t_max=0.2, steps_per_output=400)["u"] - ref[:: 512 // n]).max()
            for n in (128, 256)]
    assert grid[0] > 1e3 * grid[1] and grid[1] < 1e-6, grid


def test_reaction_diffusion_solvers():
    # nu = 0: the logistic closed form, exactly for the companion splitting, to 1e-9 for ETDRK4
    x = 2 * np.pi * np.arange(256) / 256
    h = reaction_diffusion.initial(x)[:, None]
    t = np.linspace(0, 1, 100)
    logistic = h * np.exp(5 * t) / (h * np.exp(5 * t) + 1 - h)
    conv = reaction_diffusion.solve(0.0, 5.0, nx=256, nt=100, steps_per_output=20)["u"]
    np.testing.assert_allclose(conv, logistic, atol=1e-9)
    comp = reaction_diffusion.companion(0.0, 5.0)["u"]  # its step 1/100 on times labelled i/99
    np.testing.assert_allclose(comp, h * np.exp(5 * t * 99 / 100) / (h * np.exp(5 * t * 99 / 100) + 1 - h),
                               atol=1e-12)
    # nu = 3: ETDRK4 fourth order; the companion's Lie splitting first order in its step
    ref = reaction_diffusion.solve(3.0, 5.0, nx=128, nt=11, steps_per_output=64)["u"]
    errors = [np.abs(reaction_diffusion.solve(3.0, 5.0, nx=128, nt=11, steps_per_output=s)["u"] - ref).max()
              for s in (1, 2, 4)]
    assert np.all(_order(errors) > 3.5), errors
    split = []
    for nt in (50, 100, 200):
        c = reaction_diffusion.companion(3.0, 5.0, nx=128, nt=nt)["u"]
        exact = reaction_diffusion.solve(3.0, 5.0, nx=128, nt=nt + 1, steps_per_output=8)["u"][:, :nt]
        split.append(np.abs(c - exact).max())
    assert np.all(np.abs(_order(split) - 1) < 0.1), split


def test_heat2d_series_matches_finite_differences_and_its_truncation_order():
    centre, late = np.array([0.5]), np.array([60.0])
    # at t = 60 the series is steady: kappa lap u = -1; 5-point differences, Richardson-extrapolated
    def poisson_centre(n):
        h = 1.0 / n
        one = scipy.sparse.diags([1.0, -2.0, 1.0], [-1, 0, 1], shape=(n - 1, n - 1)) / h**2
        lap = scipy.sparse.kronsum(one, one, format="csc")
        u = scipy.sparse.linalg.spsolve(-0.1 * lap, np.ones((n - 1) ** 2))
        return u[((n - 1) ** 2) // 2]
    fd = (4 * poisson_centre(128) - poisson_centre(64)) / 3
    series = heat2d.solve(kappa=0.1, modes=400, x=centre, t=late)["u"][0, 0, 0]
    assert abs(series - fd) < 1e-6 * abs(fd), (series, fd)
    t = np.array([0.3])
    ref = heat2d.solve(modes=2000, x=centre, t=t)["u"].ravel()
    errors = [np.abs(heat2d.solve(modes=m, x=centre, t=t)["u"].ravel() - ref).max() for m in (20, 40, 80)]
    assert np.all(_order(errors) > 2.7), errors


# --- the cache -----------------------------------------------------------------------------

def test_references_are_cached_and_refreshed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JPINN_CACHE_DIR", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(3.0), "u": np.ones((3, 2)) * len(calls)}

    first = cached("demo", {"a": 1}, compute)
    second = cached("demo", {"a": 1}, compute)
    assert len(calls) == 1 and np.array_equal(first["u"], second["u"]) and set(second) == {"x", "u"}
    assert reference_path("demo", {"a": 1}).is_file()
    cached("demo", {"a": 2}, compute)  # other settings: another file
    assert len(calls) == 2 and reference_path("demo", {"a": 2}) != reference_path("demo", {"a": 1})
    assert cached("demo", {"a": 1}, compute, refresh=True)["u"][0, 0] == 3
    reference_path("demo", {"a": 1}).write_bytes(b"not an npz")  # a damaged file is recomputed
    assert cached("demo", {"a": 1}, compute)["u"][0, 0] == 4
    monkeypatch.setenv("JPINN_REFRESH_REFERENCES", "1")
    assert cached("demo", {"a": 1}, compute)["u"][0, 0] == 5
    monkeypatch.delenv("JPINN_REFRESH_REFERENCES")
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("JPINN_CACHE_DIR", str(blocker))  # a cache folder that cannot be made
    assert cached("demo", {"a": 1}, compute)["u"][0, 0] == 6
    assert "cannot cache it" in capsys.readouterr().err


# --- the problems --------------------------------------------------------------------------

def _residual(problem, solution, points, method):
    (condition,) = [c for c in problem.conditions() if c.name == "residual"]
    parts = condition_residuals(condition, solution, problem.variables, method)(jpinn.data.PointSet(points))
    return sum(jnp.mean(r**2) for r in parts)


FORMS = {
    # exact solutions of each PDE (not of its initial or boundary data), by hand
    "burgers": (lambda nu: {"nu": nu}, lambda p, nu=0.05, k=np.pi, e=0.5: jnp.stack([
        2 * nu * k * e * jnp.exp(-nu * k * k * p[1]) * jnp.sin(k * p[0])
        / (1 + e * jnp.exp(-nu * k * k * p[1]) * jnp.cos(k * p[0]))])),
    "kdv": (lambda nu: {}, lambda p: jnp.stack([3 / jnp.cosh((p[0] - p[1] + 0.3) / (2 * 0.022)) ** 2])),
    "allen_cahn": (lambda nu: {}, lambda p: jnp.stack([jnp.tanh(p[0] * jnp.sqrt(5 / (2e-4)) / 40)])),
    "reaction_diffusion": (lambda nu: {}, lambda p: jnp.stack(
        [1 / (1 + 0.5 * jnp.exp(jnp.sqrt(5 / 18) * p[0] - 25 / 6 * p[1])) ** 2])),
    "heat2d_source": (lambda nu: {}, lambda p: jnp.stack([p[0] * (1 - p[0]) / 0.2])),
}


@pytest.mark.parametrize("method", ["forward", "reverse"])
@pytest.mark.parametrize("name", sorted(FORMS))
def test_new_problems_residuals_vanish_at_exact_solutions_of_their_pdes(name, method, x64):
    kwargs, solution = FORMS[name]
    problem = jpinn.problems.make_problem(name, **kwargs(0.05))
    if name == "allen_cahn":  # the kink tanh(x sqrt(5 / (2 d))) with d stretched to fit: d = 1e-4 * 40^2
        problem = jpinn.problems.make_problem(name, d=1e-4 * 40**2)
    box = problem.domain()
    points = jnp.asarray(np.random.default_rng(0).uniform(box.lower, box.upper, (64, len(box.lower))), x64)
    assert float(_residual(problem, solution, points, method)) < 1e-20
    wrong = lambda p: solution(p) * 1.01  # noqa: E731
    assert float(_residual(problem, wrong, points, method)) > 1e-8


@pytest.mark.parametrize("name", ["burgers", "allen_cahn", "kdv", "reaction_diffusion", "heat2d_source"])
def test_new_problems_come_with_finite_cached_references(name, tmp_path, monkeypatch):
    monkeypatch.setenv("JPINN_CACHE_DIR", str(tmp_path))
    if name == "allen_cahn":  # its 4,096-point solve takes 16 s; the same code on a coarser grid
        monkeypatch.setitem(allen_cahn.STANDARD, "nx", 1024)
        monkeypatch.setitem(allen_cahn.STANDARD, "keep_every", 2)
    problem = jpinn.problems.make_problem(name)
    ref = problem.reference()
    box = problem.domain()
    assert ref.points.shape[1] == len(box.coordinates) and ref.values.shape == (ref.points.shape[0], 1)
    assert np.all(np.isfinite(ref.values)) and np.all(ref.points >= np.asarray(box.lower) - 1e-12)
    assert np.all(ref.points <= np.asarray(box.upper) + 1e-12)
    assert len(list((tmp_path / "references").glob(f"{name}-*.npz"))) == 1
    again = problem.reference()
    np.testing.assert_array_equal(again.values, ref.values)


def test_reaction_diffusion_companion_reference_and_bad_coefficients():
    with pytest.raises(ValueError, match=r"pde\.reference_kind"):
        jpinn.problems.make_problem("reaction_diffusion", reference_kind="exact")
    for name, kwargs, field in (("burgers", {"nu": 0.0}, "pde.nu"), ("allen_cahn", {"d": -1.0}, "pde.d"),
                                ("kdv", {"mu": 0.0}, "pde.mu"), ("reaction_diffusion", {"nu": -1.0}, "pde.nu"),
                                ("heat2d_source", {"kappa": 0.0}, "pde.kappa")):
        with pytest.raises(ValueError, match=field.replace(".", r"\.")):
            jpinn.problems.make_problem(name, **kwargs)
