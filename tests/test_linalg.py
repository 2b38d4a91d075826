"""Hessian-vector products, randomized Nystrom and preconditioned CG against dense linear
algebra."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jpinn.linalg import hvp, hvp_block, linearize_hvp, nystrom, nystrom_inverse, pcg


def test_hvp_equals_dense_hessian_on_a_small_network(tiny_problem, x64):
    _, _, _, loss, w0 = tiny_problem("wave", width=4, n_residual=30, dtype=x64)
    scalar = lambda w: loss(w)[0]  # noqa: E731
    dense = np.asarray(jax.jit(jax.hessian(scalar))(w0))  # compiled: op by op it took 25 s
    rng = np.random.default_rng(0)
    v = jnp.asarray(rng.standard_normal(w0.shape[0]))
    np.testing.assert_allclose(np.asarray(jax.jit(hvp)(loss, w0, v)), dense @ np.asarray(v), rtol=1e-9, atol=1e-11)
    grad, hvp_fn = linearize_hvp(loss, w0)
    np.testing.assert_allclose(np.asarray(grad), np.asarray(jax.jit(jax.grad(scalar))(w0)), rtol=1e-12)
    block = jnp.asarray(rng.standard_normal((5, w0.shape[0])))
    np.testing.assert_allclose(np.asarray(hvp_block(hvp_fn, block)), np.asarray(block) @ dense, rtol=1e-9, atol=1e-11)


def _psd(n, rank, seed=0, decay=1.0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = np.zeros(n)
    lam[:rank] = np.logspace(3, 0, rank) ** decay
    return q @ np.diag(lam) @ q.T, q, lam


@pytest.mark.parametrize("shift", ["paper", "companion"])
def test_nystrom_is_exact_for_low_rank_psd(shift, x64):
    a, _, lam = _psd(40, 8)
    approx = nystrom(lambda v: v @ jnp.asarray(a), jax.random.PRNGKey(0), 40, 12, shift=shift, dtype=x64)
    # rank 8 under a sketch of 12: the core matrix is singular up to the shift. The paper's
    # shift (~1e-12 here) keeps Cholesky alive; the companion's float64 eps (2.2e-16) is
    # below the core's rounding and Cholesky fails, as it would in the companion code, so
    # the eigendecomposition fallback is taken: exact either way
    assert bool(approx.cholesky_failed) == (shift == "companion")
    tol = 1e-9 * np.abs(a).max() + 100 * float(approx.shift)
    reconstruction = np.asarray(approx.U) @ np.diag(np.asarray(approx.eigenvalues)) @ np.asarray(approx.U).T
    np.testing.assert_allclose(reconstruction, a, atol=tol)
    np.testing.assert_allclose(np.asarray(approx.eigenvalues)[:8], lam[:8], atol=tol)
    assert np.all(np.asarray(approx.eigenvalues) >= 0)


def test_nystrom_indefinite_takes_the_eigh_path_and_stays_valid(x64):
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    a = q @ np.diag(np.concatenate([np.logspace(2, 0, 10), -np.logspace(1, 0, 5), np.zeros(15)])) @ q.T
    approx = nystrom(lambda v: v @ jnp.asarray(a), jax.random.PRNGKey(2), 30, 20, dtype=x64)
    assert bool(approx.cholesky_failed)
    lam = np.asarray(approx.eigenvalues)
    assert np.all(np.isfinite(lam)) and np.all(lam >= 0)
    u = np.asarray(approx.U)
    np.testing.assert_allclose(u.T @ u, np.eye(20), atol=1e-10)
    # the preconditioner is symmetric positive definite
    p_inv = np.stack([np.asarray(nystrom_inverse(approx, 1e-2, jnp.asarray(e))) for e in np.eye(30)])
    np.testing.assert_allclose(p_inv, p_inv.T, atol=1e-10)
    assert np.linalg.eigvalsh(p_inv).min() > 0


def test_nystrom_inverse_matches_dense_formula(x64):
    a, _, _ = _psd(25, 25, seed=3)
    approx = nystrom(lambda v: v @ jnp.asarray(a), jax.random.PRNGKey(0), 25, 10, dtype=x64)
    u, lam, mu = np.asarray(approx.U), np.asarray(approx.eigenvalues), 0.1
    dense = (lam[-1] + mu) * u @ np.diag(1 / (lam + mu)) @ u.T + (np.eye(25) - u @ u.T)
    v = np.random.default_rng(4).standard_normal(25)
    np.testing.assert_allclose(np.asarray(nystrom_inverse(approx, mu, jnp.asarray(v))), dense @ v, rtol=1e-10)


def test_pcg_solves_spd_system_and_preconditioning_helps(x64):
    n = 200
    rng = np.random.default_rng(5)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    # a few large outlying eigenvalues over a well-conditioned bulk
    lam = np.concatenate([np.logspace(5, 3, 10), np.linspace(1.0, 2.0, n - 10)])
    a = q @ np.diag(lam) @ q.T
    b = rng.standard_normal(n)
    a_j, b_j = jnp.asarray(a), jnp.asarray(b)
    matvec = lambda v: a_j @ v  # noqa: E731
    plain = pcg(matvec, b_j, jnp.zeros(n), tol=1e-10, max_iter=2000)
    exact = np.linalg.solve(a, b)
    np.testing.assert_allclose(np.asarray(plain.x), exact, rtol=1e-7, atol=1e-9)
    approx = nystrom(lambda v: v @ a_j, jax.random.PRNGKey(0), n, 20, dtype=x64)
    pre = pcg(matvec, b_j, jnp.zeros(n), precondition=lambda v: nystrom_inverse(approx, 0.0, v), tol=1e-10, max_iter=2000)
    np.testing.assert_allclose(np.asarray(pre.x), exact, rtol=1e-7, atol=1e-9)
    assert float(pre.residual_norm) <= 1e-10 and not bool(pre.negative_curvature)
    assert int(pre.iterations) < 0.5 * int(plain.iterations), (int(pre.iterations), int(plain.iterations))
    # a warm start at the solution needs no iteration
    warm = pcg(matvec, b_j, jnp.asarray(exact), tol=1e-8, max_iter=10)
    assert int(warm.iterations) == 0


def test_pcg_flags_negative_curvature(x64):
    a = jnp.diag(jnp.array([2.0, 1.0, -1.0]))
    b = jnp.array([1.0, 1.0, 1.0])
    out = pcg(lambda v: a @ v, b, jnp.zeros(3), tol=1e-12, max_iter=10)
    assert bool(out.negative_curvature) and int(out.iterations) < 3
    assert np.all(np.isfinite(np.asarray(out.x)))
    # going on through it (the study's CG) still solves this nonsingular indefinite system
    # (CG on a 3 x 3 system with distinct eigenvalues ends in at most 3 iterations)
    through = pcg(lambda v: a @ v, b, jnp.zeros(3), tol=1e-12, max_iter=10, stop_on_negative_curvature=False)
    assert bool(through.negative_curvature)
    np.testing.assert_allclose(np.asarray(through.x), [0.5, 1.0, -1.0], rtol=1e-10)


def test_nystrom_memory_stays_linear_in_p():
    # the study's width-200 network has p = 81,201: the sketch must not allocate p x p
    # (jnp.linalg.norm(Y, 2) did: 25 GB of XLA temporaries on the CPU). Compile only.
    p, rank = 81_201, 60
    sketch = jax.jit(lambda key: nystrom(lambda v: 2.0 * v, key, p, rank))
    temp = sketch.lower(jax.random.PRNGKey(0)).compile().memory_analysis().temp_size_in_bytes
    assert temp < 50 * p * rank * 4, f"{temp / 2**20:.0f} MiB"


def test_nystrom_paper_shift_uses_the_spectral_norm(x64):
    # nu = sqrt(p) eps ||Y||_2 with Y = H Omega: for H = diag(d), ||Y||_2 <= max d, and
    # with rank = p, Omega is orthogonal so ||Y||_2 = max d exactly
    d = jnp.asarray([3.0, 1.0, 0.5, 7.0])
    approx = nystrom(lambda v: v * d, jax.random.PRNGKey(1), 4, 4, dtype=jnp.float64)
    expected = np.sqrt(4) * np.finfo(np.float64).eps * 7.0
    assert float(approx.shift) == pytest.approx(expected, rel=1e-10)
