"""Reproducing the study: sweep configs, aggregation into tables, figures, the notebook."""

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import jpinn
from jpinn import report
from jpinn.experiment import ConfigError, build_phases, ensemble_members, scale_budget, validate

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
SWEEPS = [e for e in EXPERIMENTS if e.startswith("table")]


# ---------------------------------------------------------------- synthetic run folders

def _phase(optimizer, budget, loss, l2re, steps=None):
    return {"name": optimizer, "optimizer": optimizer, "hyperparameters": {}, "iterations_budget": budget,
            "iterations": budget, "steps": steps or budget, "evaluations": budget, "seconds": budget / 1000,
            "compile_seconds": 1.0, "stop_code": 0, "stop_reason": "budget", "loss": loss, "l2re": l2re,
            "l1re": l2re}


def _fake_run(folder, *, pde="convection", optimizer="adam", width=50, lr=1e-3, seed=123, phases, wall=10.0):
    """A run folder with summary.json and checkpoint/config.json as execute() writes them."""
    folder.mkdir(parents=True)
    for phase in phases:
        if phase["optimizer"] == "adam":
            phase["hyperparameters"]["learning_rate"] = lr
    final = phases[-1]
    summary = {
        "pde": {"name": pde, "beta": 40.0} if pde == "convection" else {"name": pde, "rho": 5.0},
        "loss": final["loss"], "l2re": final["l2re"], "l1re": final["l1re"], "test_set": "full",
        "iterations": sum(p["iterations"] for p in phases), "seconds": sum(p["seconds"] for p in phases),
        "wall_seconds": wall, "phases": phases,
        "device": {"platform": "cpu", "device_kind": "cpu", "processor": "x86_64", "host": "test"},
        "versions": {"jax": "0"},
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "checkpoint").mkdir()
    config = {"seed": seed, "model": {"width": width}, "optimizer": {"name": optimizer}}
    (folder / "checkpoint" / "config.json").write_text(json.dumps(config))


@pytest.fixture
def synthetic(tmp_path):
    """A multirun folder with hand-chosen numbers (hand-computed tables in the tests)."""
    root = tmp_path / "multirun"
    n = iter(range(100))

    def add(**kw):
        _fake_run(root / f"{next(n)}_run", **kw)

    # convection, Adam: two learning rates x two seeds; one more run diverged
    for lr, seed, loss, err in [(1e-3, 1, 3e-3, 0.30), (1e-3, 2, 1e-3, 0.20),
                                (1e-2, 1, 5e-4, 0.15), (1e-2, 2, 2e-3, 0.25)]:
        add(optimizer="adam", lr=lr, seed=seed, phases=[_phase("adam", 100, loss, err)], wall=10.0 * seed)
    add(optimizer="adam", lr=1e-1, seed=1, phases=[_phase("adam", 100, float("nan"), float("nan"))])
    # convection, Adam+L-BFGS at two switch points (one method), one seed each
    add(optimizer="adam_lbfgs_1k", lr=1e-3, seed=1,
        phases=[_phase("adam", 10, 0.5, 1.0), _phase("lbfgs", 90, 4e-4, 0.05)])
    add(optimizer="adam_lbfgs_11k", lr=1e-3, seed=1,
        phases=[_phase("adam", 30, 0.4, 1.0), _phase("lbfgs", 70, 2e-4, 0.04)])
    # reaction, L-BFGS alone, three seeds
    for seed, loss, err in [(1, 1e-5, 0.01), (2, 4e-5, 0.03), (3, 2e-5, 0.02)]:
        add(pde="reaction", optimizer="lbfgs", lr=None, seed=seed, phases=[_phase("lbfgs", 100, loss, err)])
    # Table 2: NNCG lowers the Adam+L-BFGS loss 100x (seed 1) and 10x (seed 2); GD 1.25x
    for seed, end in [(1, 1e-5), (2, 1e-4)]:
        add(optimizer="adam_lbfgs_nncg", lr=1e-4, seed=seed, phases=[
            _phase("adam", 10, 0.5, 1.0), _phase("lbfgs", 90, 1e-3, 0.1), _phase("nncg", 5, end, 0.01, steps=5)])
    add(optimizer="adam_lbfgs_gd", lr=1e-4, seed=1, phases=[
        _phase("adam", 10, 0.5, 1.0), _phase("lbfgs", 90, 1e-3, 0.1), _phase("gd", 5, 8e-4, 0.1, steps=5)])
    # a run that did not finish: metrics only
    (root / "99_unfinished").mkdir()
    (root / "99_unfinished" / "metrics.jsonl").write_text("{}\n")
    return root


