"""Where jpinn and the study's companion code differ (issue 15), each against an independent
reference: the companion shift's value per dtype, independent random streams, the companion
code's residual points (NumPy's own draw), a kept non-descent NNCG step (by hand), the
Cholesky fallback's consistent shift (dense eigenvalues)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jpinn
from jpinn import rng
from jpinn.linalg import nystrom, nystrom_inverse
from jpinn.optim import NNCG


# ----------------------------------------------------------------- 1. the companion shift

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_companion_shift_is_the_dtypes_machine_epsilon(dtype, x64):
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(20, 20)))
    a = jnp.asarray((q * np.logspace(2, 0, 20)) @ q.T, dtype)  # positive definite: the Cholesky path
    approx = nystrom(lambda v: v @ a, jax.random.PRNGKey(0), 20, 8, shift="companion", dtype=jnp.dtype(dtype))
    assert not bool(approx.cholesky_failed)
    # torch.finfo(Y.dtype).eps: 2**-23 in float32, 2**-52 in float64
    assert float(approx.shift) == {"float32": 2.0**-23, "float64": 2.0**-52}[dtype]


# ----------------------------------------------------------------- 2. independent streams

def test_named_streams_are_distinct_and_refuse_unknown_purposes():
    keys = {purpose: np.asarray(jax.random.key_data(rng.key(7, purpose))).tobytes() for purpose in rng.STREAMS}
    assert len(set(keys.values())) == len(keys)
    assert np.array_equal(np.asarray(jax.random.key_data(rng.key(7, "model"))),
                          np.asarray(jax.random.key_data(rng.key(7, "model"))))
    with pytest.raises(ValueError, match="purpose: unknown random stream 'optimiser'; allowed: model"):
        rng.key(7, "optimiser")


def _shared_draws(model, sketch_normals, rtol=1e-6):
    """How many of the model's initial weights, divided by their Xavier std, equal an entry
    of the sketch's Gaussian matrix (to rounding): draws the two consumers share."""
    values = np.sort(np.asarray(sketch_normals, np.float64).ravel())
    shared = 0
    for layer in model.layers:
        fan_out, fan_in = layer.weight.shape
        raw = np.asarray(layer.weight, np.float64).ravel() / np.sqrt(2.0 / (fan_in + fan_out))
        i = np.clip(np.searchsorted(values, raw), 1, values.size - 1)
        nearest = np.minimum(np.abs(values[i] - raw), np.abs(values[i - 1] - raw))
        shared += int(np.sum(nearest <= rtol * np.abs(raw)))
    return shared


def test_model_and_sketch_share_no_draws():
    seed, width, rank = 123, 8, 20
    config = {"seed": seed, "pde": {"name": "convection", "beta": 1.0}, "model": {"name": "mlp", "width": width, "depth": 2},
              "data": {"name": "study", "n_x": 17, "n_t": 11, "n_residual": 30},
              "optimizer": {"phases": [{"name": "nncg", "iterations": 1, "rank": rank, "seed": seed}]}}
    run = jpinn.experiment.build(config)
    model = run.loss.model(run.w0)
    p = run.w0.shape[0]
    state = run.phases[0].optimizer.init(run.loss, run.w0)
    _, sketch_key = jax.random.split(state.key)  # NNCG's first refresh draws from this split
    sketch = jax.random.normal(sketch_key, (p, rank), run.w0.dtype)
    assert _shared_draws(model, sketch) == 0
    # the detector finds the draws the two shared before issue 15 (both from PRNGKey(seed)):
    # the first hidden-to-hidden weights were the sketch's first normals, entry for entry
    old_model = jpinn.models.MLP(width=width, depth=2, key=jax.random.PRNGKey(seed))
    _, old_sketch_key = jax.random.split(jax.random.PRNGKey(seed))
    assert _shared_draws(old_model, jax.random.normal(old_sketch_key, (p, rank))) >= width * width


def test_a_run_repeats_exactly_from_its_seed():
    config = {"seed": 5, "log_every": 5, "pde": {"name": "reaction", "rho": 2.0},
              "model": {"name": "mlp", "width": 6, "depth": 2},
              "data": {"name": "study", "n_x": 17, "n_t": 11, "n_residual": 40},
              "optimizer": {"phases": [{"name": "adam", "iterations": 10},
                                       {"name": "nncg", "iterations": 3, "rank": 5, "seed": 5}]}}
    runs = []
    for _ in range(2):  # (the second run reuses the first one's compiled chunk)
        run = jpinn.experiment.build(config)
        result = jpinn.train(run.loss, run.w0, run.phases[:1], log_every=5, progress=False)
        nncg = run.phases[1].optimizer
        sketch_keys = jax.random.split(nncg.init(run.loss, run.w0).key, 3)  # the keys of its first refreshes
        runs.append((run.data.residual_points, run.w0, result.w, jax.random.key_data(sketch_keys)))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    other = jpinn.experiment.build({**config, "seed": 6,
                                    "optimizer": {"phases": [{"name": "nncg", "iterations": 1, "seed": 6}]}})
    assert not np.array_equal(np.asarray(other.w0), np.asarray(runs[0][1]))
    assert not np.array_equal(np.asarray(other.data.residual_points), np.asarray(runs[0][0]))
    other_keys = jax.random.split(other.phases[0].optimizer.init(other.loss, other.w0).key, 3)
    assert not np.array_equal(np.asarray(jax.random.key_data(other_keys)), np.asarray(runs[0][3]))


