"""Checkpoint and resume: a run continued from any of its checkpoints ends with the same bits
as an uninterrupted one, for every optimizer (mid-NNCG included); a process killed at random
moments always leaves a loadable checkpoint and resumes to the same end."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import jpinn
from jpinn import io
from jpinn.experiment import ConfigError, check_resume, config_difference
from jpinn.optim import GD, LBFGS, NNCG, Adam
from jpinn.train import train

ROOT = Path(__file__).resolve().parent.parent


def _without_time(records):
    return [{k: v for k, v in r.items() if k != "time"} for r in records]


@pytest.mark.slow
def test_resuming_from_every_checkpoint_gives_the_uninterrupted_bits(tiny_problem, tmp_path):
    """Adam -> L-BFGS -> NNCG -> GD with a checkpoint every 3 iterations: the initial one,
    mid-phase ones in all four phases (mid-NNCG: preconditioner, warm start, PRNG key), and
    one at each phase end; each is saved to disk, read back and resumed."""
    _, _, _, f, w0 = tiny_problem(n_residual=100)
    phases = [
        jpinn.Phase(Adam(1e-2), 40), jpinn.Phase(LBFGS(), 60),
        jpinn.Phase(NNCG(rank=5, refresh=3, cg_max_iter=5), 7, log_every=1), jpinn.Phase(GD(), 4, log_every=1),
    ]
    folders = []

    def save(checkpoint):
        folder = tmp_path / f"ck{len(folders)}"
        io.save_train_checkpoint(folder, checkpoint, {"seed": 0})
        folders.append(folder)

    full = train(f, w0, phases, log_every=20, progress=False, checkpoint=save, checkpoint_every=3)
    plain = train(f, w0, phases, log_every=20, progress=False)
    assert np.array_equal(np.asarray(full.w), np.asarray(plain.w))  # checkpointing changes nothing
    seen = set()
    for folder in folders:
        checkpoint, meta = io.load_train_checkpoint(folder, f, w0, phases)
        seen.add((meta["phase_index"], meta["has_state"]))
        resumed = train(f, w0, phases, log_every=20, progress=False, resume=checkpoint,
                        records=full.records[: checkpoint.n_records])
        assert np.array_equal(np.asarray(resumed.w), np.asarray(full.w)), meta
        assert _without_time(resumed.records) == _without_time(full.records)
        assert [r.loss for r in resumed.phases] == [r.loss for r in full.phases]
        for a, b in zip(resumed.phase_w, full.phase_w):
            assert np.array_equal(np.asarray(a), np.asarray(b))
    assert {(k, True) for k in range(4)} <= seen  # inside every phase
    assert {(k, False) for k in range(5)} <= seen  # the start and every phase end


def test_a_checkpoint_for_another_run_or_a_damaged_one_is_refused(tiny_problem, tmp_path):
    _, _, _, f, w0 = tiny_problem(n_residual=100)
    phases = [jpinn.Phase(Adam(1e-2), 20), jpinn.Phase(LBFGS(), 40)]
    saved = []
    train(f, w0, phases, log_every=10, progress=False, checkpoint=saved.append, checkpoint_every=10)
    io.save_train_checkpoint(tmp_path / "run", saved[2], {"seed": 0, "model": {"width": 8}, "quiet": True})
    with pytest.raises(io.RunFolderError, match="arrays|state"):  # the phases of another run
        io.load_train_checkpoint(tmp_path / "run", f, w0, [jpinn.Phase(LBFGS(), 20), jpinn.Phase(Adam(1e-2), 20)])
    _, _, _, f_wide, w_wide = tiny_problem(n_residual=100, width=9)
    with pytest.raises(io.RunFolderError, match="parameters|shape"):
        io.load_train_checkpoint(tmp_path / "run", f_wide, w_wide, phases)
    # the config: only fields that change the numbers matter
    assert config_difference({"seed": 0, "quiet": True}, {"seed": 0, "quiet": False, "resume": "x"}) is None
    with pytest.raises(ConfigError, match=r"resume: .* another config \(model.width: saved 8, now 9\)"):
        check_resume(tmp_path / "run", {"seed": 0, "model": {"width": 9}})
    path = tmp_path / "run" / "checkpoint" / "train.npz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a torn file
    with pytest.raises(io.RunFolderError, match="unreadable"):
        io.read_train_meta(tmp_path / "run")
    with pytest.raises(io.RunFolderError, match="no training checkpoint"):
        io.read_train_meta(tmp_path)


def test_truncate_metrics_keeps_what_the_checkpoint_covers(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"a": 1}\n{"a": 2}\n{"a": 3}\n{"a": 4')  # a torn last line
    assert io.truncate_metrics(tmp_path, 2) == [{"a": 1}, {"a": 2}]
    assert (tmp_path / "metrics.jsonl").read_text() == '{"a": 1}\n{"a": 2}\n'
    with pytest.raises(io.RunFolderError, match="holds 2 records, its checkpoint 3"):
        io.truncate_metrics(tmp_path, 3)


# ------------------------------------------------------------------ the command line, killed

RUN = [
    "optimizer=adam_lbfgs_nncg", "optimizer.iterations=2400", "optimizer.switch=1200", "optimizer.nncg.iterations=12",
    "optimizer.nncg.cg_max_iter=10", "optimizer.nncg.rank=8", "optimizer.nncg.refresh=4", "model.width=8",
    "model.depth=2", "data.n_x=33", "data.n_t=21", "data.n_residual=100", "log_every=40", "checkpoint_every=40",
    "quiet=true", "plot=false",
]


def _train(args, slow_writes: bool = False):
    env = dict(os.environ, JPINN_CHECKPOINT_WRITE_DELAY="0.2" if slow_writes else "0")
    return subprocess.Popen([sys.executable, str(ROOT / "scripts" / "train.py"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _final(folder):
    with np.load(folder / "checkpoint" / "params.npz") as archive:
        return archive["w"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    process = _train(RUN + [f"hydra.run.dir={folder}"])
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-2000:]
    return folder


@pytest.mark.slow
def test_resume_on_the_command_line_refuses_another_config_or_a_sweep(train_script, reference):
    """(Resuming itself, on the command line, is what the kill test below does.)"""
    assert train_script.precheck(RUN + [f"resume={reference}"]) is None  # a finished run: nothing left
    for extra, field in ((["log_every=20"], "log_every"), (["model.width=9"], "model.width"), (["-m"], "-m")):
        message = train_script.precheck(RUN + extra + [f"resume={reference}"])
        assert message is not None and "\n" not in message and field in message and "resume" in message


def kill_and_resume(reference, folder: Path, trials: int, seed: int, kills_per_trial: int | None = None,
                    first_trial: int = 0) -> dict:
    """Kill ``trials`` runs at random moments (some more than once), check the folder after each
    kill, resume until done; returns counts for the issue's note."""
    rng = random.Random(seed)
    counts = {"trials": 0, "kills": 0, "during_write": 0, "lost": 0, "mismatch": 0}
    reference_records = _without_time(io.read_metrics(reference))
    for trial in range(first_trial, first_trial + trials):
        run = folder / f"trial{trial}"
        args = RUN + [f"hydra.run.dir={run}"]
        kills = kills_per_trial or rng.choice([1, 1, 2, 3])
        slow_writes = trial % 2 == 1  # odd trials: each checkpoint write lasts 0.2 s, so kills land in them
        while True:
            process = _train(args, slow_writes=slow_writes and kills > 0)
            if kills:
                checkpoint = run / "checkpoint" / "train.npz"
                while not checkpoint.exists() and process.poll() is None:
                    time.sleep(0.005)
                time.sleep(rng.uniform(0.0, 3.0))
                if process.poll() is None:
                    before = io.read_train_meta(run)["n_records"] if checkpoint.exists() else 0
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait()
                    counts["kills"] += 1
                    counts["during_write"] += any((run / "checkpoint").glob(".train.npz.*.tmp"))
                    meta = io.read_train_meta(run)  # always a loadable checkpoint
                    text = (run / "metrics.jsonl").read_text() if (run / "metrics.jsonl").exists() else ""
                    written = sum(line.endswith("\n") for line in text.splitlines(keepends=True))
                    # work lost beyond the checkpoint: records it covered that are gone
                    counts["lost"] += meta["n_records"] < before or written < meta["n_records"]
                    kills -= 1
                    args = RUN + [f"resume={run}"]
                    continue
            _, err = process.communicate(timeout=600)
            assert process.returncode == 0, err[-2000:]
            break
        counts["trials"] += 1
        same = np.array_equal(_final(run), _final(reference))
        counts["mismatch"] += not same or _without_time(io.read_metrics(run)) != reference_records
    return counts