def test_aggregation_reproduces_hand_computed_tables(synthetic):
    collection = report.collect([synthetic])
    assert len(collection.runs) == 13 and len(collection.incomplete) == 1
    rows = {(r.pde, r.method): r for r in report.select(collection.runs)}
    adam = rows[("convection", "adam")].as_dict()
    # best: lr 1e-2 seed 1 (5e-4); its configuration's seeds: 5e-4 and 2e-3
    assert (adam["best_loss"], adam["best_l2re"], adam["learning_rate"], adam["seed"]) == (5e-4, 0.15, 1e-2, 1)
    assert (adam["runs"], adam["failed"], adam["n_seeds"]) == (5, 1, 2)
    assert adam["median_loss"] == pytest.approx(1.25e-3) and (adam["min_loss"], adam["max_loss"]) == (5e-4, 2e-3)
    assert adam["median_l2re"] == pytest.approx(0.20)
    assert adam["median_wall_seconds"] == pytest.approx(15.0)  # the seeds' 10 s and 20 s
    both = rows[("convection", "adam+lbfgs")].as_dict()
    assert (both["best_loss"], both["switch"], both["optimizer"], both["runs"]) == (2e-4, 30, "adam_lbfgs_11k", 2)
    lbfgs = rows[("reaction", "lbfgs")].as_dict()
    assert (lbfgs["best_loss"], lbfgs["median_loss"], lbfgs["n_seeds"], lbfgs["learning_rate"]) == (1e-5, 2e-5, 3, None)
    nncg = rows[("convection", "adam+lbfgs+nncg")].as_dict()
    assert (nncg["start_loss"], nncg["best_loss"]) == (1e-3, 1e-5)
    assert nncg["factor"] == pytest.approx(100.0) and nncg["median_factor"] == pytest.approx(55.0)
    assert (nncg["min_factor"], nncg["max_factor"]) == (pytest.approx(10.0), pytest.approx(100.0))
    gd = rows[("convection", "adam+lbfgs+gd")].as_dict()
    assert gd["factor"] == pytest.approx(1.25)

    table1, table2 = report.split_tables(list(rows.values()))
    assert {r.method for r in table1} == {"adam", "adam+lbfgs", "lbfgs"}
    assert {r.method for r in table2} == {"adam+lbfgs+nncg", "adam+lbfgs+gd"}
    text = report.table1_markdown(table1)
    assert "| Adam | 5.00e-04 / 1.50e-01 | - |" in text
    assert "*1.40e-04 / 5.96e-02*" in text  # the study's Adam convection cell beside it
    assert "1.00e-03 -> 1.00e-05 (100x) / 1.00e-02" in report.table2_markdown(table2)
    assert report.slug("wave (beta 5, c2 4)") == "wave-beta-5-c2-4"


def test_the_studys_numbers_stand_only_beside_its_own_problems(tmp_path):
    _fake_run(tmp_path / "beta35", optimizer="adam", phases=[_phase("adam", 100, 1e-3, 0.1)])
    summary = json.loads((tmp_path / "beta35" / "summary.json").read_text())
    summary["pde"]["beta"] = 35.0
    (tmp_path / "beta35" / "summary.json").write_text(json.dumps(summary))
    rows = report.select(report.collect([tmp_path]).runs)
    assert rows[0].problem == "convection (beta 35)"
    assert "*study*" not in report.table1_markdown(rows)


def test_aggregate_script_writes_tables_and_figures(synthetic, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "aggregate.py"), str(synthetic), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "## Table 1" in done.stdout and "## Table 2" in done.stdout and "99_unfinished" in done.stdout
    with open(out / "table1.csv") as handle:
        table1 = {(r["problem"], r["method"]): r for r in csv.DictReader(handle)}
    assert float(table1[("convection (beta 40)", "adam")]["best_loss"]) == 5e-4
    with open(out / "runs.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 13
    with open(out / "table2.csv") as handle:
        factors = {r["method"]: float(r["factor"]) for r in csv.DictReader(handle)}
    assert factors == {"adam+lbfgs+gd": pytest.approx(1.25), "adam+lbfgs+nncg": pytest.approx(100.0)}
    assert (out / "tables.md").read_text().startswith("# Tables of the study")


@pytest.mark.parametrize("folder", ["missing", "empty"])
def test_aggregate_refuses_a_folder_without_runs(tmp_path, folder):
    (tmp_path / "empty").mkdir()
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "aggregate.py"), str(tmp_path / folder)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aggregate.py: error:") and folder in lines[0]


