"""Failures a user meets, provoked for real: each ends in one line on stderr that names the
field or the file, with a documented exit status, and loses or mixes nothing.

Exit statuses (scripts/train.py, README "Exit codes"): 0 trained, 1 a write failed, 2 refused,
3 every phase ended on a fault, 130 interrupted."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT / "scripts" / "train.py"
TINY = ["model.width=8", "model.depth=2", "data.n_x=33", "data.n_t=21", "data.n_residual=200", "quiet=true",
        "plot=false"]


def _cli(script: str, *args: str, cwd: Path | None = None, timeout: int = 600, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / script), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env)


def _train(*args: str, cwd: Path | None = None, **kw) -> subprocess.CompletedProcess:
    return _cli("train.py", *TINY, *args, cwd=cwd, **kw)


def _refused(done: subprocess.CompletedProcess, *words: str, status: int = 2) -> str:
    """The one stderr line of a refusal with ``status``; it holds every word."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == status, (done.returncode, done.stderr[-2000:])
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished tiny Adam run (with checkpoints) to damage copies of."""
    run = tmp_path_factory.mktemp("finished") / "run"
    done = _train("optimizer.iterations=60", "log_every=20", "checkpoint_every=20", f"hydra.run.dir={run}")
    assert done.returncode == 0, done.stderr
    return run


def _copy(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(run, target)
    return target


# 1. a fresh run into a folder that holds a run
def test_a_fresh_run_into_an_existing_run_folder_is_refused(finished, tmp_path):
    run = _copy(finished, tmp_path)
    before = {p.name: p.read_bytes() for p in [run / "metrics.jsonl", run / "summary.json"]}
    done = _train("optimizer.iterations=60", f"hydra.run.dir={run}")
    _refused(done, "hydra.run.dir", "already holds a run", f"resume={run}")
    assert {p.name: p.read_bytes() for p in [run / "metrics.jsonl", run / "summary.json"]} == before

    # the Python API refuses it too
    import jpinn

    with pytest.raises(jpinn.io.RunFolderError, match="already holds a run"):
        jpinn.io.check_run_folder(run, field="run folder")


# 2. run folders that cannot be written: refused before anything is made
@pytest.mark.parametrize("folder,words", [
    ("", ("hydra.run.dir", "empty")),
    ("{file}/run", ("hydra.run.dir", "is a file")),
    ("{file}", ("hydra.run.dir", "is a file, not a folder")),
    ("/proc/jpinn-run", ("hydra.run.dir", "/proc", "not writable")),
])
def test_run_folders_that_cannot_be_written_are_refused_before_training(tmp_path, folder, words):
    file = tmp_path / "a-file"
    file.write_text("x")
    done = _train(f"hydra.run.dir={folder.format(file=file)}", cwd=tmp_path)
    _refused(done, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # no folder, no run files here


@pytest.fixture
def read_only(tmp_path):
    """A read-only bind mount of a folder (skipped where mounting is not allowed)."""
    source, target = tmp_path / "source", tmp_path / "ro"
    source.mkdir()
    target.mkdir()

    def mount(what: Path) -> Path:
        shutil.copytree(what, source, dirs_exist_ok=True)
        done = subprocess.run(["mount", "--bind", "-o", "ro", str(source), str(target)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot make a read-only bind mount here ({done.stderr.strip() or done.returncode})")
        return target

    yield mount
    subprocess.run(["umount", str(target)], capture_output=True)


@pytest.mark.slow
def test_read_only_folders_are_refused_by_train_spectrum_and_aggregate(finished, read_only, tmp_path):
    folder = read_only(finished)
    done = _train("optimizer.iterations=20", f"hydra.run.dir={folder}/new")
    _refused(done, "hydra.run.dir", "not writable")
    assert not (folder / "new").exists()
    _refused(_cli("spectrum.py", folder, "--probes", "2", "--steps", "2", "--top", "1"), "--out", "not writable")
    _refused(_cli("aggregate.py", folder), "--out", "not writable")
    _refused(_cli("plot.py", folder, "--out", folder / "figures"), "--out", "not writable")


# 3. a write that fails mid-run (a full tmpfs): one line, the checkpoint intact, resume bit-identical
@pytest.mark.slow
def test_a_full_disk_mid_run_ends_in_one_line_and_resumes_bit_identically(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    child = None
    try:
        run = disk / "run"
        args = ["optimizer.iterations=4000", "log_every=10", "checkpoint_every=200"]
        child = subprocess.Popen([sys.executable, str(TRAIN), *TINY, *args, f"hydra.run.dir={run}"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 300
        while not (run / "checkpoint" / "train.npz").exists() or len((run / "metrics.jsonl").read_text().splitlines()) < 30:
            assert child.poll() is None and time.time() < deadline, child.communicate()
            time.sleep(0.2)
        filler = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)  # the disk fills up under the running job
        try:
            while True:
                os.write(filler, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(filler)
        _, err = child.communicate(timeout=300)
        lines = err.strip().splitlines()
        assert child.returncode == 1, err[-3000:]
        assert len(lines) == 1 and "cannot write" in lines[0] and "No space left" in lines[0] and f"resume={run}" in lines[0], err
        (disk / "filler").unlink()
        resumed = _train(*args, f"resume={run}")
        assert resumed.returncode == 0, resumed.stderr
        reference = tmp_path / "reference"
        assert _train(*args, f"hydra.run.dir={reference}").returncode == 0
        assert _same_parameters(run, reference)
    finally:
        if child is not None and child.poll() is None:  # a failed assertion above: the job must let go of the disk
            child.kill()
            child.wait()
        subprocess.run(["umount", str(disk)], capture_output=True)


def _same_parameters(a: Path, b: Path) -> bool:
    with np.load(a / "checkpoint" / "params.npz") as x, np.load(b / "checkpoint" / "params.npz") as y:
        return bool(np.array_equal(x["w"], y["w"]))


# 4. damaged run folders: each reader names the file in one line
@pytest.mark.parametrize("offset", [0.1, 0.5, 0.9])
def test_flipped_bytes_in_the_training_checkpoint_are_named(finished, tmp_path, offset):
    run = _copy(finished, tmp_path)
    path = run / "checkpoint" / "train.npz"
    data = bytearray(path.read_bytes())
    start = int(offset * len(data))
    data[start:start + 8] = bytes(b ^ 0xFF for b in data[start:start + 8])
    path.write_bytes(bytes(data))
    _refused(_train("optimizer.iterations=60", "log_every=20", "checkpoint_every=20", f"resume={run}"),
             "train.npz")


@pytest.mark.parametrize("damage", ["garbage", "short"])
def test_damaged_metrics_are_refused_at_resume(finished, tmp_path, damage):
    run = _copy(finished, tmp_path)
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    text = "".join(lines[:1] + ["{not json\n"] + lines[2:]) if damage == "garbage" else "".join(lines[:1])
    (run / "metrics.jsonl").write_text(text)
    _refused(_train("optimizer.iterations=60", "log_every=20", "checkpoint_every=20", f"resume={run}"),
             "metrics.jsonl")


@pytest.mark.slow
def test_a_torn_metrics_tail_is_read_past_and_damage_is_named_by_every_reader(finished, tmp_path):
    run = _copy(finished, tmp_path)
    text = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text(text + '{"phase": "adam", "iter')  # a line torn by a kill
    done = _cli("plot.py", run, "--out", tmp_path / "figures")
    assert done.returncode == 0, done.stderr
    (run / "metrics.jsonl").write_text(text + "garbage\n")
    _refused(_cli("plot.py", run, "--out", tmp_path / "figures"), "metrics.jsonl", "line")
    (run / "summary.json").write_text((run / "summary.json").read_text()[:50])
    _refused(_cli("spectrum.py", run, "--probes", "2", "--steps", "2"), "summary.json")
    (run / "checkpoint" / "config.json").write_text('{"x":')
    _refused(_cli("spectrum.py", run, "--probes", "2", "--steps", "2"), "config.json", "run config")


# 5. exit status: a run whose phases all end on a fault
@pytest.mark.slow
def test_a_run_whose_every_phase_faults_exits_3(tmp_path):
    done = _train("pde.beta=1e30", "optimizer.iterations=5", f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 3, done.stderr
    assert "every phase ended on a fault" in done.stderr and "non-finite" in done.stderr
    assert (tmp_path / "run" / "summary.json").is_file()  # the folder is complete all the same


# 6. Ctrl-C: a real SIGINT to the child
@pytest.mark.slow
def test_ctrl_c_ends_at_a_chunk_with_a_checkpoint_and_resumes_bit_identically(tmp_path):
    run, reference = tmp_path / "run", tmp_path / "reference"
    args = ["optimizer.iterations=3000", "log_every=10", "checkpoint_every=100000"]
    # SIGINT at its default in the child: a shell starting this suite in the background
    # (`pytest &`) hands its children SIGINT ignored, and Python then keeps it ignored
    child = subprocess.Popen([sys.executable, str(TRAIN), *TINY, *args, f"hydra.run.dir={run}"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while not (run / "metrics.jsonl").exists() or len((run / "metrics.jsonl").read_text().splitlines()) < 5:
        assert child.poll() is None and time.time() < deadline, child.communicate()
        time.sleep(0.1)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=300)
    assert child.returncode == 130, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert "interrupted in phase adam" in last and f"resume={run}" in last, err
    assert "Traceback" not in err and not (run / "summary.json").exists()
    assert _train(*args, f"resume={run}").returncode == 0
    assert _train(*args, f"hydra.run.dir={reference}").returncode == 0
    assert _same_parameters(run, reference)


# 7. resume= with larger budgets and more phases: tests/test_train_longer.py


# 8. aggregate.py on runs of one optimizer alone
@pytest.mark.parametrize("optimizer", ["gd", "nncg"])
@pytest.mark.slow
def test_aggregate_reads_runs_of_one_optimizer_alone(tmp_path, optimizer):
    run = tmp_path / "run"
    assert _train(f"optimizer={optimizer}", "optimizer.iterations=3", f"hydra.run.dir={run}").returncode == 0
    done = _cli("aggregate.py", run)
    assert done.returncode == 0, done.stderr
    assert "one phase: no start point" in (run / "aggregate" / "tables.md").read_text()


# 9. a sweep with many overrides: short job folders, the overrides inside them
@pytest.mark.slow
def test_a_sweep_with_15_overrides_runs_in_short_job_folders(tmp_path):
    overrides = ["seed=7", "optimizer.learning_rate=0.001", "optimizer.b1=0.9", "optimizer.b2=0.999",
                 "optimizer.eps=1e-08", "pde.beta=2.0", "data.seed=3", "log_every=5", "checkpoint_every=10",
                 "derivatives=forward", "compile_ahead=false", "loss.mse_factor=1.0", "dtype=float32",
                 "optimizer.iterations=10", "optimizer.schedule=constant"]
    assert len(overrides) == 15
    done = _cli("train.py", "-m", *TINY, *overrides, f"hydra.sweep.dir={tmp_path}")
    assert done.returncode == 0, done.stderr[-3000:]
    job = tmp_path / "0"
    assert (job / "summary.json").is_file()
    recorded = (job / ".hydra" / "overrides.yaml").read_text()
    assert all(o.split("=")[0] in recorded for o in overrides)


# 10. refused before any folder exists, or said on the console
@pytest.mark.parametrize("args,words", [
    (["devices=64"], ("devices", "64 asked")),
    (["budget_scale=1e-9"], ("budget_scale", "less than one iteration")),
    (["hydra.run.dir=outputs/d\u00e9j\u00e0"], ("hydra.run.dir", "not a valid override", "quote")),
])
def test_refused_before_any_folder(tmp_path, args, words):
    _refused(_train(*args, cwd=tmp_path), *words)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_quoted_non_ascii_run_folder_works_and_a_capped_rank_is_said(tmp_path):
    folder = tmp_path / "d\u00e9j\u00e0"
    done = _train("optimizer=nncg", "optimizer.iterations=2", "optimizer.rank=5000", f"hydra.run.dir='{folder}'")
    assert done.returncode == 0, done.stderr
    assert (folder / "summary.json").is_file()
    assert "rank: 5000 is more than the" in done.stderr


# 11. budgets that say what they do; errors in the user's own terms
@pytest.mark.slow
def test_an_lbfgs_budget_is_counted_in_steps_and_said(tmp_path):
    done = _train("optimizer=lbfgs", "optimizer.iterations=100", f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 0, done.stderr
    phase = json.loads((tmp_path / "run" / "summary.json").read_text())["phases"][0]
    if phase["stop_code"] == 0:
        assert phase["steps"] == 5 and phase["stop_reason"] == "budget (5 steps of at most 20 iterations)"
        assert phase["iterations"] <= 100


@pytest.mark.parametrize("args,words", [
    (["optimizer=adam_lbfgs", "optimizer.switch=5000", "optimizer.iterations=50"],
     ("optimizer.iterations=50", "optimizer.switch=5000", "got -4950")),
    (["model.widht=50"], ("model.widht: unknown key", "did you mean model.width?")),
    (["+optimizer.lerning_rate=1e-3"], ("optimizer.lerning_rate", "did you mean optimizer.learning_rate?")),
])
def test_errors_name_what_the_user_typed(tmp_path, args, words):
    _refused(_train(*args, cwd=tmp_path), *words)


# 12. files follow the umask
def test_run_files_follow_the_umask(tmp_path):
    run = tmp_path / "run"
    done = subprocess.run(["sh", "-c", f"umask 002 && exec {sys.executable} {TRAIN} {' '.join(TINY)}"
                                       f" optimizer.iterations=5 hydra.run.dir={run}"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    for path in [run / "summary.json", run / "checkpoint" / "params.npz", run / "checkpoint" / "train.npz",
                 run / "checkpoint" / "config.json", run / "metrics.jsonl"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o664, (path, oct(path.stat().st_mode))


# 13. a run says what it is doing
@pytest.mark.slow
def test_a_run_names_its_folder_first_says_when_it_compiles_and_has_a_help(tmp_path):
    run = tmp_path / "run"
    done = _cli("train.py", *[a for a in TINY if a != "quiet=true"], "optimizer.iterations=5", f"hydra.run.dir={run}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"jpinn: run folder {run}"
    assert "[1/1] adam: compiling ..." in done.stderr
    helped = _cli("train.py", "--help")
    assert helped.returncode == 0
    for text in ("optimizer ", "checkpoint_every=1000", "resume=null", "exit status", "130"):
        assert text in helped.stdout, text
    assert not list(tmp_path.glob("outputs"))