@pytest.mark.slow
def test_killed_at_random_moments_a_run_resumes_to_the_same_bits(reference, tmp_path):
    # one trial, with stretched checkpoint writes (the kill most likely lands in one); many
    # trials: test_many_kills (slow)
    counts = kill_and_resume(reference, tmp_path, trials=1, seed=0, kills_per_trial=1, first_trial=1)
    assert counts["kills"] == 1 and counts["lost"] == 0 and counts["mismatch"] == 0, counts


@pytest.mark.slow
def test_many_kills(reference, tmp_path):
    counts = kill_and_resume(reference, tmp_path, trials=25, seed=1)
    (ROOT / "benchmarks" / "results" / "kill-resume-vm.json").write_text(json.dumps(counts) + "\n")
    print(json.dumps(counts))
    assert counts["lost"] == 0 and counts["mismatch"] == 0, counts


@pytest.mark.parametrize("optimizer", [Adam(1e-2), LBFGS(), NNCG(rank=5, refresh=2, cg_max_iter=5), GD()],
                         ids=lambda o: o.name)
def test_same_config_and_seed_same_metrics(tiny_problem, optimizer):
    """Two runs of the same phase from the same start give identical log records."""
    _, _, _, f, w0 = tiny_problem(n_residual=100)
    phases = [jpinn.Phase(Adam(1e-2), 20), jpinn.Phase(optimizer, 40 if optimizer.name == "lbfgs" else 6, log_every=2)]
    first, second = (train(f, w0, phases, log_every=10, progress=False) for _ in range(2))
    assert _without_time(first.records) == _without_time(second.records)
    assert np.array_equal(np.asarray(first.w), np.asarray(second.w))


@pytest.mark.slow
def test_summary_records_what_reproduces_the_run(reference):
    summary = json.loads((reference / "summary.json").read_text())
    assert summary["seed"] == summary["config"]["seed"] == 123
    assert summary["config"]["optimizer"]["name"] == "adam_lbfgs_nncg" and summary["dtype"] == "float32"
    assert {"jax", "jaxlib", "optax", "equinox", "jpinn"} <= set(summary["versions"])
    assert summary["device"]["platform"] == jax.devices()[0].platform and summary["matmul_precision"] == "highest"
    assert json.loads((reference / "checkpoint" / "config.json").read_text()) == summary["config"]
