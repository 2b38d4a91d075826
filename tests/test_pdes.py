"""Each exact solution satisfies its PDE, initial and boundary conditions (to dtype
tolerance) with the derivatives taken by the same code the loss uses; a wrong candidate
does not."""

import jax.numpy as jnp
import numpy as np
import pytest

import jpinn
from jpinn.derivatives import METHODS, derivatives

# methods for any field (taylor needs a network that propagates its own terms)
GENERIC = tuple(m for m in METHODS if m != "taylor")
from jpinn.loss import loss_components

PDES = {
    "convection": [{}, {"beta": 1.0}, {"beta": 20.0}],
    "reaction": [{}, {"rho": 1.0}],
    "wave": [{}, {"beta": 1.0}, {"beta": 3.0, "c2": 1.0}],
}
CASES = [(name, coeffs) for name, options in PDES.items() for coeffs in options]


def _scale(pde, data):
    # size of the largest derivative term in the residual: the natural unit of its error
    res = data.residual_points
    d = derivatives(pde.exact, pde.residual_terms, res[:, 0], res[:, 1], "reverse")
    return max(float(jnp.max(jnp.abs(v))) for v in d.values())


@pytest.mark.parametrize("method", GENERIC)
@pytest.mark.parametrize("name,coefficients", CASES)
def test_exact_solution_makes_every_term_vanish(name, coefficients, method, x64):
    pde = jpinn.pdes.make_pde(name, **coefficients)
    data = jpinn.sample_collocation(pde, n_residual=2000, seed=1, dtype=x64)
    parts = loss_components(pde, pde.exact, data, method=method)
    eps = float(jnp.finfo(x64).eps)
    scale = max(1.0, _scale(pde, data))
    for component, value in parts.items():
        assert value.dtype == jnp.float64
        assert float(value) <= (100 * eps * scale) ** 2, (component, float(value))


@pytest.mark.parametrize("name", list(PDES))
def test_exact_solution_float32(name):
    pde = jpinn.pdes.make_pde(name)
    data = jpinn.sample_collocation(pde, n_residual=2000, seed=1)
    scale = max(1.0, _scale(pde, data))
    eps = float(jnp.finfo(jnp.float32).eps)
    for component, value in loss_components(pde, pde.exact, data).items():
        assert value.dtype == jnp.float32
        assert float(value) <= (100 * eps * scale) ** 2, (component, float(value))


@pytest.mark.parametrize("name", list(PDES))
def test_wrong_solution_does_not_vanish(name):
    # the check above can fail: a perturbed field, or the right field with another
    # coefficient, leaves clearly non-zero residuals
    pde = jpinn.pdes.make_pde(name)
    data = jpinn.sample_collocation(pde, n_residual=2000, seed=1)
    perturbed = lambda x, t: pde.exact(x, t) + 0.05 * jnp.sin(x) * t  # noqa: E731
    assert float(loss_components(pde, perturbed, data)["residual"]) > 1e-6
    field = list(pde.coefficients())[0]
    other = jpinn.pdes.make_pde(name, **{field: pde.coefficients()[field] + 1.0})
    # (the wave's exact field solves the PDE for any beta; its initial term then differs)
    assert sum(float(v) for v in loss_components(pde, other.exact, data).values()) > 1e-3


def test_exact_solutions_match_closed_forms():
    x = np.linspace(0, 2 * np.pi, 7)
    t = np.linspace(0, 1, 7)
    conv = jpinn.pdes.Convection(beta=3.0)
    np.testing.assert_allclose(conv.exact(x, t), np.sin(x - 3.0 * t), atol=1e-6)
    reac = jpinn.pdes.Reaction(rho=2.0)
    h = np.exp(-((x - np.pi) ** 2) / (2 * (np.pi / 4) ** 2))
    np.testing.assert_allclose(reac.exact(x, t), h * np.exp(2 * t) / (h * np.exp(2 * t) + 1 - h), rtol=1e-5)
    xw = np.linspace(0, 1, 7)
    wave = jpinn.pdes.Wave()
    expected = np.sin(np.pi * xw) * np.cos(2 * np.pi * t) + 0.5 * np.sin(5 * np.pi * xw) * np.cos(10 * np.pi * t)
    np.testing.assert_allclose(wave.exact(xw, t), expected, atol=1e-5)


def test_domains():
    assert jpinn.pdes.Convection().x_max == pytest.approx(2 * np.pi)
    assert jpinn.pdes.Reaction().x_min == 0.0
    assert jpinn.pdes.Wave().x_max == 1.0


@pytest.mark.parametrize(
    "name,kwargs,field",
    [
        ("heat", {}, "pde.name"),
        ("convection", {"rho": 1.0}, "pde.rho"),
        ("convection", {"beta": float("nan")}, "pde.beta"),
        ("convection", {"beta": "fast"}, "pde.beta"),
        ("wave", {"c2": 0.0}, "pde.c2"),
        ("wave", {"c2": -4.0}, "pde.c2"),
        ("reaction", {"rho": float("inf")}, "pde.rho"),
    ],
)
def test_bad_coefficients(name, kwargs, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        jpinn.pdes.make_pde(name, **kwargs)


def test_derivative_methods_agree_with_calculus(x64):
    # u = sin(2x) e^{3t} + x^3 t^2, derivatives by hand
    u = lambda x, t: jnp.sin(2 * x) * jnp.exp(3 * t) + x**3 * t**2  # noqa: E731
    x = jnp.array([0.3, 1.1, -0.7])
    t = jnp.array([0.5, 0.2, 0.9])
    s, c, e = np.sin(2 * x), np.cos(2 * x), np.exp(3 * t)
    expected = {
        "u": s * e + x**3 * t**2,
        "u_x": 2 * c * e + 3 * x**2 * t**2,
        "u_t": 3 * s * e + 2 * x**3 * t,
        "u_xx": -4 * s * e + 6 * x * t**2,
        "u_tt": 9 * s * e + 2 * x**3,
        "u_xt": 6 * c * e + 6 * x**2 * t,
    }
    for method in GENERIC:
        for terms in [tuple(expected), ("u_x",), ("u", "u_t"), ("u_xx", "u_tt"), ("u_xt",), ("u_t",)]:
            got = derivatives(u, terms, x, t, method)
            assert set(got) == set(terms)
            for term in terms:
                np.testing.assert_allclose(got[term], expected[term], rtol=1e-12, atol=1e-12, err_msg=f"{method} {term}")


def test_unknown_method_and_term():
    u = lambda x, t: x * t  # noqa: E731
    with pytest.raises(ValueError, match="derivatives: unknown method 'sideways'"):
        derivatives(u, ("u",), jnp.zeros(2), jnp.zeros(2), "sideways")
    with pytest.raises(ValueError, match="unknown derivative term 'u_xxx'"):
        derivatives(u, ("u_xxx",), jnp.zeros(2), jnp.zeros(2))
    with pytest.raises(ValueError, match="method 'taylor' needs a field with taylor_terms"):
        derivatives(u, ("u_x",), jnp.zeros(2), jnp.zeros(2), "taylor")
