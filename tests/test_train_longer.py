"""Resume with larger budgets or more phases ("train longer", issue 20 item 7): the run
continues as a run given the new phases from the start would have gone, bit for bit; where
the old end is off the log grid, the records keep one extra log point there and nothing
else differs; what a resume cannot give is refused, naming the field."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jpinn
from jpinn import io
from jpinn.ensemble import train_ensemble
from jpinn.optim import LBFGS, NNCG, Adam
from jpinn.train import Phase, _reopened, _Solo, train

ROOT = Path(__file__).resolve().parent.parent


def _without_time(records):
    return [{k: v for k, v in r.items() if k != "time"} for r in records]


def _through_disk(checkpoint, folder, f, w0, phases):
    """The checkpoint as a resume reads it: written, then loaded back for ``phases``."""
    io.save_train_checkpoint(folder, checkpoint, {"seed": 0})
    return io.load_train_checkpoint(folder, f, w0, phases)[0]


def _bits(a):
    return np.asarray(a).tobytes()


@pytest.mark.parametrize("optimizer, old, new, log_every", [
    (lambda: Adam(1e-2), 60, 100, 20),   # the old end on the log grid
    (lambda: Adam(1e-2), 50, 100, 20),   # between two log points
    (lambda: Adam(1e-2), 7, 45, 20),     # shorter than one log interval: another chunk program before
    (lambda: LBFGS(), 100, 300, 40),     # budgeted in steps of 20 iterations, 5 -> 15 steps
])
def test_a_larger_budget_continues_as_if_given_from_the_start(tiny_problem, tmp_path, optimizer, old, new, log_every):
    _, _, _, f, w0 = tiny_problem(n_residual=100)
    saved = []
    first = train(f, w0, [Phase(optimizer(), old)], log_every=log_every, progress=False, checkpoint=saved.append)
    longer = [Phase(optimizer(), new)]
    fresh = train(f, w0, longer, log_every=log_every, progress=False)
    resumed = train(f, w0, longer, log_every=log_every, progress=False, records=first.records,
                    resume=_through_disk(saved[-1], tmp_path, f, w0, longer))

    assert _bits(resumed.w) == _bits(fresh.w)
    assert resumed.phases[0].loss == fresh.phases[0].loss and resumed.phases[0].stop_code == fresh.phases[0].stop_code
    for field in ("iterations", "steps", "evaluations", "iterations_budget"):
        assert getattr(resumed.phases[0], field) == getattr(fresh.phases[0], field), field
    assert _bits(resumed.states[0].memory.s if hasattr(resumed.states[0], "memory") else resumed.phase_w[0]) == \
        _bits(fresh.states[0].memory.s if hasattr(fresh.states[0], "memory") else fresh.phase_w[0])
    chunk = log_every // optimizer().iterations_per_step
    old_steps = first.phases[0].steps
    if old_steps % chunk == 0:  # on the grid: the very same records
        assert _without_time(resumed.records) == _without_time(fresh.records)
    else:  # one extra log point where the old run ended, the rest the same
        extra = [r for r in resumed.records if r["step"] == old_steps]
        assert len(extra) == 1 and not any(r["step"] == old_steps for r in fresh.records)
        assert _without_time([r for r in resumed.records if r["step"] != old_steps]) == _without_time(fresh.records)


@pytest.mark.slow
def test_a_phase_in_progress_grows_and_phases_are_appended(tiny_problem, tmp_path):
    """A checkpoint inside the L-BFGS phase (Ctrl-C, a kill): its budget grows, an NNCG
    phase follows that the first run did not have."""
    _, _, _, f, w0 = tiny_problem(n_residual=100)
    folders = []

    def save(checkpoint):  # at once: the driver donates the arrays of a checkpoint inside a phase
        if checkpoint.phase_index == 1 and checkpoint.state is not None:
            folders.append(tmp_path / f"ck{len(folders)}")
            io.save_train_checkpoint(folders[-1], checkpoint, {"seed": 0})

    first = train(f, w0, [Phase(Adam(1e-2), 40), Phase(LBFGS(), 200)], log_every=20, progress=False,
                  checkpoint=save, checkpoint_every=40)
    phases = [Phase(Adam(1e-2), 40), Phase(LBFGS(), 400), Phase(NNCG(rank=5, refresh=3, cg_max_iter=5), 4, log_every=1)]
    inside = io.load_train_checkpoint(folders[0], f, w0, phases)[0]
    fresh = train(f, w0, phases, log_every=20, progress=False)
    resumed = train(f, w0, phases, log_every=20, progress=False, records=first.records[: inside.n_records],
                    resume=inside)
    assert _bits(resumed.w) == _bits(fresh.w)
    assert _without_time(resumed.records) == _without_time(fresh.records)
    assert [p.iterations for p in resumed.phases] == [p.iterations for p in fresh.phases]
    assert [p.loss for p in resumed.phases] == [p.loss for p in fresh.phases]


def test_a_budget_below_what_ran_is_refused_by_the_driver(tiny_problem):
    _, _, _, f, w0 = tiny_problem(n_residual=100)
    saved = []
    train(f, w0, [Phase(Adam(1e-2), 60)], log_every=20, progress=False, checkpoint_every=40,
          checkpoint=lambda c: saved.append(dataclasses.replace(
              c, w=np.array(c.w), state=jax.tree_util.tree_map(np.array, c.state))))
    inside = [c for c in saved if c.state is not None][0]
    with pytest.raises(ValueError, match=r"resume: phase 0 \(adam\) has run 40 steps already, more than its budget of 30"):
        train(f, w0, [Phase(Adam(1e-2), 30)], log_every=20, progress=False, resume=inside)


def test_the_divergence_limit_of_a_reopened_phase(tiny_problem):
    """A checkpoint written before the finished phases' limits were kept: the limit is
    worked out again from where the phase started, to the bit of the one the run used."""
    _, _, _, f, w0 = tiny_problem(n_residual=100)
    phases = [Phase(Adam(1e-2), 30), Phase(Adam(3e-3), 30)]
    saved = []
    train(f, w0, phases, log_every=10, progress=False, checkpoint=saved.append, divergence=50.0)
    end = saved[-1]
    assert len(end.loss_limits) == 2 and all(np.isfinite(end.loss_limits))
    longer = [Phase(Adam(1e-2), 30), Phase(Adam(3e-3), 50)]
    kept = _reopened(_Solo(f, longer), w0, [end], 50.0)[0]
    again = _reopened(_Solo(f, longer), w0, [dataclasses.replace(end, loss_limits=[])], 50.0)[0]
    assert kept.loss_limit == again.loss_limit == end.loss_limits[1]
    assert (kept.phase_index, kept.steps, kept.total_iterations) == (1, 30, 30) and kept.state is not None
    assert np.isinf(_reopened(_Solo(f, longer), w0, [dataclasses.replace(end, loss_limits=[])], None)[0].loss_limit)
    # the first phase: from the initial parameters
    first = [c for c in saved if c.phase_index == 1 and c.state is None][0]
    limit = _reopened(_Solo(f, [Phase(Adam(1e-2), 40)]), w0, [dataclasses.replace(first, loss_limits=[])], 50.0)
    assert limit[0].loss_limit == first.loss_limits[0] == 50.0 * float(f(w0)[0])


def test_ensemble_members_that_stopped_keep_their_ends(x64):
    """Member 0 diverges in the first phase, member 1 runs to its budget: the ensemble,
    resumed with a larger budget (from the phase end and from inside it), equals the one
    given that budget from the start, member 0's report (loss at its stop) included."""
    def member(seed):
        pde = jpinn.pdes.make_pde("convection", beta=1.0)
        data = jpinn.sample_collocation(pde, n_x=17, n_t=11, n_residual=80, seed=seed, dtype=jnp.float64)
        model = jpinn.models.MLP(width=8, depth=2, key=jax.random.PRNGKey(seed), dtype=jnp.float64)
        return jpinn.build_loss(pde, model, data)

    (f0, w0), (f1, w1) = member(0), member(1)
    rates = [1e4, 1e-2]
    phases = lambda n: [[Phase(Adam(r), n)] for r in rates]  # noqa: E731
    kwargs = dict(log_every=5, progress=False, divergence=10.0)
    taken = [[], []]
    short = train_ensemble([f0, f1], [w0, w1], phases(20), checkpoints=[taken[0].append, taken[1].append],
                           checkpoint_every=10, **kwargs)
    assert short[0].phases[0].stop_reason.startswith("diverged") and short[1].phases[0].iterations == 20
    fresh = train_ensemble([f0, f1], [w0, w1], phases(35), **kwargs)
    for point in (len(taken[0]) - 2, len(taken[0]) - 1):  # inside the phase (member 0 stopped), its end
        resumes = [taken[0][point], taken[1][point]]
        assert (resumes[0].status if resumes[0].state is not None else resumes[0].reports[0].stop_code) != 0
        again = train_ensemble([f0, f1], [w0, w1], phases(35), resumes=resumes,
                               records=[short[k].records[: resumes[k].n_records] for k in range(2)], **kwargs)
        for a, b in zip(fresh, again):
            assert _bits(a.w) == _bits(b.w)
            assert _without_time(a.records) == _without_time(b.records)
            assert [dataclasses.replace(p, seconds=0, compile_seconds=0) for p in a.phases] == \
                [dataclasses.replace(p, seconds=0, compile_seconds=0) for p in b.phases]