# ----------------------------------------------------------------- 5. the companion code's points

@pytest.mark.parametrize("seed", [123, 456])
def test_numpy_draw_is_the_companion_codes_residual_points(seed):
    pde = jpinn.pdes.make_pde("convection")
    data = jpinn.sample_collocation(pde, seed=seed, rng="numpy")
    # the companion code: set_random_seed(seed), then get_data's np.random.choice on its mesh
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        index = np.random.choice(25500, 10000, replace=False)
    finally:
        np.random.set_state(state)
    x = np.linspace(0, 2 * np.pi, 257).reshape(-1, 1)
    t = np.linspace(0, 1, 101).reshape(-1, 1)
    x_mesh, t_mesh = np.meshgrid(x[1:-1], t[1:])
    mesh = np.hstack((x_mesh.flatten()[:, None], t_mesh.flatten()[:, None]))
    np.testing.assert_array_equal(np.asarray(data.residual_points), mesh[index].astype(np.float32))
    # jpinn's own draw is another set of points (and NumPy's global state is left alone)
    assert not np.array_equal(np.asarray(jpinn.sample_collocation(pde, seed=seed).residual_points),
                              np.asarray(data.residual_points))


def test_data_rng_from_the_config_and_bad_values():
    base = {"seed": 3, "pde": {"name": "convection"}, "model": {"name": "mlp", "width": 4, "depth": 1},
            "data": {"name": "study", "n_residual": 50, "rng": "numpy"},
            "optimizer": {"phases": [{"name": "adam", "iterations": 1}]}}
    run = jpinn.experiment.build(base)
    expected = jpinn.sample_collocation(run.pde, n_residual=50, seed=3, rng="numpy")
    np.testing.assert_array_equal(np.asarray(run.data.residual_points), np.asarray(expected.residual_points))
    assert jpinn.experiment.build({**base, "data": {"name": "study", "n_residual": 50}}).config["data"]["rng"] == "jax"
    with pytest.raises(jpinn.ConfigError, match=r"^data.rng: unknown draw 'torch'; allowed: jax, numpy$"):
        jpinn.experiment.validate({**base, "data": {"name": "study", "rng": "torch"}})
    with pytest.raises(ValueError, match="data.rng"):
        jpinn.sample_collocation(run.pde, rng="python")


# ----------------------------------------------------------------- 6. non-descent directions

def _indefinite_loss(dtype, c=1.0):
    # f(w) = 1/2 w^T A w - b^T w - c sum(w^4), weak negative curvature near w = 0: one CG
    # iteration from 0 goes along z0 = P^-1 g with z0^T (H + mu I) z0 < 0, so d = alpha0 z0
    # has g^T d < 0 and is long (|d| ~ |g| / |curvature|); the quartic then lets Armijo
    # accept a step along it
    a = np.diag([-0.1, -0.1, -0.1, -0.1])
    b = np.array([1.0, -1.0, 0.5, 0.2])

    f_np = lambda w: 0.5 * w @ a @ w - b @ w - c * np.sum(w**4)  # noqa: E731
    grad = lambda w: a @ w - b - 4 * c * w**3  # noqa: E731
    hessian = lambda w: a - 12 * c * np.diag(w**2)  # noqa: E731
    aj, bj = jnp.asarray(a, dtype), jnp.asarray(b, dtype)
    return (lambda w: (0.5 * w @ aj @ w - bj @ w - c * jnp.sum(w**4), {})), f_np, grad, hessian


def _hand_armijo(f, w, d, gtd, alpha=0.1, factor=0.5, cap=30):
    t, f0 = 1.0, f(w)
    for _ in range(cap + 1):
        if f(w - t * d) <= f0 - alpha * t * gtd:
            return t
        t *= factor
    return 0.0


