"""The networks beyond the study's MLP (activations, Fourier features, periodic embeddings,
the modified MLP): derivative terms against jax.jacfwd / jax.hessian, exact periodicity,
the modified MLP against its formula by hand; Adam's learning-rate schedules against optax."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jpinn
from jpinn.derivatives import Variables, evaluate_terms, resolve_method
from jpinn.loss import flatten_model
from jpinn.optim import Adam

VARIABLES = Variables(("x", "y", "t"), ("u", "v"), "t")
TERMS = VARIABLES.all_terms()


def _points(dtype, n=6, d=3):
    return jax.random.uniform(jax.random.PRNGKey(3), (n, d), dtype, -1.5, 1.5)


def _expected(model, p):
    jac, hess, value = jax.vmap(jax.jacfwd(model))(p), jax.vmap(jax.hessian(model))(p), jax.vmap(model)(p)
    out = {}
    for k, field in enumerate(VARIABLES.fields):
        out[field] = value[:, k]
        out[f"lap_{field}"] = hess[:, k, 0, 0] + hess[:, k, 1, 1]
        for i, a in enumerate(VARIABLES.coordinates):
            out[f"{field}_{a}"] = jac[:, k, i]
            for j, b in enumerate(VARIABLES.coordinates):
                out[f"{field}_{a}{b}"] = hess[:, k, i, j]
    return out


MODELS = {
    "mlp-sin": lambda key, dtype: jpinn.models.MLP(8, 2, in_size=3, out_size=2, activation="sin", key=key, dtype=dtype),
    "mlp-gelu": lambda key, dtype: jpinn.models.MLP(8, 2, in_size=3, out_size=2, activation="gelu", key=key,
                                                    dtype=dtype),
    "fourier": lambda key, dtype: jpinn.models.FourierMLP(8, 2, in_size=3, out_size=2, fourier_features=5, sigma=2.0,
                                                          periodic=((0, 2.0),), harmonics=2, key=key, dtype=dtype),
    "modified": lambda key, dtype: jpinn.models.ModifiedMLP(8, 2, in_size=3, out_size=2, activation="sin",
                                                            periodic=((1, 3.0),), input_scaling=((-2,) * 3, (2,) * 3),
                                                            key=key, dtype=dtype),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_network_s_terms_match_jacfwd_and_hessian(name, x64):
    model = MODELS[name](jax.random.PRNGKey(1), x64)
    p = _points(x64)
    expected = _expected(model, p)
    run = eqx.filter_jit(lambda model, p, method: evaluate_terms(model, TERMS, p, VARIABLES, method))
    methods = ("taylor", "forward", "reverse", "auto") if name.startswith("mlp") else ("forward", "reverse", "auto")
    for method in methods:
        got = run(model, p, method)
        for term in TERMS:
            np.testing.assert_allclose(got[term], expected[term], rtol=1e-11, atol=1e-11, err_msg=f"{method} {term}")
    # the fallback of the embedded networks: auto picks forward mode for second derivatives
    terms = [VARIABLES.parse(t) for t in ("u", "u_t", "u_xx")]
    assert resolve_method(model, terms) == ("taylor" if name.startswith("mlp") else "forward")


def test_periodic_embedding_is_exactly_periodic(x64):
    for model in (MODELS["fourier"](jax.random.PRNGKey(2), x64), MODELS["modified"](jax.random.PRNGKey(2), x64)):
        index, period = model.embedding.periodic[0]
        p = _points(x64)
        shifted = p.at[:, index].add(period)
        np.testing.assert_allclose(jax.vmap(model)(shifted), jax.vmap(model)(p), rtol=0, atol=1e-13)
        grad = jax.vmap(jax.jacfwd(model))
        np.testing.assert_allclose(grad(shifted), grad(p), rtol=1e-12, atol=1e-12)
        other = p.at[:, 2].add(0.7)  # not periodic in t
        assert not np.allclose(jax.vmap(model)(other), jax.vmap(model)(p), atol=1e-3)


def test_fourier_features_are_fixed_and_not_trained():
    model = jpinn.models.FourierMLP(16, 2, in_size=2, fourier_features=10, sigma=3.0, key=jax.random.PRNGKey(0))
    w, _, _ = flatten_model(model)
    assert w.shape[0] == jpinn.models.n_parameters(16, 2, in_size=20, out_size=1)
    b = np.asarray(model.embedding.features)
    assert b.shape == (10, 2) and 1.5 < b.std() < 6  # drawn from N(0, 3^2)
    again = jpinn.models.FourierMLP(16, 2, in_size=2, fourier_features=10, sigma=3.0, key=jax.random.PRNGKey(0))
    assert again.embedding.features == model.embedding.features
    p = jnp.asarray([[0.3, -0.2]])
    angle = 2 * np.pi * b @ np.asarray(p[0])
    np.testing.assert_allclose(model.embedding(p[0]), np.concatenate([np.cos(angle), np.sin(angle)]), atol=5e-5)  # float32


def test_modified_mlp_by_hand(x64):
    model = jpinn.models.ModifiedMLP(5, 2, in_size=2, out_size=1, key=jax.random.PRNGKey(7), dtype=x64)
    p = np.asarray([0.4, -0.9])
    lin = lambda layer, h: np.asarray(layer.weight) @ h + np.asarray(layer.bias)  # noqa: E731
    u, v = np.tanh(lin(model.encoder_u, p)), np.tanh(lin(model.encoder_v, p))
    h = p
    for layer in model.layers[:-1]:
        z = np.tanh(lin(layer, h))
        h = (1 - z) * u + z * v
    np.testing.assert_allclose(model(jnp.asarray(p)), lin(model.layers[-1], h), rtol=1e-13)


def test_bad_network_settings_are_refused_in_one_line():
    key = jax.random.PRNGKey(0)
    for build, field in ((lambda: jpinn.models.MLP(4, 1, activation="relu", key=key), "model.activation"),
                         (lambda: jpinn.models.FourierMLP(4, 1, sigma=0.0, key=key), "model.sigma"),
                         (lambda: jpinn.models.FourierMLP(4, 1, fourier_features=-1, key=key), "model.fourier_features"),
                         (lambda: jpinn.models.ModifiedMLP(4, 1, periodic=((5, 1.0),), key=key), "model.periodic")):
        with pytest.raises(ValueError, match=field.replace(".", r"\.")) as info:
            build()
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("schedule,kwargs,reference", [
    ("exponential", {"decay_steps": 10, "decay_rate": 0.5}, optax.exponential_decay(1e-2, 10, 0.5)),
    ("cosine", {"decay_steps": 20, "end_fraction": 0.1}, optax.cosine_decay_schedule(1e-2, 20, alpha=0.1)),
    ("warmup_cosine", {"decay_steps": 30, "warmup_steps": 5, "end_fraction": 0.0},
     optax.warmup_cosine_decay_schedule(0.0, 1e-2, 5, 30, end_value=0.0)),
])
def test_adam_schedules_give_optax_values_and_steps(schedule, kwargs, reference, x64):
    adam = Adam(1e-2, schedule=schedule, **kwargs)
    steps = jnp.arange(40)
    np.testing.assert_allclose(jax.vmap(adam.learning_rate_at)(steps), jax.vmap(reference)(steps), rtol=1e-14)
    # the steps themselves: optax.adam with the schedule, on a quadratic
    f = lambda w: (jnp.sum((w - 1.0) ** 2), {})  # noqa: E731
    w, state = jnp.zeros(3, x64), adam.init(f, jnp.zeros(3, x64))
    tx = optax.adam(reference)
    w_ref, state_ref = jnp.zeros(3, x64), tx.init(jnp.zeros(3, x64))
    for _ in range(12):
        w, state, _ = adam.step(f, w, state)
        updates, state_ref = tx.update(jax.grad(lambda w: f(w)[0])(w_ref), state_ref, w_ref)
        w_ref = optax.apply_updates(w_ref, updates)
    np.testing.assert_array_equal(w, w_ref)


def test_constant_adam_is_the_study_s_transformation():
    f = lambda w: (jnp.sum(jnp.sin(w) ** 2), {})  # noqa: E731
    adam, tx = Adam(1e-3), optax.adam(1e-3, b1=0.9, b2=0.999, eps=1e-8)
    w, state = jnp.ones(4), adam.init(f, jnp.ones(4))
    w_ref, state_ref = jnp.ones(4), tx.init(jnp.ones(4))
    assert jax.tree.structure(state) == jax.tree.structure(state_ref)
    for _ in range(5):
        w, state, _ = adam.step(f, w, state)
        updates, state_ref = tx.update(jax.grad(lambda w: f(w)[0])(w_ref), state_ref, w_ref)
        w_ref = optax.apply_updates(w_ref, updates)
    np.testing.assert_array_equal(w, w_ref)
    for kwargs, field in (({"schedule": "step"}, "schedule"), ({"decay_steps": 0}, "decay_steps"),
                          ({"schedule": "warmup_cosine", "warmup_steps": 10, "decay_steps": 10}, "warmup_steps"),
                          ({"end_fraction": 2.0}, "end_fraction")):
        with pytest.raises(ValueError, match=field):
            Adam(1e-3, **kwargs)
