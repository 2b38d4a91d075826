"""A problem defined in the user's own module, outside the package, driven through the
command line like a shipped one: train, resume, plot, aggregate, spectrum, load_run; and
small trainings that prove the problem layer (Poisson 5-D, a data-only fit)."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jpinn

ROOT = Path(__file__).resolve().parent.parent

MODULE = '''
"""A user's problem: steady 2-D diffusion-reaction -lap u + c u = f on [0, 1] x [0, 2],
u = 0 on x = 0 and x = 1, du/dn = g on y = 0 and y = 2; solution u = sin(pi x) cos(pi y / 2)."""
from typing import ClassVar

import jax.numpy as jnp

from jpinn.problems import AbstractProblem, Box, Face, conditions


class Reacting(AbstractProblem):
    c: float = 1.0
    name: ClassVar[str] = "reacting"

    def domain(self):
        return Box(("x", "y"), (0.0, 0.0), (1.0, 2.0))

    def exact(self, c):
        return jnp.sin(jnp.pi * c["x"]) * jnp.cos(jnp.pi * c["y"] / 2)

    def conditions(self):
        box = self.domain()
        forcing = lambda c: (jnp.pi**2 * 1.25 + self.c) * self.exact(c)
        flux = lambda c: jnp.where(c["y"] > 1, 1.0, -1.0) * (-jnp.pi / 2) * jnp.sin(jnp.pi * c["x"]) * jnp.sin(jnp.pi * c["y"] / 2)
        return (
            conditions.pde("residual", ("lap_u", "u"), lambda d, c: -d["lap_u"] + self.c * d["u"] - forcing(c)),
            conditions.dirichlet("walls", where=jpinn_faces("x")),
            conditions.neumann("ends", box, value=flux, where=jpinn_faces("y")),
        )


def jpinn_faces(coordinate):
    from jpinn.problems import Boundary
    return Boundary(((coordinate, "lower"), (coordinate, "upper")))
'''

TINY = ["pde=custom", "pde._target_=my_problems.Reacting", "+pde.c=2.0", "data=sampled",
        "+data.points.residual=200", "+data.points.walls=60", "+data.points.ends=60", "data.test_points=400",
        "model.width=8", "model.depth=2", "optimizer=adam_lbfgs", "optimizer.iterations=40", "optimizer.switch=20",
        "log_every=10", "quiet=true", "checkpoint_every=10"]


def _script(name, args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=900)


def test_exact_solution_of_the_user_problem_has_zero_loss(tmp_path, x64, monkeypatch):
    (tmp_path / "my_problems.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_problems

    problem = my_problems.Reacting(c=2.0)
    jpinn.problems.check_problem(problem)
    data = jpinn.sample_points(problem, seed=0, dtype=x64)
    exact = lambda p: jpinn.problems.exact_fields(problem, p[None])[0]  # noqa: E731
    for value in jpinn.loss_components(problem, exact, data).values():
        assert float(value) < 1e-25


@pytest.mark.slow
def test_user_problem_trains_resumes_plots_aggregates_and_analyses(tmp_path):
    (tmp_path / "my_problems.py").write_text(textwrap.dedent(MODULE))
    run = tmp_path / "run"
    out = _script("train.py", [*TINY, f"hydra.run.dir={run}"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["pde"]["_target_"] == "my_problems.Reacting" and summary["pde"]["c"] == 2.0
    assert summary["components"] == ["residual", "walls", "ends"] and summary["test_set"] == "grid"
    assert summary["data"] == {"residual": 200, "walls": 60, "ends": 60}
    assert np.isfinite(summary["l2re"]) and (run / "figures" / "solution.png").is_file()
    # resume: the finished run's config is accepted and the run ends where it was
    again = _script("train.py", [*TINY, f"hydra.run.dir={run}", f"resume={run}"], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = json.loads((run / "summary.json").read_text())
    assert resumed["loss"] == summary["loss"] and resumed["l2re"] == summary["l2re"]
    # plot, aggregate, spectrum read the folder (the module is imported again from the config)
    assert _script("plot.py", [str(run), "--out", str(tmp_path / "fig")], tmp_path).returncode == 0
    agg = _script("aggregate.py", [str(run), "--out", str(tmp_path / "agg"), "--no-study"], tmp_path)
    assert agg.returncode == 0, agg.stderr[-3000:]
    assert "reacting" in (tmp_path / "agg" / "tables.md").read_text()
    spec = _script("spectrum.py", [str(run), "--probes", "1", "--steps", "4", "--top", "2",
                                   "--analyses", "density", "top"], tmp_path)
    assert spec.returncode == 0, spec.stderr[-3000:]
    spectrum = json.loads(next((run / "spectrum").glob("*.json")).read_text()) if (run / "spectrum").is_dir() else None
    assert spectrum is None or set(spectrum["top"]) == {"total", "residual", "walls", "ends"}
    # load_run rebuilds the user's problem from the config, in a fresh process
    check = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import json, jpinn
        run = jpinn.load_run({str(run)!r})
        errors = jpinn.evaluate(run.model, run.pde, jpinn.data.reference_sets(run.pde, study_grid=False, n_test=400,
                                dtype=run.w.dtype)["grid"])
        print(json.dumps([type(run.pde).__name__, errors["l2re"]]))
    """)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert check.returncode == 0, check.stderr[-3000:]
    name, l2re = json.loads(check.stdout.splitlines()[-1])
    assert name == "Reacting" and l2re == pytest.approx(summary["l2re"], rel=1e-5)


