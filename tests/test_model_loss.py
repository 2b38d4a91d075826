"""The network and the loss: initialisation statistics, parameter counts, the loss against
finite differences of the network (independent of the derivative engine)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jpinn
from jpinn.models import MLP, n_parameters


@pytest.mark.parametrize("width", [50, 100, 200, 400])
def test_parameter_count_matches_the_study(width):
    model = MLP(width=width, depth=3, key=jax.random.PRNGKey(0))
    _, w0 = jpinn.build_loss(jpinn.pdes.Convection(), model, jpinn.sample_collocation(jpinn.pdes.Convection(), n_residual=10))
    assert w0.shape == (2 * width**2 + 6 * width + 1,) == (n_parameters(width, 3),)


def test_xavier_normal_and_zero_biases():
    model = MLP(width=400, depth=3, key=jax.random.PRNGKey(3))
    for layer in model.layers:
        fan_out, fan_in = layer.weight.shape
        w = np.asarray(layer.weight).ravel()
        expected = np.sqrt(2.0 / (fan_in + fan_out))
        # std within 4 standard errors of its estimate; untruncated: tails beyond 2 std exist
        assert abs(w.std() / expected - 1) < 4 / np.sqrt(2 * w.size) + 0.02
        assert abs(w.mean()) < 4 * expected / np.sqrt(w.size)
        if w.size > 10_000:
            assert np.mean(np.abs(w) > 2 * expected) == pytest.approx(0.0455, abs=0.01)
        assert np.all(np.asarray(layer.bias) == 0)


def test_mlp_forward_by_hand():
    model = MLP(width=3, depth=2, key=jax.random.PRNGKey(1))
    x, t = 0.3, 0.7
    h = np.array([x, t])
    for layer in model.layers[:-1]:
        h = np.tanh(np.asarray(layer.weight) @ h + np.asarray(layer.bias))
    out = np.asarray(model.layers[-1].weight) @ h + np.asarray(model.layers[-1].bias)
    assert float(model(jnp.array([x, t], jnp.float32))[0]) == pytest.approx(float(out[0]), rel=1e-5)
    assert model.predict(jnp.array([[x, t], [x, t]])).shape == (2, 1)


def test_mlp_any_sizes_and_input_scaling(x64):
    # three inputs, two outputs; input scaling maps the box [lo, hi] onto [-1, 1]^3
    lower, upper = (0.0, -2.0, 1.0), (4.0, 2.0, 3.0)
    plain = MLP(width=5, depth=2, in_size=3, out_size=2, key=jax.random.PRNGKey(2), dtype=x64)
    scaled = MLP(width=5, depth=2, in_size=3, out_size=2, input_scaling=(lower, upper), key=jax.random.PRNGKey(2),
                 dtype=x64)
    p = jnp.array([[1.0, 0.5, 2.5], [3.0, -1.0, 1.5]], x64)
    unit = 2 * (p - jnp.array(lower)) / (jnp.array(upper) - jnp.array(lower)) - 1
    np.testing.assert_allclose(scaled.predict(p), plain.predict(unit), rtol=1e-13)
    assert plain.predict(p).shape == (2, 2)
    assert jpinn.models.n_parameters(5, 2, 3, 2) == sum(x.size for x in jax.tree.leaves(plain))
    with pytest.raises(ValueError, match="model.input_scaling"):
        MLP(width=5, depth=2, in_size=3, input_scaling=((0, 0), (1, 1)), key=jax.random.PRNGKey(0))


@pytest.mark.parametrize("bad", [0, -3, 2.5, "wide", True])
def test_bad_sizes(bad):
    with pytest.raises(ValueError, match="model.width"):
        MLP(width=bad, depth=3, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="model.depth"):
        MLP(width=4, depth=bad, key=jax.random.PRNGKey(0))


def _finite_difference_loss(pde, model, data, h=1e-4):
    """The study's loss with derivatives by central differences of the network (float64)."""
    u = lambda p: np.asarray(model.predict(jnp.asarray(p)))[:, 0]  # noqa: E731
    shift = lambda p, dx, dt: p + np.array([dx, dt])  # noqa: E731

    def terms(points, names):
        out = {"u": u(points)}
        if "u_x" in names:
            out["u_x"] = (u(shift(points, h, 0)) - u(shift(points, -h, 0))) / (2 * h)
        if "u_t" in names:
            out["u_t"] = (u(shift(points, 0, h)) - u(shift(points, 0, -h))) / (2 * h)
        if "u_xx" in names:
            out["u_xx"] = (u(shift(points, h, 0)) - 2 * out["u"] + u(shift(points, -h, 0))) / h**2
        if "u_tt" in names:
            out["u_tt"] = (u(shift(points, 0, h)) - 2 * out["u"] + u(shift(points, 0, -h))) / h**2
        return out

    res, ini = np.asarray(data.residual_points), np.asarray(data.initial_points)
    left, right = np.asarray(data.boundary_left), np.asarray(data.boundary_right)
    coords = lambda p: {"x": p[:, 0], "t": p[:, 1]}  # noqa: E731
    r = pde.residual(terms(res, pde.residual_terms), coords(res))
    i = pde.initial_residuals(terms(ini, pde.initial_terms), coords(ini))
    b = pde.boundary_residuals(terms(left, ("u",)), terms(right, ("u",)), coords(left))
    mse = lambda parts: sum(float(np.mean(np.square(p))) for p in parts)  # noqa: E731
    return {"residual": mse((r,)), "initial": mse(i), "boundary": mse(b)}


