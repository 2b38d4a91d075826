"""Every shipped problem's closed form makes every loss term vanish (to dtype precision) with
the derivatives the loss itself takes; a wrong candidate does not; the conditions, domains
and samplers behave as documented; malformed problems are refused in one line."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jpinn
from jpinn.data import sample_points
from jpinn.derivatives import evaluate_terms
from jpinn.loss import loss_components
from jpinn.problems import conditions as cond
from jpinn.problems import exact_fields

GENERIC = ("forward", "reverse")  # methods for any function (taylor needs a network; auto picks one of these)
PROBLEMS = [
    ("convection", {}), ("convection", {"beta": 1.0}), ("reaction", {}), ("reaction", {"rho": 1.0}),
    ("wave", {}), ("wave", {"beta": 3.0, "c2": 1.0}),
    ("heat", {}), ("heat", {"boundary": "neumann", "kappa": 0.5}), ("heat", {"boundary": "periodic"}),
    ("poisson", {"dim": 2}), ("poisson", {"dim": 3}), ("poisson", {"dim": 5}), ("poisson", {"dim": 10}),
    ("helmholtz", {}), ("helmholtz", {"k": 3.0, "a1": 2, "a2": 1}), ("kovasznay", {}), ("kovasznay", {"Re": 40.0}),
]


def _exact(problem):
    return lambda p: exact_fields(problem, p[None])[0]


def _data(problem, dtype, seed=1):
    if jpinn.data.fits_study_grid(problem):
        return jpinn.sample_collocation(problem, n_residual=2000, seed=seed, dtype=dtype)
    return sample_points(problem, sampler="sobol", points={}, seed=seed, dtype=dtype)


def _scale(problem, data, dtype):
    # the largest derivative term any condition reads: the natural unit of its rounding error
    scale = 1.0
    for c in problem.conditions():
        s = data.sets[c.name]
        d = evaluate_terms(_exact(problem), c.terms, s.points, problem.variables, "reverse")
        scale = max(scale, *(float(jnp.max(jnp.abs(v))) for v in d.values()))
    return scale


@pytest.mark.parametrize("method", GENERIC)
@pytest.mark.parametrize("name,coefficients", PROBLEMS)
def test_exact_solution_makes_every_term_vanish(name, coefficients, method, x64):
    problem = jpinn.problems.make_problem(name, **coefficients)
    data = _data(problem, x64)
    parts = jax.jit(lambda data: loss_components(problem, _exact(problem), data, method=method))(data)
    assert set(parts) == {c.name for c in problem.conditions()}  # (jit returns the dict with sorted keys)
    eps = float(jnp.finfo(x64).eps)
    scale = _scale(problem, data, x64)
    for component, value in parts.items():
        assert value.dtype == jnp.float64
        assert float(value) <= (100 * eps * scale) ** 2, (component, float(value))


@pytest.mark.parametrize("name", ["convection", "wave", "heat", "poisson", "kovasznay"])
def test_exact_solution_float32(name):
    problem = jpinn.problems.make_problem(name)
    data = _data(problem, jnp.float32)
    scale = _scale(problem, data, jnp.float32)
    eps = float(jnp.finfo(jnp.float32).eps)
    for component, value in loss_components(problem, _exact(problem), data).items():
        assert value.dtype == jnp.float32
        assert float(value) <= (100 * eps * scale) ** 2, (component, float(value))


@pytest.mark.parametrize("name,coefficients", [p for p in PROBLEMS if p[1] == {} or p[0] == "heat"])
def test_wrong_solution_does_not_vanish(name, coefficients):
    # the check above can fail: a perturbed field leaves clearly non-zero residuals
    problem = jpinn.problems.make_problem(name, **coefficients)
    data = _data(problem, jnp.float32)
    exact = _exact(problem)
    perturbed = lambda p: exact(p) + 0.05 * jnp.sin(3 * p[0] + 1) * (1 + p[-1])  # noqa: E731
    total = sum(float(v) for v in loss_components(problem, perturbed, data).values())
    assert total > 1e-4


def test_closed_forms_by_hand():
    x = jnp.array([0.1, 0.5, 0.9])
    y = jnp.array([0.2, 0.7, 0.4])
    poisson = jpinn.problems.Poisson(dim=2)
    np.testing.assert_allclose(poisson.exact({"x1": x, "x2": y}), np.sin(np.pi * x) * np.sin(np.pi * y), atol=1e-6)
    helm = jpinn.problems.Helmholtz()
    np.testing.assert_allclose(helm.exact({"x": x, "y": y}), np.sin(np.pi * x) * np.sin(4 * np.pi * y), atol=1e-6)
    kov = jpinn.problems.Kovasznay(Re=20.0).exact({"x": x, "y": y})
    lam = 10 - np.sqrt(100 + 4 * np.pi**2)
    np.testing.assert_allclose(kov["p"], 0.5 * (1 - np.exp(2 * lam * x)), rtol=1e-5)
    heat = jpinn.problems.Heat(kappa=0.2, boundary="neumann")
    np.testing.assert_allclose(heat.exact({"x": x, "t": y}), np.cos(np.pi * x) * np.exp(-0.2 * np.pi**2 * y), rtol=1e-5)
    conv = jpinn.problems.Convection(beta=3.0)
    np.testing.assert_allclose(conv.exact({"x": x, "t": y}), np.sin(x - 3.0 * y), atol=1e-6)


def test_neumann_and_periodic_conditions_hold_for_their_solutions_only(x64):
    # the Neumann solution cos(pi x) has u_x = 0 at both ends; sin(pi x) does not (u_x = pi, -pi)
    neumann = jpinn.problems.Heat(boundary="neumann")
    data = _data(neumann, x64)
    sine = lambda p: jnp.sin(jnp.pi * p[:1])  # noqa: E731
    assert float(loss_components(neumann, _exact(neumann), data)["boundary"]) < 1e-28
    np.testing.assert_allclose(float(loss_components(neumann, sine, data)["boundary"]), np.pi**2, rtol=1e-12)
    # periodic in x with u and u_x: sin(2 pi x) passes, sin(pi x) fails (u_x(0) = pi, u_x(1) = -pi)
    periodic = jpinn.problems.Heat(boundary="periodic")
    data = _data(periodic, x64)
    assert float(loss_components(periodic, _exact(periodic), data)["boundary"]) < 1e-28
    np.testing.assert_allclose(float(loss_components(periodic, sine, data)["boundary"]), 4 * np.pi**2, rtol=1e-10)


def test_samplers_cover_their_regions():
    box = jpinn.problems.Box(("x", "y", "t"), (0, -1, 0), (2, 1, 1), time="t")
    rng = np.random.default_rng(0)
    from jpinn.problems.domain import sample_region

    for sampler in ("uniform", "sobol", "halton", "grid"):
        interior, _ = sample_region(box, jpinn.problems.Interior(), 512, sampler, rng)
        assert interior.shape[1] == 3 and len(interior) >= 343
        assert np.all(interior > np.array(box.lower)) and np.all(interior < np.array(box.upper))
        initial, _ = sample_region(box, jpinn.problems.Initial(), 100, sampler, rng)
        assert np.all(initial[:, 2] == 0)
        faces, _ = sample_region(box, jpinn.problems.Boundary(), 400, sampler, rng)
        on_face = (faces[:, 0] == 0) | (faces[:, 0] == 2) | (faces[:, 1] == -1) | (faces[:, 1] == 1)
        assert on_face.all()
        # points per face in proportion to the face's measure: x faces 2 x 1, y faces 2 x 1 -> equal
        # (a grid's edge points lie on two faces)
        x_faces = ((faces[:, 0] == 0) | (faces[:, 0] == 2)).sum()
        assert sampler == "grid" or x_faces == len(faces) // 2
        low, high = sample_region(box, jpinn.problems.PeriodicPair("y"), 50, sampler, rng)
        assert np.all(low[:, 1] == -1) and np.all(high[:, 1] == 1)
        np.testing.assert_array_equal(low[:, [0, 2]], high[:, [0, 2]])


def test_sampled_points_are_seeded_and_per_condition():
    problem = jpinn.problems.Poisson(dim=3)
    a = sample_points(problem, sampler="uniform", points={"residual": 64}, seed=5)
    b = sample_points(problem, sampler="uniform", points={"residual": 64}, seed=5)
    c = sample_points(problem, sampler="uniform", points={"residual": 64}, seed=6)
    np.testing.assert_array_equal(a.sets["residual"].points, b.sets["residual"].points)
    assert not np.array_equal(a.sets["residual"].points, c.sets["residual"].points)
    assert a.counts() == {"residual": 64, "boundary": 400}


def test_observations_carry_their_values_and_user_point_sets():
    class Fit(jpinn.problems.AbstractProblem):
        name = "fit"

        def domain(self):
            return jpinn.problems.Box(("x", "y"), (0, 0), (1, 1))

        def conditions(self):
            p = np.array([[0.1, 0.2], [0.5, 0.5], [0.9, 0.3]])
            return (cond.observations("data", p, np.array([1.0, 2.0, 3.0])),)

    data = sample_points(Fit(), seed=0)
    np.testing.assert_allclose(np.asarray(data.sets["data"].values)[:, 0], [1, 2, 3])
    # the constant field 2 misses the values by (-1, 0, 1): mean square 2/3
    parts = loss_components(Fit(), lambda p: jnp.array([2.0]), data)
    np.testing.assert_allclose(float(parts["data"]), 2 / 3, rtol=1e-6)


def test_weights_scale_their_component():
    problem = jpinn.problems.Poisson(dim=2)
    data = sample_points(problem, seed=0)
    u = lambda p: jnp.array([1.0])  # noqa: E731
    plain = loss_components(problem, u, data)
    weighted = loss_components(problem, u, data, weights={"boundary": 10.0})
    np.testing.assert_allclose(float(weighted["boundary"]), 10 * float(plain["boundary"]), rtol=1e-6)
    assert float(weighted["residual"]) == float(plain["residual"])


@pytest.mark.parametrize(
    "name,kwargs,field",
    [
        ("stokes", {}, "pde.name"),
        ("convection", {"rho": 1.0}, "pde.rho"),
        ("convection", {"beta": float("nan")}, "pde.beta"),
        ("convection", {"beta": "fast"}, "pde.beta"),
        ("wave", {"c2": 0.0}, "pde.c2"),
        ("reaction", {"rho": float("inf")}, "pde.rho"),
        ("heat", {"kappa": -1.0}, "pde.kappa"),
        ("heat", {"boundary": "robin"}, "pde.boundary"),
        ("poisson", {"dim": 11}, "pde.dim"),
        ("poisson", {"dim": 0}, "pde.dim"),
        ("helmholtz", {"a1": 0.5}, "pde.a1"),
        ("kovasznay", {"Re": 0.0}, "pde.Re"),
    ],
)
def test_bad_coefficients(name, kwargs, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")) as info:
        jpinn.problems.make_problem(name, **kwargs)
    assert "\n" not in str(info.value)


def test_malformed_problems_are_refused_in_one_line():
    class BadTerm(jpinn.problems.AbstractProblem):
        name = "bad"

        def domain(self):
            return jpinn.problems.Box(("x", "y"), (0, 0), (1, 1))

        def conditions(self):
            return (cond.pde("residual", ("u_z",), lambda d, c: d["u_z"]),)

    with pytest.raises(ValueError, match="condition residual: unknown derivative term 'u_z'"):
        jpinn.problems.check_problem(BadTerm())
    with pytest.raises(ValueError, match="coordinate 'x' needs finite bounds"):
        jpinn.problems.Box(("x",), (1,), (0,))
    with pytest.raises(ValueError, match="loss.weights.edge: not a condition"):
        jpinn.problems.check_problem(jpinn.problems.Poisson(), {"edge": 2.0})