@pytest.mark.slow
def test_bad_user_problem_configs_are_refused_in_one_line(tmp_path):
    (tmp_path / "my_problems.py").write_text(textwrap.dedent(MODULE))
    for extra, field in ((["+pde.d=1.0"], "pde.d"), (["pde.c=nan"], "pde.c"), (["+data.points.wall=5"], "data.points.wall"),
                         (["+loss.weights.residuals=2"], "loss.weights.residuals")):
        args = [a for a in TINY if a != "+pde.c=2.0"] + (["+pde.c=2.0"] if extra != ["pde.c=nan"] else ["+pde.c=nan"])
        args = [*args, *[e for e in extra if e != "pde.c=nan"], f"hydra.run.dir={tmp_path}/bad"]
        out = _script("train.py", args, tmp_path)
        lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
        assert out.returncode == 2 and len(lines) == 1 and field in lines[0], (extra, out.stderr[-2000:])
        assert not (tmp_path / "bad").exists()


def _fit(problem, points, iterations, width=16, seed=0, transform=None):
    box = problem.domain()
    data = jpinn.sample_points(problem, points=points, seed=seed)
    model = jpinn.models.MLP(width=width, depth=2, in_size=len(box.coordinates), out_size=len(problem.fields),
                             input_scaling=(box.lower, box.upper), key=jpinn.rng.key(seed, "model"))
    if transform is not None:
        model = jpinn.models.OutputTransform(model, transform)
    loss, w0 = jpinn.build_loss(problem, model, data)
    phases = [jpinn.Phase(jpinn.optim.Adam(1e-2), iterations[0]), jpinn.Phase(jpinn.optim.LBFGS(), iterations[1])]
    result = jpinn.train(loss, w0, phases, log_every=max(iterations), progress=False)
    reference = jpinn.data.reference_sets(problem, study_grid=False, n_test=4000)["grid"]
    return jpinn.evaluate(loss.model(result.w), problem, reference)