@pytest.mark.parametrize("nondescent", ["keep", "fallback"])
def test_nondescent_keep_and_fallback_against_a_hand_computed_step(nondescent, x64):
    f, fn, grad, hessian = _indefinite_loss(x64)
    w0 = np.array([0.1, -0.1, 0.05, 0.1])
    opt = NNCG(mu=1e-2, rank=4, cg_max_iter=1, nondescent=nondescent)
    w_new, state, info = eqx.filter_jit(opt.step)(f, jnp.asarray(w0, x64), opt.init(f, jnp.asarray(w0, x64)))
    assert bool(info["nondescent"])
    # by hand, from the preconditioner the step built (U, Lambda) and the formulas of
    # PAPER.md section 3: z0 = P^-1 g, one CG step d = (g^T z0 / z0^T (H + mu I) z0) z0
    g, h, mu = grad(w0), hessian(w0), 1e-2
    u, lam = np.asarray(state.preconditioner.U), np.asarray(state.preconditioner.eigenvalues)
    p_inv = (lam[-1] + mu) * u @ np.diag(1 / (lam + mu)) @ u.T + (np.eye(4) - u @ u.T)
    z0 = p_inv @ g
    d = (g @ z0) / (z0 @ (h + mu * np.eye(4)) @ z0) * z0
    assert g @ d < 0  # not a descent direction
    if nondescent == "fallback":
        d = z0
    t = _hand_armijo(fn, w0, d, g @ d)
    assert t > 0 and float(info["step_size"]) == t
    np.testing.assert_allclose(np.asarray(w_new), w0 - t * d, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(state.direction), d, rtol=1e-12)  # the next warm start
    assert bool(info["fallback"]) == (nondescent == "fallback")
    if nondescent == "keep":  # the step goes where the companion code's would, against g
        assert g @ (np.asarray(w_new) - w0) > 0


def test_nondescent_option_is_checked():
    with pytest.raises(ValueError, match="nondescent: unknown 'ignore'; allowed: fallback, keep"):
        NNCG(nondescent="ignore")


# ----------------------------------------------------------------- the Cholesky fallback

def fallback_case():
    """An indefinite 60 x 60 matrix with top eigenvalue 1e4, a sketch of 12, its PRNG key."""
    rng_ = np.random.default_rng(3)
    p = 60
    q, _ = np.linalg.qr(rng_.normal(size=(p, p)))
    spectrum = np.concatenate([[1e4, 3e3, 1e3], rng_.uniform(-50, 50, p - 3)])
    return (q * spectrum) @ q.T, 12, jax.random.PRNGKey(4)


def companion_fallback_top(h, s, key):
    """The largest Nystrom eigenvalue by the companion code's fallback (NumPy, PAPER.md's
    formulas): the core Omega^T Y_nu shifted by its most negative eigenvalue, Y_nu not."""
    omega, _ = np.linalg.qr(np.asarray(jax.random.normal(key, (h.shape[0], s), jnp.float64)))
    nu = np.finfo(np.float64).eps
    y_nu = h @ omega + nu * omega
    core = omega.T @ y_nu
    eigs, vectors = np.linalg.eigh(0.5 * (core + core.T))
    shift = nu + abs(eigs.min())
    # B = Y_nu C^-T for C C^T = the shifted core, whose eigenvalues are eigs - eigs.min() + nu.
    # B's singular values are the same for every factor C (another is C Q, Q orthogonal), so
    # C is taken from the eigendecomposition with the smallest eigenvalue exactly nu: formed
    # as eigs + shift, or as a matrix for Cholesky, nu = eps is lost next to |eigs.min()|
    # (about 24) and the factorisation succeeds or fails with the host's rounding
    factor = vectors * np.sqrt((eigs - eigs.min()) + nu)
    b = np.linalg.solve(factor, y_nu.T)
    return float(np.max(np.linalg.svd(b, compute_uv=False) ** 2 - shift))


def test_consistent_shift_of_the_fallback_against_the_companion_codes(x64):
    # the core matrix Omega^T H Omega is indefinite, Cholesky fails, and both codes shift it
    # by its most negative eigenvalue. jpinn shifts Y by the same amount (so the sketch stays
    # consistent with the shifted core); the companion code shifts the core only, and its
    # B = Y_nu C^-T then carries a spurious large singular value.
    h, s, key = fallback_case()
    approx = nystrom(lambda v: v @ jnp.asarray(h), key, h.shape[0], s, shift="companion", dtype=x64)
    assert bool(approx.cholesky_failed)
    jpinn_top = float(np.max(np.asarray(approx.eigenvalues)))
    assert jpinn_top <= 1e4 * (1 + 1e-6)  # not above the true top eigenvalue
    assert companion_fallback_top(h, s, key) > 10 * 1e4
    # and jpinn's preconditioner stays symmetric positive definite
    p_inv = np.stack([np.asarray(nystrom_inverse(approx, 1e-2, jnp.asarray(e))) for e in np.eye(h.shape[0])])
    assert np.linalg.eigvalsh(0.5 * (p_inv + p_inv.T)).min() > 0