# --------------------------------------------------------------------------- the command line

TINY = ["model.width=8", "model.depth=2", "data.n_x=33", "data.n_t=21", "data.n_residual=100", "log_every=20",
        "quiet=true", "plot=false"]


def _run(*args):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *TINY, *args],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def adam_run(tmp_path_factory):
    """A finished 50-iteration Adam run: its end is off the 20-iteration log grid."""
    folder = tmp_path_factory.mktemp("longer") / "adam"
    done = _run("optimizer=adam", "optimizer.iterations=50", f"hydra.run.dir={folder}")
    assert done.returncode == 0, done.stderr[-2000:]
    return folder


@pytest.mark.slow
def test_what_a_resume_cannot_give_is_refused_in_one_line(train_script, adam_run, tmp_path):
    lbfgs_after = tmp_path / "two"  # adam (50), then lbfgs (40): phase 1 is followed by a started phase
    done = _run("optimizer=adam_lbfgs", "optimizer.switch=50", "optimizer.iterations=90", f"hydra.run.dir={lbfgs_after}")
    assert done.returncode == 0, done.stderr[-2000:]
    two = ["optimizer=adam_lbfgs", f"resume={lbfgs_after}"]
    cases = [
        (["optimizer=adam", "optimizer.iterations=40", f"resume={adam_run}"], "must be at least 50 on resume, got 40"),
        (["optimizer=adam", "optimizer.iterations=100", "budget_scale=0.3", f"resume={adam_run}"],
         "must be at least 50 on resume, got 30 (budget_scale 0.3 included)"),
        (["optimizer=adam", "optimizer.iterations=100", "optimizer.learning_rate=1e-2", f"resume={adam_run}"],
         "optimizer.phases[0].learning_rate: saved 0.001, now 0.01"),
        (two + ["optimizer.switch=80", "optimizer.iterations=200"],
         "optimizer.switch=80: make optimizer.phases[0].iterations = ${optimizer.switch} which must be 50 on resume"),
        (["optimizer=adam", "optimizer.iterations=50", f"resume={lbfgs_after}"],
         "optimizer.phases: must hold at least 2 phases on resume, got 1"),
    ]
    for args, expected in cases:
        message = train_script.precheck(TINY + args)
        assert message is not None and "\n" not in message and expected in message, (args, message)
    # what may change: a longer phase in progress or last, phases not started yet
    assert train_script.precheck(TINY + two + ["optimizer.switch=50", "optimizer.iterations=200"]) is None
    assert train_script.precheck(TINY + ["optimizer=adam_lbfgs_nncg", "optimizer.switch=90", "optimizer.iterations=130",
                                         f"resume={adam_run}"]) is None


