"""Ensembles (jpinn.ensemble): each member equals the same run trained alone.

Members differ in seed (initial network, collocation points, NNCG's sketch), a real-valued
optimizer setting and a PDE coefficient. Each optimizer is compared over a short phase in
float64: long runs of L-BFGS and NNCG amplify the rounding of batched instead of single
matrix products exponentially (the loss landscape's conditioning, not the ensemble), so a
short phase is where "equal to dtype tolerance" can be checked.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jpinn
from jpinn.ensemble import EnsembleError, stack_members, train_ensemble
from jpinn.optim import ARNCG, GD, LBFGS, NNCG, SSBFGS, Adam, GaussNewton
from jpinn.train import Phase, train

RTOL = 1e-9  # float64: a few hundred flops of rounding, amplified by a few steps


def _member(seed, beta=1.0, width=8, n_residual=120, dtype=jnp.float64):
    pde = jpinn.pdes.make_pde("convection", beta=beta)
    data = jpinn.sample_collocation(pde, n_x=17, n_t=11, n_residual=n_residual, seed=seed, dtype=dtype)
    model = jpinn.models.MLP(width=width, depth=2, key=jax.random.PRNGKey(seed), dtype=dtype)
    return jpinn.build_loss(pde, model, data)


def _compare(solo, members, w_rtol=RTOL, loss_rtol=RTOL, grad_rtol=1e-7):
    """``loss_rtol``, ``grad_rtol``: one tolerance each, or one per member."""
    rtols = loss_rtol if isinstance(loss_rtol, list) else [loss_rtol] * len(solo)
    grad_rtols = grad_rtol if isinstance(grad_rtol, list) else [grad_rtol] * len(solo)
    for k, (s, e, loss_rtol, grad_rtol) in enumerate(zip(solo, members, rtols, grad_rtols)):
        assert [p.iterations for p in e.phases] == [p.iterations for p in s.phases], k
        assert [p.evaluations for p in e.phases] == [p.evaluations for p in s.phases], k
        assert [p.stop_code for p in e.phases] == [p.stop_code for p in s.phases], k
        assert len(e.records) == len(s.records), k
        for a, b in zip(s.records, e.records):
            assert (a["phase_iteration"], a["step"], a["status"]) == (b["phase_iteration"], b["step"], b["status"])
            assert b["loss"] == pytest.approx(a["loss"], rel=loss_rtol, abs=1e-300), k
            assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=grad_rtol), k
        np.testing.assert_allclose(np.asarray(e.w), np.asarray(s.w), rtol=0, atol=w_rtol * float(jnp.max(jnp.abs(s.w))))


OPTIMIZERS = {
    "adam": (lambda k: Adam(learning_rate=[1e-2, 3e-3, 1e-3][k]), 25),
    "lbfgs": (lambda k: LBFGS(), 40),
    "nncg": (lambda k: NNCG(mu=[1e-3, 1e-1][k], rank=6, refresh=2, cg_max_iter=8, seed=k), 4),
    "gd": (lambda k: GD(), 6),
    "gauss_newton": (lambda k: GaussNewton(solver="cholesky", damping_init=[1e-3, 1e-2][k]), 4),
    "arncg": (lambda k: ARNCG(M_init=[1.0, 0.5][k], cg_max_iter=8), 4),
    "ssbfgs": (lambda k: SSBFGS(), 6),
}


# Adam's case in the default suite, every optimizer's under -m slow
@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n == "adam" else pytest.mark.slow) for n in OPTIMIZERS])
def test_members_equal_solo_runs(x64, name):
    make, iterations = OPTIMIZERS[name]
    # Adam and NNCG members differ in a setting and a coefficient too; L-BFGS and GD members
    # in seed only (points, network), so their solo runs share one compilation
    betas = [1.0, 2.0] if name in ("adam", "nncg") else [1.0, 1.0]
    members = [_member(seed=k, beta=betas[k]) for k in range(2)]
    # Adam first (but for Adam itself), so L-BFGS / NNCG / GD start where there is some curvature
    first = [] if name == "adam" else [Phase(Adam(1e-2), 10)]
    phases = [first + [Phase(make(k), iterations, log_every=2 if name == "nncg" else None)] for k in range(2)]
    solo = [train(f, w0, p, log_every=5, progress=False) for (f, w0), p in zip(members, phases)]
    ensemble = train_ensemble([f for f, _ in members], [w for _, w in members], phases, log_every=5, progress=False)
    if name != "nncg":
        _compare(solo, ensemble)
    else:
        # NNCG's sketch and truncated CG amplify rounding: the same solo run started from w0
        # perturbed by 1e-16 relative ends 4 steps later ~1e-9 to 1e-7 (loss) away from the
        # unperturbed one, depending on the member. Each member must stay within a small
        # multiple of its own spread.
        spreads, grad_spreads = [], []
        for k, ((f, w0), p) in enumerate(zip(members, phases)):
            noise = 1e-16 * jax.random.normal(jax.random.PRNGKey(5 + k), w0.shape, w0.dtype)
            nudged = train(f, w0 * (1 + noise), p, log_every=5, progress=False)
            pairs = list(zip(solo[k].records, nudged.records))
            spreads.append(max(abs(a["loss"] - b["loss"]) / a["loss"] for a, b in pairs))
            grad_spreads.append(max(abs(a["grad_norm"] - b["grad_norm"]) / a["grad_norm"] for a, b in pairs))
        assert all(spread > 0 for spread in spreads)
        _compare(solo, ensemble, w_rtol=1e-6, loss_rtol=[max(10 * s, RTOL) for s in spreads],
                 grad_rtol=[max(10 * s, 1e-7) for s in grad_spreads])
    if name == "lbfgs":  # the members' line searches did not all take the same path
        assert len({r.phases[-1].evaluations for r in solo}) > 1


@pytest.mark.slow
def test_members_whose_phases_end_at_different_steps(x64):
    """Member 0 diverges in phase 0, member 1 in phase 1 (Adam at a huge rate), member 2
    runs to the end: each stops while the others run on, each as it would alone."""
    members = [_member(seed=k) for k in range(3)]
    phases = [
        [Phase(Adam(1e4), 30), Phase(Adam(1e-3), 20)],
        [Phase(Adam(1e-2), 30), Phase(Adam(1e4), 20)],
        [Phase(Adam(3e-3), 30), Phase(Adam(1e-3), 20)],
    ]
    solo = [train(f, w0, p, log_every=5, progress=False, divergence=10.0) for (f, w0), p in zip(members, phases)]
    ensemble = train_ensemble([f for f, _ in members], [w for _, w in members], phases, log_every=5,
                              progress=False, divergence=10.0)
    assert solo[0].phases[0].stop_reason.startswith("diverged") and solo[0].phases[0].iterations < 30
    assert solo[1].phases[1].stop_reason.startswith("diverged") and solo[1].phases[1].iterations < 20
    assert [p.iterations for p in solo[2].phases] == [30, 20]
    _compare(solo, ensemble)


@pytest.mark.slow
def test_float32_members_equal_solo_runs_to_float32_tolerance():
    members = [_member(seed=k, dtype=jnp.float32) for k in range(4)]
    phases = [[Phase(Adam([1e-2, 1e-3, 3e-3, 1e-2][k]), 20)] for k in range(4)]
    solo = [train(f, w0, p, log_every=10, progress=False) for (f, w0), p in zip(members, phases)]
    ensemble = train_ensemble([f for f, _ in members], [w for _, w in members], phases, log_every=10, progress=False)
    for s, e in zip(solo, ensemble):
        np.testing.assert_allclose(np.asarray(e.w), np.asarray(s.w), atol=1e-5 * float(jnp.max(jnp.abs(s.w))))
        assert e.records[-1]["loss"] == pytest.approx(s.records[-1]["loss"], rel=1e-4)


def test_what_may_differ_and_what_may_not(x64):
    (f0, w0), (f1, w1) = _member(0), _member(1, beta=3.0)
    stacked = stack_members([(Adam(1e-2), f0), (Adam(1e-3), f1)], "x", jnp.float64)
    optimizer, loss = stacked.batched
    np.testing.assert_array_equal(np.asarray(optimizer.learning_rate), [1e-2, 1e-3])
    np.testing.assert_array_equal(np.asarray(loss.pde.beta), [1.0, 3.0])
    assert loss.data.residual_points.shape[0] == 2  # other seed, other points
    assert stacked.shared[0].b1 == 0.9 and stacked.batched[0].b1 is None  # equal: stays a Python float
    # an integer that shapes the program, another optimizer, another network, another budget
    with pytest.raises(EnsembleError, match=r"phase 0 \(lbfgs\)\.history_size \(10, 20\)"):
        train_ensemble([f0, f1], [w0, w1], [[Phase(LBFGS(history_size=10), 20)], [Phase(LBFGS(history_size=20), 20)]])
    with pytest.raises(EnsembleError, match="runs gd in member 1"):
        train_ensemble([f0, f1], [w0, w1], [[Phase(Adam(), 5)], [Phase(GD(), 5)]])
    f2, w2 = _member(2, width=9)
    with pytest.raises(EnsembleError, match="parameter vectors differ"):
        train_ensemble([f0, f2], [w0, w2], [[Phase(Adam(), 5)]] * 2)
    with pytest.raises(EnsembleError, match="iterations is 6 in member 1"):
        train_ensemble([f0, f1], [w0, w1], [[Phase(Adam(), 5)], [Phase(Adam(), 6)]])
    f3, w3 = _member(3, n_residual=100)
    with pytest.raises(EnsembleError, match="different shapes"):
        train_ensemble([f0, f3], [w0, w3], [[Phase(Adam(), 5)]] * 2)


@pytest.mark.slow
def test_an_ensemble_resumes_from_its_checkpoints_to_the_same_bits(x64):
    members = [_member(seed=k) for k in range(2)]
    phases = [[Phase(Adam([1e-2, 1e-3][k]), 12), Phase(NNCG(rank=4, refresh=2, cg_max_iter=4, seed=k), 4, log_every=1)]
              for k in range(2)]
    fs, ws = [f for f, _ in members], [w for _, w in members]
    taken = [[], []]
    full = train_ensemble(fs, ws, phases, log_every=3, progress=False, checkpoint_every=3,
                          checkpoints=[taken[0].append, taken[1].append])
    assert len(taken[0]) == len(taken[1]) >= 6
    for point in (2, len(taken[0]) - 3):  # mid-Adam and mid-NNCG
        resumes = [taken[0][point], taken[1][point]]
        records = [full[k].records[: resumes[k].n_records] for k in range(2)]
        again = train_ensemble(fs, ws, phases, log_every=3, progress=False, checkpoint_every=3,
                               checkpoints=[lambda c: None] * 2, resumes=resumes, records=records)
        for a, b in zip(full, again):
            np.testing.assert_array_equal(np.asarray(a.w), np.asarray(b.w))
            assert [r["loss"] for r in a.records] == [r["loss"] for r in b.records]
    assert math.isfinite(full[0].records[-1]["loss"])