def test_a_corrupt_summary_is_refused_with_its_path(synthetic):
    (synthetic / "0_run" / "summary.json").write_text("{not json")
    with pytest.raises(jpinn.io.RunFolderError, match="0_run"):
        report.collect([synthetic])


# ---------------------------------------------------------------- configs and sweeps

@pytest.mark.parametrize("experiment", [e for e in SWEEPS if e.endswith("_cpu")])
def test_cpu_sweeps_validate_every_job(train_script, experiment):
    assert train_script.precheck(["-m", f"experiment={experiment}"]) is None


@pytest.mark.parametrize("experiment", SWEEPS)
def test_sweep_experiments_expand_to_the_protocol(train_script, experiment):
    """Each table's sweep composes: its jobs are the protocol's grid, and the first and the
    last of them build (the paper profile's 1,200 jobs are all checked by precheck at launch)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    train_script.register_resolvers()
    with initialize_config_dir(config_dir=str(train_script.CONF_DIR), version_base="1.3"):
        line = [f"experiment={experiment}"]
        jobs = train_script._expand(train_script._sweeper_params(line) + line)
        # (jobs, ensemble members per job): the runs of a job that differ only in seed or
        # learning rate train together as one ensemble
        expected = {"table1_cpu": (48, 1), "table1_lbfgs_cpu": (6, 1), "table2_cpu": (12, 1),
                    "table1_paper": (48, 25), "table1_lbfgs_paper": (12, 5), "table2_paper": (6, 1)}[experiment]
        assert len(jobs) == expected[0]
        runs = set()
        section = OmegaConf.to_container(compose(config_name="config", overrides=jobs[0]).ensemble)
        per_job = ensemble_members(section) or [{}]
        assert len(per_job) == expected[1]
        for job in jobs:  # a run: the job's overrides and a member's values
            for values in per_job:
                runs.add((tuple(job), tuple(sorted(values.items()))))
        for job in (jobs[0], jobs[-1]):
            cfg = compose(config_name="config", overrides=job)
            members, _ = train_script.member_configs(cfg)
            members = members or [OmegaConf.to_container(cfg, resolve=True)]
            assert len(members) == expected[1]
            for config in members:
                validate(config)
                phases = build_phases(config["optimizer"], config["budget_scale"])
                assert sum(p.iterations for p in phases if p.optimizer.name in ("adam", "lbfgs")) == round(
                    41000 * config["budget_scale"])
                nncg = [p for p in phases if p.optimizer.name == "nncg"]
                assert all(p.optimizer.seed == config["seed"] for p in nncg)  # the sketch follows the member's seed
            if expected[1] > 1:  # the members differ in the ensemble's fields, as solo runs would
                assert len({(c["seed"], c["optimizer"]["phases"][0].get("learning_rate")) for c in members}) == expected[1]
        assert len(runs) == expected[0] * expected[1]  # every run of the protocol, once


def test_table2_paper_uses_the_studys_protocol_per_pde(train_script):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    train_script.register_resolvers()
    expected = {"convection": (345, 1e-4, 11000, 1e-2), "reaction": (456, 1e-3, 1000, 1e-2),
                "wave": (234, 1e-4, 1000, 1e-1)}
    with initialize_config_dir(config_dir=str(train_script.CONF_DIR), version_base="1.3"):
        for pde, (seed, lr, switch, mu) in expected.items():
            config = OmegaConf.to_container(compose(config_name="config", overrides=[
                "experiment=table2_paper", f"pde={pde}", "optimizer=adam_lbfgs_nncg"]), resolve=True)
            adam, lbfgs, nncg = build_phases(config["optimizer"], config["budget_scale"])
            assert (config["seed"], adam.optimizer.learning_rate, adam.iterations, nncg.optimizer.mu) == (seed, lr, switch, mu)
            assert (lbfgs.iterations, nncg.iterations, nncg.optimizer.cg_max_iter, config["model"]["width"]) == (
                41000 - switch, 2000, 1000, 200)


def test_budget_scale_multiplies_every_phase_and_is_validated():
    optimizer = {"phases": [{"name": "adam", "iterations": 1000}, {"name": "lbfgs", "iterations": 30000}]}
    assert [p.iterations for p in build_phases(optimizer, 0.25)] == [250, 7500]
    assert scale_budget(3, 0.5) == 2 and scale_budget(3, 1 / 3) == 1
    # a scale that leaves a phase less than one iteration is refused, naming the phase
    # (it used to run one iteration of every phase without a word)
    with pytest.raises(ConfigError, match=r"budget_scale: 1e-09 x 1000 iterations of optimizer.phases\[0\] \(adam\)"):
        build_phases(optimizer, 1e-9)
    for bad in (0, -1.0, float("nan"), float("inf"), True, "half"):
        with pytest.raises(ConfigError, match="budget_scale"):
            build_phases(optimizer, bad)


def test_a_bad_value_inside_an_experiment_sweep_is_caught_before_any_run(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "-m", "experiment=table1_lbfgs_cpu", "budget_scale=-1",
         f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 2 and "budget_scale" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "sweep").exists()


@pytest.mark.slow
def test_a_two_run_sweep_aggregates_into_a_table(tmp_path):
    """`-m` over two seeds of a tiny L-BFGS run, then scripts/aggregate.py on the folder."""
    sweep = tmp_path / "sweep"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "-m", "experiment=table1_lbfgs_cpu", "pde=reaction",
         "seed=1,2", "budget_scale=0.001", "model.width=8", "model.depth=2", "data.n_x=33", "data.n_t=21",
         "data.n_residual=100", "log_every=20", "plot=false", f"hydra.sweep.dir={sweep}"],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summaries = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/summary.json"))]
    assert len(summaries) == 2
    for summary in summaries:  # each phase reports the test error where it ended
        assert summary["phases"][-1]["l2re"] == pytest.approx(summary["l2re"])
        assert summary["phases"][0]["iterations_budget"] == 41 and math.isfinite(summary["loss"])
    out = tmp_path / "tables"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "aggregate.py"), str(sweep), "--out", str(out),
                           "--figures"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(out / "table1.csv") as handle:
        (row,) = list(csv.DictReader(handle))
    best = min(summaries, key=lambda s: s["loss"])
    assert row["method"] == "lbfgs" and row["runs"] == "2" and row["n_seeds"] == "2"
    assert float(row["best_loss"]) == pytest.approx(best["loss"], rel=1e-12)
    assert float(row["median_loss"]) == pytest.approx(np.median([s["loss"] for s in summaries]), rel=1e-12)
    assert {p.name for p in out.glob("*.png")} == {"curves-reaction-rho-5.png", "fields-reaction-rho-5.png", "error-vs-loss.png"}

    # scripts/plot.py: the same figures for chosen runs; a folder that is not a run is refused
    runs = [str(p.parent) for p in sorted(sweep.glob("*/summary.json"))]
    figures = tmp_path / "figures"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "plot.py"), *runs, "--out", str(figures),
                           "--labels", "seed 1", "seed 2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert {p.name for p in figures.glob("*.png")} == {"curves.png", "fields.png", "error-vs-loss.png"}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "plot.py"), str(tmp_path), "--out", str(figures)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.startswith("plot.py: error:") and len(done.stderr.splitlines()) == 1


# ---------------------------------------------------------------- the notebook

TINY_PARAMETERS = """
PDE, COEFFICIENTS = "convection", {"beta": 1.0}
WIDTH, DEPTH, N_RESIDUAL, SEED = 8, 2, 64, 0
ADAM_ITERATIONS, LBFGS_ITERATIONS = 30, 40
NNCG_STEPS, CG_MAX_ITER = 2, 5
PROBES, LANCZOS_STEPS = 1, 8
"""


@pytest.mark.slow
def test_the_quickstart_notebook_runs(monkeypatch, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    notebook = json.loads((ROOT / "notebooks" / "quickstart.ipynb").read_text())
    cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert "parameters" in cells[0]["metadata"].get("tags", [])
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for cell in [TINY_PARAMETERS] + ["".join(c["source"]) for c in cells[1:]]:
        exec(compile(cell, "quickstart.ipynb", "exec"), namespace)
    result, total = namespace["result"], namespace["total"]
    assert [p.name for p in result.phases] == ["adam", "lbfgs", "nncg"]
    assert result.phases[-1].loss < float(total)
    assert set(namespace["densities"]) == {"total", "residual"}
    assert np.isfinite(namespace["densities"]["total"].lambda_max)
    assert len(plt.get_fignums()) == 3  # curves, fields, density
    plt.close("all")
