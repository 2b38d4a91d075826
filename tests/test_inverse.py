"""Inverse problems: coefficients learned with the network (``loss.learn``). The flat
parameter vector carries them after the network's parameters; the loss is the problem's at
those values; a tiny Burgers run recovers nu; the command line reports and saves it."""

import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jpinn
from jpinn.references import burgers

ROOT = Path(__file__).resolve().parent.parent


def _setup(nu_start=0.1, nu_true=0.05, n=200, noise=0.0, width=16):
    problem = jpinn.problems.BurgersInverse(nu=nu_start, nu_true=nu_true, n_observations=n, noise=noise)
    data = jpinn.sample_points(problem, sampler="sobol", points={"residual": 1000}, seed=0)
    model = jpinn.models.MLP(width=width, depth=2, in_size=2, key=jax.random.PRNGKey(0))
    return problem, data, model


@pytest.mark.slow
def test_learned_coefficients_ride_after_the_network_parameters():
    problem, data, model = _setup()
    forward, w_model = jpinn.build_loss(problem, model, data)
    inverse, w0 = jpinn.build_loss(problem, model, data, learn=["nu"])
    assert w0.shape[0] == w_model.shape[0] + 1 and np.isclose(float(w0[-1]), np.log(0.1))
    assert float(inverse.coefficients(w0)["nu"]) == pytest.approx(0.1, rel=1e-6)
    # the loss at w0 is the forward problem's at nu = 0.1; moving the last entry moves nu only
    np.testing.assert_allclose(inverse(w0)[0], forward(w_model)[0], rtol=1e-6)
    other = jpinn.build_loss(jpinn.problems.BurgersInverse(nu=0.2, nu_true=0.05, n_observations=200, noise=0.0),
                             model, data)[0]
    np.testing.assert_allclose(inverse(w0.at[-1].set(np.log(0.2)))[0], other(w_model)[0], rtol=1e-6)
    # d loss / d log nu by the chain rule: nu * d loss / d nu (finite differences in nu)
    grad = jax.grad(lambda w: inverse(w)[0])(w0)[-1]
    h = 1e-3
    up = jpinn.build_loss(jpinn.problems.BurgersInverse(nu=0.1 + h, nu_true=0.05, n_observations=200, noise=0.0),
                          model, data)[0](w_model)[0]
    down = jpinn.build_loss(jpinn.problems.BurgersInverse(nu=0.1 - h, nu_true=0.05, n_observations=200, noise=0.0),
                            model, data)[0](w_model)[0]
    np.testing.assert_allclose(grad, 0.1 * (up - down) / (2 * h), rtol=2e-2)
    assert float(inverse.model(w0)(jnp.zeros(2))[0]) == float(forward.model(w_model)(jnp.zeros(2))[0])


def test_bad_learn_settings_are_refused_in_one_line():
    problem, data, model = _setup()
    for learn, match in ((["mu"], "not a learnable coefficient"), ("nu", "must be a list"), (["nu", "nu"], "repeat")):
        with pytest.raises(ValueError, match=match) as info:
            jpinn.build_loss(problem, model, data, learn=learn)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="none"):
        jpinn.build_loss(jpinn.problems.Burgers(), model, data, learn=["nu"])


def test_observations_are_the_cole_hopf_solution_plus_seeded_noise():
    problem = jpinn.problems.BurgersInverse(nu_true=0.05, n_observations=30, noise=0.0)
    points, values = problem.observed()
    nu = 0.05
    for (x, t), v in zip(points[:5], values[:5]):
        exact = burgers.cole_hopf(lambda y: -np.sin(np.pi * y), lambda y: (1 - np.cos(np.pi * y)) / (2 * np.pi * nu),
                                  [x], [t], nu)[0, 0]
        assert v == exact
    noisy = jpinn.problems.BurgersInverse(nu_true=0.05, n_observations=30, noise=0.1).observed()[1]
    assert 0.03 < np.std(noisy - values) < 0.3
    np.testing.assert_array_equal(noisy, jpinn.problems.BurgersInverse(nu_true=0.05, n_observations=30,
                                                                       noise=0.1).observed()[1])


@pytest.mark.slow
def test_a_tiny_run_recovers_nu():
    # nu = 0.05 (a smooth solution) from 0.1, 200 observations with noise 0.01
    problem, data, model = _setup(noise=0.01)
    f, w0 = jpinn.build_loss(problem, model, data, learn=["nu"])
    phases = [jpinn.Phase(jpinn.optim.Adam(1e-2), 1500), jpinn.Phase(jpinn.optim.LBFGS(), 1000)]
    result = jpinn.train(f, w0, phases, progress=False)
    nu = float(f.coefficients(result.w)["nu"])
    assert abs(nu - 0.05) / 0.05 < 0.05, nu  # measured: 0.0508 (1.6%)


@pytest.mark.slow
def test_the_command_line_reports_and_saves_the_learned_value(tmp_path):
    args = ["experiment=burgers_inverse", "pde.nu_true=0.05", "pde.nu=0.1", "optimizer.iterations=60", "model.depth=3",
            "optimizer.switch=50", "model.width=8", "data.points.residual=300", "data.test_points=500",
            "quiet=true", "plot=false", "log_every=10", f"hydra.run.dir={tmp_path}/run"]
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *args], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    learned = summary["learned"]["nu"]
    assert learned["initial"] == 0.1 and learned["true"] == 0.05 and len(learned["phase_ends"]) == 2
    assert learned["relative_error"] == pytest.approx(abs(learned["value"] - 0.05) / 0.05)
    assert f"learned nu = {learned['value']:.6g}" in out.stdout
    run = jpinn.load_run(tmp_path / "run")
    assert run.pde.nu == pytest.approx(learned["value"], rel=1e-6)
    assert summary["n_parameters"] == jpinn.models.n_parameters(8, 3) + 1
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "pde=burgers", "data=sampled",
                          "loss.learn=[mu]", f"hydra.run.dir={tmp_path}/bad"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600)
    assert bad.returncode == 2 and "loss.learn" in bad.stderr and not (tmp_path / "bad").exists()