@pytest.mark.parametrize("name", ["convection", "reaction", "wave"])
def test_loss_matches_finite_differences(name, tiny_problem, x64):
    pde, data, model, loss, w0 = tiny_problem(name, width=10, n_residual=150, dtype=x64)
    total, parts = eqx.filter_jit(loss)(w0)
    expected = _finite_difference_loss(pde, model, data)
    for key in ("residual", "initial", "boundary"):
        assert float(parts[key]) == pytest.approx(expected[key], rel=1e-5, abs=1e-12), key
    # components add up to the total
    assert float(total) == pytest.approx(sum(float(v) for v in parts.values()), rel=1e-14)


def test_components_add_up_float32_and_jit_matches_eager(tiny_problem):
    _, _, _, loss, w0 = tiny_problem("wave")
    total, parts = eqx.filter_jit(loss)(w0)
    eager_total, _ = loss(w0)
    assert total.dtype == jnp.float32
    assert float(total) == pytest.approx(float(parts["residual"] + parts["initial"] + parts["boundary"]), rel=1e-6)
    assert float(total) == pytest.approx(float(eager_total), rel=1e-5)


def test_mse_factor_halves_every_component(tiny_problem):
    pde, data, model, loss, w0 = tiny_problem("reaction")
    half, _ = jpinn.build_loss(pde, model, data, mse_factor=0.5)
    t1, p1 = loss(w0)
    t2, p2 = half(w0)
    assert float(t2) == pytest.approx(0.5 * float(t1), rel=1e-6)
    for key in p1:
        assert float(p2[key]) == pytest.approx(0.5 * float(p1[key]), rel=1e-6)
    with pytest.raises(ValueError, match="loss.mse_factor"):
        jpinn.build_loss(pde, model, data, mse_factor=0.0)


def test_loss_model_round_trip(tiny_problem):
    _, _, model, loss, w0 = tiny_problem()
    points = jnp.array([[0.5, 0.5], [1.0, 0.1]])
    np.testing.assert_array_equal(loss.model(w0).predict(points), model.predict(points))


@pytest.mark.parametrize("name", ["convection", "reaction", "wave"])
@pytest.mark.slow
def test_loss_gradient_and_hvp_agree_across_derivative_methods(name, tiny_problem, x64):
    from jpinn.linalg import hvp

    results = {}
    for method in ("forward", "reverse", "taylor", "auto"):
        _, _, _, loss, w0 = tiny_problem(name, width=6, n_residual=40, dtype=x64, method=method)
        v = jnp.cos(jnp.arange(w0.shape[0], dtype=x64))
        total, _ = loss(w0)
        grad = jax.grad(lambda w: loss(w)[0])(w0)
        results[method] = (np.asarray(total), np.asarray(grad), np.asarray(hvp(loss, w0, v)))
    for method in ("reverse", "taylor", "auto"):
        for a, b in zip(results["forward"], results[method]):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["wave", "kovasznay"])
def test_residual_vector_squares_to_the_loss(name, x64):
    # r(w) with sum(r^2) = loss, each condition's block scaled by sqrt(weight / n)
    problem = jpinn.problems.make_problem(name)
    if name == "wave":
        data = jpinn.sample_collocation(problem, n_x=17, n_t=9, n_residual=40, seed=0, dtype=x64)
    else:
        data = jpinn.sample_points(problem, points={"momentum_x": 30, "momentum_y": 30, "continuity": 30,
                                                    "boundary_u": 20, "boundary_v": 20, "outflow_p": 10}, seed=0, dtype=x64)
    box = problem.domain()
    model = MLP(width=6, depth=2, in_size=len(box.coordinates), out_size=len(problem.fields),
                key=jax.random.PRNGKey(0), dtype=x64)
    loss, w0 = jpinn.build_loss(problem, model, data, weights={problem.conditions()[0].name: 3.0}, mse_factor=0.5)
    r = eqx.filter_jit(lambda f, w: f.residuals(w))(loss, w0)
    total, _ = eqx.filter_jit(loss)(w0)
    np.testing.assert_allclose(float(jnp.sum(r**2)), float(total), rtol=1e-12)
    # every point of every part appears once: the wave's initial has 2 parts, its boundary 2
    expected = 40 + 2 * 17 + 2 * 9 if name == "wave" else 30 * 3 + 20 + 20 + 10
    assert r.shape == (expected,)
