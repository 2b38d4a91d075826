"""The Taylor-mode derivative engine and the blocked loss against independent references:
derivatives of a one-layer network by hand, the other methods, the one-batch loss."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jpinn
from jpinn.derivatives import STUDY_VARIABLES, Variables, evaluate_terms, resolve_method, taylor_mlp
from jpinn.linalg import hvp, hvp_block, value_grad_hvp
from jpinn.loss import resolve_block_size

TERMS = ("u", "u_x", "u_t", "u_xx", "u_tt", "u_xt")
TERM_SETS = [TERMS, ("u",), ("u_x",), ("u_t",), ("u", "u_t"), ("u_x", "u_t"), ("u_xx", "u_tt"), ("u_xt",), ("u_tt", "u")]


def _points(dtype, n=7, d=2):
    return jax.random.uniform(jax.random.PRNGKey(3), (n, d), dtype, -2.0, 2.0)


def _parse(terms, variables=STUDY_VARIABLES):
    return [variables.parse(t) for t in terms]


def test_taylor_equals_one_layer_network_by_hand(x64):
    # u = sum_i v_i tanh(a_i x + c_i t + b_i) + d; with s = 1 - tanh^2 and tanh'' = -2 tanh s:
    # u_x = sum v s a, u_xx = sum v (-2 tanh s) a^2, u_xt = sum v (-2 tanh s) a c, ...
    rng = np.random.default_rng(0)
    W1, b1 = rng.normal(size=(5, 2)), rng.normal(size=5)
    W2, b2 = rng.normal(size=(1, 5)), rng.normal(size=1)
    p = np.asarray(_points(x64))
    x, t = p[:, 0], p[:, 1]
    th = np.tanh(np.outer(x, W1[:, 0]) + np.outer(t, W1[:, 1]) + b1)
    s = 1 - th**2
    dd = -2 * th * s
    v, a, c = W2[0], W1[:, 0], W1[:, 1]
    expected = {
        (): th @ v + b2[0], (0,): s @ (v * a), (1,): s @ (v * c),
        (0, 0): dd @ (v * a * a), (1, 1): dd @ (v * c * c), (0, 1): dd @ (v * a * c),
    }
    weights = [jnp.asarray(W1), jnp.asarray(W2)]
    biases = [jnp.asarray(b1), jnp.asarray(b2)]
    got = taylor_mlp(weights, biases, jnp.asarray(p), (0, 1), ((0, 0), (1, 1), (0, 1)))
    assert list(got) == [(), (0,), (1,), (0, 0), (1, 1), (0, 1)]
    for stream, value in expected.items():
        np.testing.assert_allclose(got[stream][:, 0], value, rtol=1e-12, atol=1e-12, err_msg=str(stream))


@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.slow
def test_every_method_agrees_on_the_network(depth, x64):
    model = jpinn.models.MLP(width=9, depth=depth, key=jax.random.PRNGKey(1), dtype=x64)
    p = _points(x64)
    run = eqx.filter_jit(lambda model, p, terms, method: evaluate_terms(model, terms, p, method=method))
    for terms in TERM_SETS:
        results = {m: run(model, p, terms, m) for m in ("reverse", "forward", "taylor", "auto")}
        for method, got in results.items():
            assert set(got) == set(terms)  # (a jitted dict comes back with its keys sorted)
            for term in terms:
                np.testing.assert_allclose(got[term], results["reverse"][term], rtol=1e-12, atol=1e-12,
                                           err_msg=f"{method} {term}")


def test_every_method_agrees_float32():
    model = jpinn.models.MLP(width=20, depth=3, key=jax.random.PRNGKey(1))
    p = _points(jnp.float32, n=50)
    run = eqx.filter_jit(lambda model, p, method: evaluate_terms(model, TERMS, p, method=method))
    ref = run(model, p, "reverse")
    for method in ("forward", "taylor"):
        got = run(model, p, method)
        for term in TERMS:
            assert got[term].dtype == jnp.float32
            scale = float(jnp.max(jnp.abs(ref[term])))
            np.testing.assert_allclose(got[term], ref[term], atol=1e-5 * max(scale, 1.0), err_msg=f"{method} {term}")


@pytest.mark.parametrize("coordinates,time", [(("x", "y"), None), (("x", "y", "t"), "t"), (("x1", "x2", "x10"), None)])
@pytest.mark.parametrize("scaled", [False, True])
@pytest.mark.slow
def test_every_method_matches_jacfwd_and_hessian_with_several_fields(coordinates, time, scaled, x64):
    # every term of every field up to second order, mixed ones and the Laplacian, against
    # jax.jacfwd / jax.hessian of the network at each point
    d = len(coordinates)
    variables = Variables(coordinates, ("u", "v", "p"), time)
    scaling = ((-1.0,) * d, (3.0,) * d) if scaled else None
    model = jpinn.models.MLP(width=8, depth=2, in_size=d, out_size=3, input_scaling=scaling,
                             key=jax.random.PRNGKey(4), dtype=x64)
    p = _points(x64, n=6, d=d)
    jac = jax.vmap(jax.jacfwd(model))(p)       # (n, k, d)
    hess = jax.vmap(jax.hessian(model))(p)     # (n, k, d, d)
    value = model.predict(p)
    space = [i for i, c in enumerate(coordinates) if c != time]
    expected = {}
    for k, field in enumerate(variables.fields):
        expected[field] = value[:, k]
        expected[f"lap_{field}"] = sum(hess[:, k, i, i] for i in space)
        for i, a in enumerate(coordinates):
            expected[f"{field}_{a}"] = jac[:, k, i]
            for j, b in enumerate(coordinates):
                expected[f"{field}_{a}{b}"] = hess[:, k, i, j]
    terms = variables.all_terms()
    run = eqx.filter_jit(lambda model, p, terms, method: evaluate_terms(model, terms, p, variables, method))
    for method in ("taylor", "forward", "reverse", "auto"):
        got = run(model, p, terms, method)
        for term in terms:
            np.testing.assert_allclose(got[term], expected[term], rtol=1e-11, atol=1e-12, err_msg=f"{method} {term}")
    # subsets: one field, one mixed term, first derivatives of two fields
    for subset in ((f"v_{coordinates[0]}",), (f"u_{coordinates[0]}{coordinates[-1]}",),
                   (f"u_{coordinates[1]}", f"p_{coordinates[0]}"), ("lap_v", "p")):
        for method in ("taylor", "forward", "reverse"):
            got = run(model, p, subset, method)
            for term in subset:
                np.testing.assert_allclose(got[term], expected[term], rtol=1e-11, atol=1e-12, err_msg=f"{method} {term}")


@pytest.mark.parametrize("method", ["taylor", "forward", "reverse", "auto"])
def test_third_and_fourth_derivatives_match_nested_jacfwd(method, x64):
    model = jpinn.models.MLP(width=7, depth=2, key=jax.random.PRNGKey(4), dtype=x64)
    p = _points(x64, n=5)
    terms = ("u", "u_t", "u_xx", "u_xxx", "u_xxt", "u_xxxx", "u_xtxt")
    got = eqx.filter_jit(lambda model, p: evaluate_terms(model, terms, p, method=method))(model, p)
    u = lambda q: model(q)[0]  # noqa: E731
    d4 = jax.vmap(jax.jacfwd(jax.jacfwd(jax.hessian(u))))(p)  # [n, i, j, k, l]
    expected = {"u": jax.vmap(u)(p), "u_t": jax.vmap(jax.grad(u))(p)[:, 1], "u_xx": jax.vmap(jax.hessian(u))(p)[:, 0, 0],
                "u_xxx": jax.vmap(jax.jacfwd(jax.hessian(u)))(p)[:, 0, 0, 0],
                "u_xxt": jax.vmap(jax.jacfwd(jax.hessian(u)))(p)[:, 0, 0, 1],
                "u_xxxx": d4[:, 0, 0, 0, 0], "u_xtxt": d4[:, 0, 0, 1, 1]}
    for term in terms:
        np.testing.assert_allclose(got[term], expected[term], rtol=1e-10, atol=1e-10, err_msg=term)


def test_term_names_are_parsed_with_the_problems_names():
    v = Variables(("x1", "x10", "t"), ("u", "rho"), "t")
    assert v.parse("u_x1x10").directions == (0, 1)
    assert v.parse("u_x10x1").directions == (0, 1)
    assert v.parse("rho_tt").directions == (2, 2) and v.parse("rho_tt").field == 1
    assert v.parse("lap_u").laplacian and v.parse("lap_u").directions == (0, 1)
    assert v.parse("u_x1x1x10").directions == (0, 0, 1) and v.parse("u_tx1tx1").directions == (0, 0, 2, 2)
    for bad, message in (("w_x1", "'w' is not a field"), ("u_x2", "not one to 4 coordinates"),
                         ("u_x1x1x1x1x1", "not one to 4 coordinates"), ("lap_w", "'w' is not a field")):
        with pytest.raises(ValueError, match=message):
            v.parse(bad)
    with pytest.raises(ValueError, match="ambiguous"):
        Variables(("a", "ab", "b", "bb"), ("u",)).parse("u_abb")  # a|bb or ab|b
    with pytest.raises(ValueError, match="no '_'"):
        Variables(("x_1",), ("u",))
    with pytest.raises(ValueError, match="names repeat"):
        Variables(("x", "x"), ("u",))


def test_auto_picks_taylor_for_networks_and_generic_methods_otherwise():
    model = jpinn.models.MLP(width=4, depth=2, key=jax.random.PRNGKey(0))
    plain = lambda p: p[:1] * p[1:]  # noqa: E731
    assert resolve_method(model, _parse(("u_xx",))) == "taylor"
    assert resolve_method(model, _parse(("u", "u_t"))) == "taylor"
    assert resolve_method(model, _parse(("u_x", "u_t"))) == "reverse"  # one backward pass for both
    assert resolve_method(plain, _parse(("u_xx",))) == "forward"
    assert resolve_method(plain, _parse(("u_x",))) == "reverse"
    assert resolve_method(plain, _parse(("u_x",)), "forward") == "forward"
    with pytest.raises(ValueError, match="method 'taylor' needs a model"):
        resolve_method(plain, _parse(("u",)), "taylor")
    with pytest.raises(ValueError, match="derivatives: unknown method 'sideways'"):
        evaluate_terms(plain, ("u",), jnp.zeros((2, 2)), method="sideways")
    with pytest.raises(ValueError, match="unknown derivative term 'u_xxxxx'"):
        evaluate_terms(plain, ("u_xxxxx",), jnp.zeros((2, 2)))
    # terms of order 3 and 4 do not change the method of the others
    assert resolve_method(model, _parse(("u_x", "u_t", "u_xxx"))) == "reverse"


def _problem(name, n_residual, dtype, block_size, width=7):
    pde = jpinn.pdes.make_pde(name)
    data = jpinn.sample_collocation(pde, n_x=33, n_t=21, n_residual=n_residual, seed=0, dtype=dtype)
    model = jpinn.models.MLP(width=width, depth=2, key=jax.random.PRNGKey(0), dtype=dtype)
    return jpinn.build_loss(pde, model, data, block_size=block_size)


@pytest.mark.parametrize("name", ["convection", "reaction", "wave"])
@pytest.mark.parametrize("block_size", [16, 50])  # 200 points: 12 blocks + 8 left over; 4 blocks exactly
@pytest.mark.slow
def test_blocked_loss_gradient_and_hvp_equal_one_batch(name, block_size, x64):
    one, w0 = _problem(name, 200, x64, None)
    blocked, _ = _problem(name, 200, x64, block_size)
    assert blocked.block_size == block_size and one.block_size is None
    v = jnp.sin(jnp.arange(w0.shape[0], dtype=x64))
    for f in (lambda l: l(w0)[1], lambda l: jax.grad(lambda w: l(w)[0])(w0), lambda l: hvp(l, w0, v)):
        a, b = eqx.filter_jit(f)(one), eqx.filter_jit(f)(blocked)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            np.testing.assert_allclose(y, x, rtol=1e-12, atol=1e-14)


def test_block_size_resolution_and_errors():
    model = jpinn.models.MLP(width=200, depth=3, key=jax.random.PRNGKey(0))
    expected = 512 if jax.default_backend() == "cpu" else None
    assert resolve_block_size("auto", model) == expected
    assert resolve_block_size(None, model) is None
    assert resolve_block_size(64, model) == 64
    for bad in (0, -3, 2.5, True, "big"):
        with pytest.raises(ValueError, match="loss.block_size"):
            resolve_block_size(bad, model)


@pytest.mark.slow
def test_hvp_block_batches_equal_vmapped(x64):
    loss, w0 = _problem("wave", 60, x64, None)
    vectors = jax.random.normal(jax.random.PRNGKey(2), (5, w0.shape[0]), x64)
    reference = np.stack([np.asarray(eqx.filter_jit(hvp)(loss, w0, v)) for v in vectors])
    block = eqx.filter_jit(lambda f, w, vs, b: hvp_block(value_grad_hvp(f, w)[2], vs, b))
    for batch_size in (None, 2):  # one vmapped pass; lax.map over batches with a remainder
        np.testing.assert_allclose(block(loss, w0, vectors, batch_size), reference, rtol=1e-11, atol=1e-13)


def test_taylor_needs_a_taylor_model():
    class Plain(eqx.Module):
        def __call__(self, p):
            return p[:1] * p[1:]

    pde = jpinn.pdes.make_pde("wave")
    data = jpinn.sample_collocation(pde, n_x=9, n_t=5, n_residual=10, seed=0)
    with pytest.raises(ValueError, match="method 'taylor' needs a model"):
        jpinn.build_loss(pde, Plain(), data, method="taylor")
