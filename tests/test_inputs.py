"""Bad input, tried systematically: every settable field with every kind of malformed value,
unknown groups and keys; and folders that are not runs, or hold a damaged one, given to
every command that reads a run folder."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# every value field of the default config and its groups, with the kinds of bad value to try
FIELDS = [
    "seed", "log_every", "checkpoint_every", "budget_scale", "quiet", "plot", "dtype", "derivatives",
    "model.width", "model.depth", "data.n_x", "data.n_t", "data.n_residual", "data.seed", "data.test_set",
    "loss.mse_factor", "loss.block_size", "pde.beta", "optimizer.learning_rate", "optimizer.iterations",
    "optimizer.b1", "optimizer.b2", "optimizer.eps",
]
BAD_VALUES = {
    "wrong type": ["abc", "'[1,2]'", "'{a: 1}'"],
    "empty": ["''"],
    "negative": ["-1"],
    "zero": ["0"],
    "nan": ["nan"],
    "inf": ["inf", "-inf"],
    "huge": ["1e300", "100000000000000000000"],
    "fraction": ["2.5"],
}
# values of those kinds that are legitimate for the field (with why), so not refused
VALID = {
    ("seed", "0"), ("data.seed", "0"),                       # seeds start at 0
    ("budget_scale", "2.5"), ("loss.mse_factor", "2.5"),     # any finite positive factor
    ("pde.beta", "-1"), ("pde.beta", "0"), ("pde.beta", "2.5"),  # u_t + beta u_x = 0 for any real beta
    ("optimizer.learning_rate", "2.5"), ("optimizer.eps", "2.5"),  # positive; divergence is a run-time fault
    ("optimizer.b1", "0"), ("optimizer.b2", "0"),            # Adam's betas lie in [0, 1)
}
STRUCTURAL = [
    (["pde=stokes"], "pde"), (["pde=heat"], "data.name"), (["model=cnn"], "model"), (["optimizer=sgd"], "optimizer"), (["data=sobol"], "data"),
    (["experiment=nope"], "experiment"), (["model.widht=3"], "model.widht"), (["+foo=1"], "foo"),
    (["+pde.gamma=1"], "pde.gamma"), (["+optimizer.momentum=0.9"], "momentum"), (["pde="], "pde"),
    (["model.width"], "model.width"), (["=3"], "no field name"), (["+optimizer.adam.momentum=0.9"], "momentum"), (["pde=wave", "pde.c2=0"], "pde.c2"),
    (["pde=wave", "pde.c2=-4"], "pde.c2"), (["pde=reaction", "pde.rho=nan"], "pde.rho"),
    (["pde=reaction", "pde.beta=1"], "pde.beta"), (["data.n_residual=25501"], "data.n_residual"),
    (["model.width=100000"], "model.width"), (["data.n_x=100000", "data.n_t=100000"], "data.n_x"),
    (["optimizer=lbfgs", "optimizer.history_size=0"], "history_size"),
    (["optimizer=nncg", "optimizer.rank=0"], "rank"), (["optimizer=nncg", "optimizer.mu=-1"], "mu"),
    (["optimizer=nncg", "optimizer.shift=none"], "shift"), (["budget_scale=1e12"], "budget_scale"),
    (["resume="], "resume"),
    (["pde=poisson", "data=sampled", "pde.dim=11"], "pde.dim"), (["pde=poisson", "data=sampled", "data.sampler=random"], "data.sampler"),
    (["pde=poisson", "data=sampled", "+data.points.edge=3"], "data.points.edge"),
    (["pde=poisson", "data=sampled", "+data.points.boundary=0"], "data.points.boundary"),
    (["pde=poisson", "data=sampled", "+loss.weights.edge=2"], "loss.weights.edge"),
    (["pde=custom", "pde._target_=no_such_module.Problem", "data=sampled"], "pde._target_"),
    (["pde=custom", "pde._target_=jpinn.optim.Adam", "data=sampled"], "pde._target_"),
    (["pde=poisson", "data=sampled", "+data.n_x=9"], "data.n_x"), (["pde=convection", "model.input_scaling=2"], "model.input_scaling"),
    # the classes of the issue "Failures a user meets": run folders, devices, budgets, derived fields
    (["hydra.run.dir="], "hydra.run.dir"), (["hydra.run.dir=/proc/jpinn-x"], "hydra.run.dir"),
    ([f"hydra.run.dir={ROOT / 'README.md'}/x"], "hydra.run.dir"), (["hydra.run.dir=outputs/d\u00e9j\u00e0"], "hydra.run.dir"),
    (["model.width=\u00e9"], "model.width"), (["devices=64"], "devices"), (["budget_scale=1e-9"], "budget_scale"),
    (["optimizer=adam_lbfgs", "optimizer.switch=5000", "optimizer.iterations=50"], "optimizer.switch=5000"),
    (["-m", "seed=1,2", "hydra.sweep.dir=/proc/jpinn-x"], "hydra.sweep.dir"),
]


def cases():
    for field in FIELDS:
        for kind, values in BAD_VALUES.items():
            for value in values:
                if (field, value) not in VALID:
                    yield [f"{field}={value}"], field.split(".")[-1]
    yield from STRUCTURAL


@pytest.mark.slow
def test_every_malformed_input_is_refused_in_one_line_naming_the_field(train_script):
    tried, refused, problems = 0, 0, []
    for overrides, field in cases():
        tried += 1
        message = train_script.precheck(overrides)
        if message is not None and "\n" not in message and field in message:
            refused += 1
        else:
            problems.append((overrides, message))
    assert not problems, problems
    assert tried == refused and tried > 250
    # the values held valid above do run through the check
    for field, value in VALID:
        assert train_script.precheck([f"{field}={value}"]) is None, (field, value)


@pytest.mark.parametrize("args", [
    ["model.width=abc"], ["budget_scale=inf"], ["pde.beta=1e300"], ["+optimizer.momentum=0.9"],
    ["-m", "seed=1,2", "model.depth=0"],
])
def test_malformed_input_exits_2_and_leaves_no_folder(tmp_path, args):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *args,
                           f"hydra.run.dir={tmp_path}/run", f"hydra.sweep.dir={tmp_path}/sweep"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("train.py: error:"), done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """Folders every run-reading command must refuse: empty, not a run, and a run whose
    files are torn (each of its files cut to half)."""
    root = tmp_path_factory.mktemp("folders")
    (root / "empty").mkdir()
    (root / "other").mkdir()
    (root / "other" / "notes.txt").write_text("not a run")
    run = root / "torn"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "optimizer=adam_lbfgs", "optimizer.iterations=60",
         "optimizer.switch=20", "model.width=8", "model.depth=2", "data.n_x=33", "data.n_t=21",
         "data.n_residual=50", "log_every=20", "quiet=true", "plot=false", f"hydra.run.dir={run}"],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    for path in [run / "summary.json", *sorted((run / "checkpoint").iterdir())]:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return root


COMMANDS = {
    "train.py": lambda folder: ["train.py", f"resume={folder}"],
    "spectrum.py": lambda folder: ["spectrum.py", str(folder), "--probes", "1", "--steps", "2"],
    "aggregate.py": lambda folder: ["aggregate.py", str(folder), "--out", str(folder.parent / "agg")],
    "plot.py": lambda folder: ["plot.py", str(folder), "--out", str(folder.parent / "fig")],
}


FOLDER_CASES = [(c, f) for c in sorted(COMMANDS) for f in ("empty", "torn")] + [
    (c, f) for c in ("aggregate.py", "train.py") for f in ("other", "missing")]


@pytest.mark.parametrize("command,folder", FOLDER_CASES)
@pytest.mark.slow
def test_every_command_refuses_a_folder_that_is_not_a_readable_run(damaged, command, folder):
    script, *args = COMMANDS[command](damaged / folder)
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, (done.returncode, done.stderr[-1500:])
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{script}: error:") and folder in lines[0], done.stderr