@pytest.mark.slow
def test_poisson_5d_trains_below_stated_error():
    # a 5-D Poisson problem at a tiny size: 300 residual points, width 16, input scaling, the
    # boundary condition imposed exactly by the output transform u = 4^5 prod x_i (1 - x_i) N(x),
    # 200 Adam + 100 L-BFGS steps. Stated bound 2e-2 (measured below); an untrained network
    # is at about 1, and the same budget with the boundary as a loss term stays near 0.25
    hard = lambda p, u: 4.0**5 * jnp.prod(p * (1 - p)) * u  # noqa: E731
    errors = _fit(jpinn.problems.Poisson(dim=5), {"residual": 300, "boundary": 10}, (200, 100), transform=hard)
    assert errors["l2re"] < 2e-2, errors


def test_observations_alone_recover_a_known_field():
    # a data-only fit: 200 observations of u = sin(pi x) y^2 (no PDE term), then the field is
    # recovered between the observations
    class Observed(jpinn.problems.AbstractProblem):
        name = "observed"

        def domain(self):
            return jpinn.problems.Box(("x", "y"), (0, 0), (1, 1))

        def exact(self, c):
            return jnp.sin(jnp.pi * c["x"]) * c["y"] ** 2

        def conditions(self):
            p = np.random.default_rng(1).random((200, 2))
            return (jpinn.problems.conditions.observations("data", p, np.sin(np.pi * p[:, 0]) * p[:, 1] ** 2),)

    errors = _fit(Observed(), {}, (300, 200))  # measured L2RE 2.0e-2 without input scaling
    assert errors["l2re"] < 5e-2, errors


@pytest.mark.slow
def test_reference_data_from_an_npz_file_and_non_finite_references(tmp_path, train_script):
    (tmp_path / "my_problems.py").write_text(textwrap.dedent(MODULE))
    x, y = np.linspace(0, 1, 21), np.linspace(0, 2, 41)
    u = np.sin(np.pi * x)[:, None] * np.cos(np.pi * y / 2)[None, :]
    np.savez(tmp_path / "grid.npz", x=x, y=y, u=u)
    bad = u.copy()
    bad[3, 4] = np.nan
    np.savez(tmp_path / "bad.npz", x=x, y=y, u=bad)
    run = tmp_path / "run"
    out = _script("train.py", [*TINY, f"data.reference={tmp_path / 'grid.npz'}", f"hydra.run.dir={run}"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test_set"] == "reference" and set(summary["errors"]) == {"grid", "reference"}
    # the same network on the same field: the grid and the file's reference agree closely
    assert summary["errors"]["reference"]["l2re"] == pytest.approx(summary["errors"]["grid"]["l2re"], rel=0.2)
    for path, message in ((tmp_path / "bad.npz", "not finite at 1 value"), (tmp_path / "none.npz", "data.reference")):
        out = _script("train.py", [*TINY, f"data.reference={path}", f"hydra.run.dir={tmp_path}/bad"], tmp_path)
        lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
        assert out.returncode == 2 and len(lines) == 1 and message in lines[0], out.stderr[-2000:]
        assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_an_ensemble_of_a_new_problem_equals_its_solo_runs(tmp_path):
    from jpinn.experiment import build, build_ensemble, execute, execute_ensemble

    def config(seed):
        return {"seed": seed, "pde": {"name": "heat", "kappa": 0.2, "boundary": "periodic"}, "quiet": True, "plot": False,
                "model": {"name": "mlp", "width": 6, "depth": 2, "input_scaling": True}, "log_every": 10,
                "data": {"name": "sampled", "sampler": "uniform", "points": {"residual": 64, "initial": 16, "boundary": 16},
                         "seed": seed, "test_points": 400},
                "optimizer": {"phases": [{"name": "adam", "iterations": 20, "learning_rate": 1e-2}]}}

    summaries = execute_ensemble(build_ensemble([config(1), config(2)], [{"seed": 1}, {"seed": 2}]), tmp_path / "ens")
    for k, seed in enumerate((1, 2)):
        solo = execute(build(config(seed)), tmp_path / f"solo{seed}")
        assert summaries[k]["loss"] == pytest.approx(solo["loss"], rel=1e-5)
        assert summaries[k]["l2re"] == pytest.approx(solo["l2re"], rel=1e-5)
