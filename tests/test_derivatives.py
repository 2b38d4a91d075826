"""The Taylor-mode derivative engine and the blocked loss against independent references:
derivatives of a one-layer network by hand, the other methods, the one-batch loss."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jpinn
from jpinn.derivatives import TERMS, derivatives, resolve_method, taylor_mlp
from jpinn.linalg import hvp, hvp_block, value_grad_hvp
from jpinn.loss import resolve_block_size

TERM_SETS = [TERMS, ("u",), ("u_x",), ("u_t",), ("u", "u_t"), ("u_x", "u_t"), ("u_xx", "u_tt"), ("u_xt",), ("u_tt", "u")]


def _points(dtype, n=7):
    key_x, key_t = jax.random.split(jax.random.PRNGKey(3))
    return jax.random.uniform(key_x, (n,), dtype, -2.0, 2.0), jax.random.uniform(key_t, (n,), dtype)


def test_taylor_equals_one_layer_network_by_hand(x64):
    # u = sum_i v_i tanh(a_i x + c_i t + b_i) + d; with s = 1 - tanh^2 and tanh'' = -2 tanh s:
    # u_x = sum v s a, u_xx = sum v (-2 tanh s) a^2, u_xt = sum v (-2 tanh s) a c, ...
    rng = np.random.default_rng(0)
    W1, b1 = rng.normal(size=(5, 2)), rng.normal(size=5)
    W2, b2 = rng.normal(size=(1, 5)), rng.normal(size=1)
    x, t = (np.asarray(a) for a in _points(x64))
    th = np.tanh(np.outer(x, W1[:, 0]) + np.outer(t, W1[:, 1]) + b1)
    s = 1 - th**2
    dd = -2 * th * s
    v, a, c = W2[0], W1[:, 0], W1[:, 1]
    expected = {
        "u": th @ v + b2[0], "u_x": s @ (v * a), "u_t": s @ (v * c),
        "u_xx": dd @ (v * a * a), "u_tt": dd @ (v * c * c), "u_xt": dd @ (v * a * c),
    }
    weights = [jnp.asarray(W1), jnp.asarray(W2)]
    biases = [jnp.asarray(b1), jnp.asarray(b2)]
    for terms in TERM_SETS:
        got = taylor_mlp(weights, biases, jnp.asarray(x), jnp.asarray(t), terms)
        assert list(got) == list(terms)
        for term in terms:
            np.testing.assert_allclose(got[term], expected[term], rtol=1e-12, atol=1e-12, err_msg=term)


@pytest.mark.parametrize("depth", [1, 3])
def test_every_method_agrees_on_the_network(depth, x64):
    model = jpinn.models.MLP(width=9, depth=depth, key=jax.random.PRNGKey(1), dtype=x64)
    x, t = _points(x64)
    for terms in TERM_SETS:
        results = {m: derivatives(model, terms, x, t, m) for m in ("reverse", "forward", "taylor", "auto")}
        for method, got in results.items():
            for term in terms:
                np.testing.assert_allclose(got[term], results["reverse"][term], rtol=1e-12, atol=1e-12,
                                           err_msg=f"{method} {term}")


def test_every_method_agrees_float32():
    model = jpinn.models.MLP(width=20, depth=3, key=jax.random.PRNGKey(1))
    x, t = _points(jnp.float32, n=50)
    ref = derivatives(model, TERMS, x, t, "reverse")
    for method in ("forward", "taylor"):
        got = derivatives(model, TERMS, x, t, method)
        for term in TERMS:
            assert got[term].dtype == jnp.float32
            scale = float(jnp.max(jnp.abs(ref[term])))
            np.testing.assert_allclose(got[term], ref[term], atol=1e-5 * max(scale, 1.0), err_msg=f"{method} {term}")


def test_auto_picks_taylor_for_networks_and_generic_methods_otherwise():
    model = jpinn.models.MLP(width=4, depth=2, key=jax.random.PRNGKey(0))
    plain = lambda x, t: x * t  # noqa: E731
    assert resolve_method(model, ("u_xx",)) == "taylor"
    assert resolve_method(model, ("u", "u_t")) == "taylor"
    assert resolve_method(model, ("u_x", "u_t")) == "reverse"  # one backward pass for both
    assert resolve_method(plain, ("u_xx",)) == "forward"
    assert resolve_method(plain, ("u_x",)) == "reverse"
    assert resolve_method(plain, ("u_x",), "forward") == "forward"
    with pytest.raises(ValueError, match="method 'taylor' needs a field"):
        resolve_method(plain, ("u",), "taylor")


def _problem(name, n_residual, dtype, block_size, width=7):
    pde = jpinn.pdes.make_pde(name)
    data = jpinn.sample_collocation(pde, n_x=33, n_t=21, n_residual=n_residual, seed=0, dtype=dtype)
    model = jpinn.models.MLP(width=width, depth=2, key=jax.random.PRNGKey(0), dtype=dtype)
    return jpinn.build_loss(pde, model, data, block_size=block_size)


@pytest.mark.parametrize("name", ["convection", "reaction", "wave"])
@pytest.mark.parametrize("block_size", [16, 50])  # 200 points: 12 blocks + 8 left over; 4 blocks exactly
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


def test_hvp_block_batches_equal_vmapped(x64):
    loss, w0 = _problem("wave", 60, x64, None)
    vectors = jax.random.normal(jax.random.PRNGKey(2), (5, w0.shape[0]), x64)
    reference = np.stack([np.asarray(eqx.filter_jit(hvp)(loss, w0, v)) for v in vectors])
    block = eqx.filter_jit(lambda f, w, vs, b: hvp_block(value_grad_hvp(f, w)[2], vs, b))
    for batch_size in (None, 2):  # one vmapped pass; lax.map over batches with a remainder
        np.testing.assert_allclose(block(loss, w0, vectors, batch_size), reference, rtol=1e-11, atol=1e-13)


def test_taylor_needs_a_taylor_model():
    class Plain(eqx.Module):
        def __call__(self, x, t):
            return x * t

    pde = jpinn.pdes.make_pde("wave")
    data = jpinn.sample_collocation(pde, n_x=9, n_t=5, n_residual=10, seed=0)
    with pytest.raises(ValueError, match="method 'taylor' needs a model"):
        jpinn.build_loss(pde, Plain(), data, method="taylor")
