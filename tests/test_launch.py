"""Ensembles and launchers on the command line: `ensemble.seeds` / `ensemble.params` write
one run folder per member, each equal to the same run trained alone; bad ensemble input
is refused in one line before any folder; `launcher=local` runs a two-job sweep in two
parallel processes with JAX's GPU-sharing settings."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT

from jpinn import report
from jpinn.experiment import build, execute

TINY = ["model.width=8", "model.depth=2", "data.n_x=33", "data.n_t=21", "data.n_residual=120",
        "log_every=10", "quiet=true", "plot=false"]


def _train(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_an_ensemble_writes_one_run_folder_per_member_each_equal_to_its_solo_run(tmp_path, x64):
    out = tmp_path / "ensemble"
    done = _train(*TINY, "dtype=float64", "optimizer=adam", "optimizer.iterations=40",
                  "ensemble.seeds=[3,4]", "+ensemble.params.optimizer.learning_rate=[1e-3,1e-2]",
                  f"hydra.run.dir={out}")
    assert done.returncode == 0, done.stderr
    listing = json.loads((out / "ensemble.json").read_text())
    assert listing["size"] == 4
    assert [m["overrides"] for m in listing["members"]] == [
        {"seed": s, "optimizer.learning_rate": lr} for s in (3, 4) for lr in (1e-3, 1e-2)
    ]
    runs = report.collect([out]).runs
    assert sorted((r.seed, r.learning_rate) for r in runs) == [(3, 1e-3), (3, 1e-2), (4, 1e-3), (4, 1e-2)]
    member = json.loads((out / "member-003" / "summary.json").read_text())
    assert member["ensemble"] == {"size": 4, "index": 3, "overrides": {"seed": 4, "optimizer.learning_rate": 1e-2}}
    config = member["config"]  # a solo run's config: seed 4 everywhere, Adam at 1e-2, no ensemble
    assert config["seed"] == 4 and config["ensemble"] == {"seeds": None, "params": {}}
    assert config["optimizer"]["phases"][0]["learning_rate"] == 1e-2
    solo = execute(build(config), tmp_path / "solo", progress=False)
    assert member["iterations"] == solo["iterations"]
    assert member["loss"] == pytest.approx(solo["loss"], rel=1e-8)
    assert member["l2re"] == pytest.approx(solo["l2re"], rel=1e-6)


@pytest.mark.parametrize("overrides,field", [
    (["ensemble.seeds=[1,2]", "seed=5"], "seed"),
    (["+ensemble.params.model.width=[8,16]"], "ensemble.params.model.width"),
    (["+ensemble.params.optimizer.nope=[1,2]"], "ensemble.params.optimizer.nope"),
    (["optimizer=adam_lbfgs", "+ensemble.params.optimizer.lbfgs.history_size=[10,20]"], "ensemble: members differ in"),
    (["+ensemble.params.optimizer.learning_rate=[a,b]"], "ensemble.params.optimizer.learning_rate[0]"),
    (["ensemble.seeds=[]"], "ensemble.seeds"),
    (["ensemble.seeds=[-1]"], "ensemble.seeds[0]"),
    (["+ensemble.params.optimizer.learning_rate=[1e-3,0]"], "ensemble member 1 (optimizer.learning_rate=0): optimizer.phases[0].learning_rate"),
    (["ensemble.seeds=[1,2]", "resume=somewhere"], "resume"),
])
def test_bad_ensembles_are_refused_in_one_line(train_script, overrides, field):
    message = train_script.precheck(TINY + overrides)
    assert message is not None and "\n" not in message
    assert message.startswith(field), message


def test_bad_ensemble_exits_2_before_any_folder(tmp_path):
    done = _train(*TINY, "+ensemble.params.model.width=[8,16]", f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 2 and done.stderr.startswith("train.py: error: ensemble.params.model.width")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_local_launcher_runs_a_two_job_sweep_in_parallel_processes(tmp_path):
    done = _train("-m", "launcher=local", "seed=1,2", "optimizer.iterations=20", *TINY,
                  f"hydra.sweep.dir={tmp_path}")
    assert done.returncode == 0, done.stderr
    assert "Joblib.Parallel(n_jobs=2" in done.stdout + done.stderr
    summaries = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/summary.json"))]
    assert [s["seed"] for s in summaries] == [1, 2]
    devices = [s["device"] for s in summaries]
    assert devices[0]["pid"] != devices[1]["pid"]  # two worker processes
    for device in devices:  # the launcher's GPU-sharing settings reached each job
        assert device["xla_env"]["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
        assert device["xla_env"]["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.45"


@pytest.mark.slow
def test_an_ensemble_killed_between_its_members_checkpoints_resumes_to_the_same_bits(tmp_path, monkeypatch):
    """The members' checkpoints are written one after another: a crash after member 0 wrote
    snapshot 4 and before member 1 did leaves them at 4 and 3; the resumed ensemble goes on
    from 3 (which member 0 still holds as train.prev.npz) and ends with the bits and records
    of an ensemble never interrupted."""
    import numpy as np

    from jpinn import io
    from jpinn.experiment import build_ensemble, execute_ensemble

    def configs(resume=None):
        base = {
            "seed": 0, "pde": {"name": "convection", "beta": 2.0}, "model": {"name": "mlp", "width": 8, "depth": 2},
            "data": {"n_x": 33, "n_t": 21, "n_residual": 120}, "log_every": 5, "checkpoint_every": 10,
            "quiet": True, "plot": False, "resume": resume,
            "optimizer": {"phases": [{"name": "adam", "iterations": 30, "learning_rate": 1e-2},
                                     {"name": "gd", "iterations": 6, "log_every": 2}]},
        }
        return [{**base, "seed": seed} for seed in (1, 2)]

    execute_ensemble(build_ensemble(configs(), [{"seed": 1}, {"seed": 2}]), tmp_path / "whole", progress=False)
    real, calls = io.save_train_checkpoint, []

    def crash_on_the_seventh(*args, **kwargs):
        calls.append(kwargs.get("snapshot"))
        real(*args, **kwargs)
        if len(calls) == 7:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(io, "save_train_checkpoint", crash_on_the_seventh)
    with pytest.raises(KeyboardInterrupt):
        execute_ensemble(build_ensemble(configs(), [{"seed": 1}, {"seed": 2}]), tmp_path / "cut", progress=False)
    monkeypatch.setattr(io, "save_train_checkpoint", real)
    cut = [tmp_path / "cut" / f"member-00{k}" for k in range(2)]
    assert [io.read_train_meta(f)["snapshot"] for f in cut] == [4, 3]
    assert io.common_snapshot(cut) == {str(cut[0]): io.PREVIOUS_TRAIN_FILE, str(cut[1]): io.TRAIN_FILE}

    execute_ensemble(build_ensemble(configs(resume=str(tmp_path / "cut")), [{"seed": 1}, {"seed": 2}]),
                     tmp_path / "cut", progress=False)
    for k in range(2):
        whole, again = (np.load(tmp_path / d / f"member-00{k}" / "checkpoint" / "params.npz") for d in ("whole", "cut"))
        np.testing.assert_array_equal(whole["w"], again["w"])
        lines = [[json.loads(line) for line in (tmp_path / d / f"member-00{k}" / "metrics.jsonl").read_text().splitlines()]
                 for d in ("whole", "cut")]
        assert [(r["iteration"], r["loss"]) for r in lines[0]] == [(r["iteration"], r["loss"]) for r in lines[1]]