@pytest.mark.slow
def test_train_longer_on_the_command_line_equals_the_longer_run(adam_run, tmp_path):
    """The README's "train longer": resume=RUN with a larger budget and an L-BFGS phase
    appended ends with the parameters, test error and (but for the old end's log point)
    metrics of the run given all of it from the start."""
    longer = ["optimizer=adam_lbfgs", "optimizer.switch=100", "optimizer.iterations=200"]
    fresh = tmp_path / "fresh"
    done = _run(*longer, f"hydra.run.dir={fresh}")
    assert done.returncode == 0, done.stderr[-2000:]
    resumed = _run(*longer, f"resume={adam_run}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    said = [line for line in resumed.stderr.splitlines() if line.startswith("jpinn: resume:")]
    assert len(said) == 2 and "budget 50 iterations -> 100 iterations, reopened where it ended" in said[0]
    assert "not a multiple of its log interval" in said[0] and "phase 2 (lbfgs): appended, 100 iterations (5 steps)" in said[1]

    def params(folder):
        with np.load(folder / "checkpoint" / "params.npz") as archive:
            return archive["w"].tobytes()

    assert params(adam_run) == params(fresh)
    a, b = (json.loads((folder / "summary.json").read_text()) for folder in (adam_run, fresh))
    assert (a["loss"], a["l2re"], a["iterations"]) == (b["loss"], b["l2re"], b["iterations"])
    assert [p["iterations"] for p in a["phases"]] == [p["iterations"] for p in b["phases"]] == [100, 100]
    ra, rb = ([json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()] for folder in (adam_run, fresh))
    assert [r["iteration"] for r in ra if r["iteration"] != 50] == [r["iteration"] for r in rb]
    assert _without_time([r for r in ra if r["iteration"] != 50]) == _without_time(rb)
    config = json.loads((adam_run / "checkpoint" / "config.json").read_text())
    assert config["optimizer"]["name"] == "adam_lbfgs"  # the folder now describes the run it holds
