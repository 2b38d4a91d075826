"""The failures of issue 20, provoked on a checkout: for each, the exit status, the lines on
stderr and whether a folder was left (or a run mixed into or lost). Run it on two checkouts
to compare: the tree it lives in by default, or ``--root`` (a ``git worktree`` of an older
commit; its ``src`` comes first on the path, so that commit's jpinn runs).

    python benchmarks/failures.py                       # this tree
    python benchmarks/failures.py --root /tmp/before --label before --out benchmarks/results/failures-before.md

Each case makes its own folders under a temporary directory; the read-only and full-disk
cases need ``mount`` (root) and say "skipped" elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, save_report  # noqa: E402

TINY = ["model.width=8", "model.depth=2", "data.n_x=33", "data.n_t=21", "data.n_residual=200", "quiet=true",
        "plot=false"]


class Checkout:
    def __init__(self, root: Path):
        self.root = root
        self.env = dict(os.environ, PYTHONPATH=str(root / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))

    def cli(self, script: str, *args, cwd=None, timeout=600) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(self.root / "scripts" / script), *map(str, args)], cwd=cwd,
                              capture_output=True, text=True, timeout=timeout, env=self.env)

    def train(self, *args, cwd=None) -> subprocess.CompletedProcess:
        return self.cli("train.py", *TINY, *args, cwd=cwd)

    def popen(self, *args) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, str(self.root / "scripts" / "train.py"), *TINY, *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env)


def _lines(done) -> int:
    return len([line for line in done.stderr.splitlines() if line.strip()])


def _contents(folder: Path) -> str:
    if not folder.exists():
        return "no"
    names = sorted(p.name for p in folder.iterdir())
    return "no" if not names else "yes: " + ", ".join(names[:4]) + (" ..." if len(names) > 4 else "")


def _finished(c: Checkout, tmp: Path) -> Path:
    run = tmp / "finished"
    if not run.exists():
        done = c.train("optimizer.iterations=60", "log_every=20", "checkpoint_every=20", f"hydra.run.dir={run}")
        assert done.returncode == 0, done.stderr[-2000:]
    copy = Path(tempfile.mkdtemp(dir=tmp)) / "run"
    shutil.copytree(run, copy)
    return copy


def _mount(*args) -> bool:
    return subprocess.run(["mount", *map(str, args)], capture_output=True).returncode == 0


# each case: (c, tmp) -> (exit status, stderr lines, what was left, a note)
def existing_folder(c, tmp):
    run = _finished(c, tmp)
    lines = len((run / "metrics.jsonl").read_text().splitlines())
    done = c.train("optimizer.iterations=60", f"hydra.run.dir={run}")
    after = len((run / "metrics.jsonl").read_text().splitlines())
    return done.returncode, _lines(done), "-", f"metrics.jsonl {lines} -> {after} lines"


def empty_run_dir(c, tmp):
    cwd = Path(tempfile.mkdtemp(dir=tmp))
    done = c.train("optimizer.iterations=5", "hydra.run.dir=", cwd=cwd)
    return done.returncode, _lines(done), _contents(cwd), "files in the working directory"


def under_a_file(c, tmp):
    file = tmp / "a-file"
    file.write_text("x")
    done = c.train("optimizer.iterations=5", f"hydra.run.dir={file}/run")
    return done.returncode, _lines(done), "-", ""


def proc_folder(c, tmp):
    done = c.train("optimizer.iterations=5", "hydra.run.dir=/proc/jpinn-run")
    return done.returncode, _lines(done), "-", ""


def _read_only(c, tmp):
    source, target = Path(tempfile.mkdtemp(dir=tmp)), Path(tempfile.mkdtemp(dir=tmp))
    shutil.copytree(_finished(c, tmp), source, dirs_exist_ok=True)
    return target if _mount("--bind", "-o", "ro", source, target) else None


def read_only_train(c, tmp):
    folder = _read_only(c, tmp)
    if folder is None:
        return None
    try:
        done = c.train("optimizer.iterations=5", f"hydra.run.dir={folder}/new")
        return done.returncode, _lines(done), "-", ""
    finally:
        _mount_off(folder)


def read_only_spectrum(c, tmp):
    folder = _read_only(c, tmp)
    if folder is None:
        return None
    try:
        done = c.cli("spectrum.py", folder, "--probes", "2", "--steps", "2", "--top", "1")
        return done.returncode, _lines(done), "-", ""
    finally:
        _mount_off(folder)


def read_only_aggregate(c, tmp):
    folder = _read_only(c, tmp)
    if folder is None:
        return None
    try:
        done = c.cli("aggregate.py", folder)
        return done.returncode, _lines(done), "-", ""
    finally:
        _mount_off(folder)


def _mount_off(folder):
    subprocess.run(["umount", str(folder)], capture_output=True)


def full_disk(c, tmp):
    disk = Path(tempfile.mkdtemp(dir=tmp))
    if not _mount("-t", "tmpfs", "-o", "size=400k", "tmpfs", disk):
        return None
    run, child = disk / "run", None
    try:
        child = c.popen("optimizer.iterations=4000", "log_every=10", "checkpoint_every=200", f"hydra.run.dir={run}")
        deadline = time.time() + 300
        while not (run / "checkpoint" / "train.npz").exists() or len((run / "metrics.jsonl").read_text().splitlines()) < 30:
            if child.poll() is not None or time.time() > deadline:
                return child.returncode, -1, "-", "did not get going"
            time.sleep(0.2)
        handle = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(handle, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(handle)
        _, err = child.communicate(timeout=300)
        intact = "checkpoint intact" if (run / "checkpoint" / "train.npz").is_file() else "no checkpoint"
        return child.returncode, len([x for x in err.splitlines() if x.strip()]), "-", intact
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        _mount_off(disk)


def flipped_checkpoint(c, tmp):
    run = _finished(c, tmp)
    path = run / "checkpoint" / "train.npz"
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 8] = bytes(b ^ 0xFF for b in data[middle:middle + 8])
    path.write_bytes(bytes(data))
    done = c.train("optimizer.iterations=60", "log_every=20", "checkpoint_every=20", f"resume={run}")
    return done.returncode, _lines(done), "-", ""


def garbage_metrics(c, tmp):
    run = _finished(c, tmp)
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    (run / "metrics.jsonl").write_text("".join(lines[:1] + ["{not json\n"] + lines[2:]))
    done = c.train("optimizer.iterations=60", "log_every=20", "checkpoint_every=20", f"resume={run}")
    return done.returncode, _lines(done), "-", ""


def torn_metrics_plot(c, tmp):
    run = _finished(c, tmp)
    (run / "metrics.jsonl").write_text((run / "metrics.jsonl").read_text() + '{"phase": "adam", "iter')
    done = c.cli("plot.py", run, "--out", tmp / "figures")
    return done.returncode, _lines(done), "-", "a torn last line"


def torn_summary_spectrum(c, tmp):
    run = _finished(c, tmp)
    (run / "summary.json").write_text((run / "summary.json").read_text()[:50])
    done = c.cli("spectrum.py", run, "--probes", "2", "--steps", "2")
    return done.returncode, _lines(done), "-", "names summary.json" if "summary.json" in done.stderr else ""


def all_phases_fault(c, tmp):
    done = c.train("pde.beta=1e30", "optimizer.iterations=5", f"hydra.run.dir={tmp / 'faulted'}")
    return done.returncode, _lines(done), "-", ""


def ctrl_c(c, tmp):
    run = tmp / "interrupted"
    child = c.popen("optimizer.iterations=3000", "log_every=10", "checkpoint_every=100000", f"hydra.run.dir={run}")
    deadline = time.time() + 300
    while not (run / "metrics.jsonl").exists() or len((run / "metrics.jsonl").read_text().splitlines()) < 5:
        if child.poll() is not None or time.time() > deadline:
            return child.returncode, -1, "-", "did not get going"
        time.sleep(0.1)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=300)
    written = "checkpoint" if (run / "checkpoint" / "train.npz").is_file() else "no checkpoint"
    return child.returncode, len([x for x in err.splitlines() if x.strip()]), "-", written


def train_longer(c, tmp):
    run = _finished(c, tmp)
    done = c.train("optimizer.iterations=100", "log_every=20", "checkpoint_every=20", f"resume={run}")
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").is_file() else {}
    return done.returncode, _lines(done), "-", f"{summary.get('iterations')} iterations in summary.json"


def aggregate_one_optimizer(c, tmp):
    run = tmp / "gd"
    assert c.train("optimizer=gd", "optimizer.iterations=3", f"hydra.run.dir={run}").returncode == 0
    done = c.cli("aggregate.py", run)
    return done.returncode, _lines(done), "-", ""


def sweep_15_overrides(c, tmp):
    overrides = ["seed=7", "optimizer.learning_rate=0.001", "optimizer.b1=0.9", "optimizer.b2=0.999",
                 "optimizer.eps=1e-08", "pde.beta=2.0", "data.seed=3", "log_every=5", "checkpoint_every=10",
                 "derivatives=forward", "compile_ahead=false", "loss.mse_factor=1.0", "dtype=float32",
                 "optimizer.iterations=10", "optimizer.schedule=constant"]
    folder = tmp / "sweep"
    done = c.cli("train.py", "-m", *TINY, *overrides, f"hydra.sweep.dir={folder}")
    return done.returncode, _lines(done), "-", ""


def _refusal(*args):
    def case(c, tmp):
        cwd = Path(tempfile.mkdtemp(dir=tmp))
        done = c.train(*args, cwd=cwd)
        return done.returncode, _lines(done), _contents(cwd), done.stderr.strip().splitlines()[-1][:90] if done.stderr.strip() else ""
    return case


def capped_rank(c, tmp):
    done = c.train("optimizer=nncg", "optimizer.iterations=2", "optimizer.rank=5000", f"hydra.run.dir={tmp / 'rank'}")
    return done.returncode, _lines(done), "-", "said" if "rank" in done.stderr else "not said"


def lbfgs_budget(c, tmp):
    run = tmp / "lbfgs"
    done = c.train("optimizer=lbfgs", "optimizer.iterations=100", f"hydra.run.dir={run}")
    phase = json.loads((run / "summary.json").read_text())["phases"][0]
    return done.returncode, _lines(done), "-", (f"{phase['iterations']} iterations in {phase['steps']} steps,"
                                                f" stopped: {phase['stop_reason']}")


def file_modes(c, tmp):
    run = tmp / "modes"
    done = subprocess.run(["sh", "-c", f"umask 002 && exec {sys.executable} {c.root / 'scripts' / 'train.py'} "
                                       f"{' '.join(TINY)} optimizer.iterations=5 hydra.run.dir={run}"],
                          capture_output=True, text=True, timeout=600, env=c.env)
    modes = sorted({oct((run / p).stat().st_mode & 0o777) for p in ("summary.json", "checkpoint/train.npz",
                                                                   "metrics.jsonl")})
    return done.returncode, _lines(done), "-", "umask 002: " + ", ".join(modes)


def first_line_and_help(c, tmp):
    run = tmp / "talk"
    done = c.cli("train.py", *[a for a in TINY if a != "quiet=true"], "optimizer.iterations=5", f"hydra.run.dir={run}")
    helped = c.cli("train.py", "--help")
    compiling = "compiling" in done.stderr
    return done.returncode, _lines(done), "-", (f"first line {done.stdout.splitlines()[0][:40]!r}; compiling line: "
                                                f"{'yes' if compiling else 'no'}; --help {len(helped.stdout.splitlines())} lines"
                                                f"{', lists fields' if 'checkpoint_every=' in helped.stdout else ''}")


CASES = [
    ("1 fresh run into a run's folder", existing_folder),
    ("2 hydra.run.dir= (empty)", empty_run_dir),
    ("2 run folder under a file", under_a_file),
    ("2 run folder in /proc", proc_folder),
    ("2 run folder on a read-only mount", read_only_train),
    ("2 spectrum.py on a read-only run", read_only_spectrum),
    ("2 aggregate.py on a read-only run", read_only_aggregate),
    ("3 disk full mid-run (400 KiB tmpfs)", full_disk),
    ("4 flipped bytes in train.npz, resume=", flipped_checkpoint),
    ("4 garbage line in metrics.jsonl, resume=", garbage_metrics),
    ("4 plot.py on a torn metrics.jsonl", torn_metrics_plot),
    ("4 spectrum.py on a torn summary.json", torn_summary_spectrum),
    ("5 every phase faults (pde.beta=1e30)", all_phases_fault),
    ("6 Ctrl-C (SIGINT to the child)", ctrl_c),
    ("7 resume= with a larger budget", train_longer),
    ("8 aggregate.py on an optimizer=gd run", aggregate_one_optimizer),
    ("9 a sweep with 15 overrides", sweep_15_overrides),
    ("10 devices=64", _refusal("devices=64")),
    ("10 non-ASCII hydra.run.dir", _refusal("hydra.run.dir=outputs/d\u00e9j\u00e0")),
    ("10 budget_scale=1e-9", _refusal("budget_scale=1e-9", "optimizer.iterations=50")),
    ("10 NNCG rank 5000 > parameters", capped_rank),
    ("11 L-BFGS budget of 100", lbfgs_budget),
    ("11 optimizer.switch=5000 of 50", _refusal("optimizer=adam_lbfgs", "optimizer.switch=5000", "optimizer.iterations=50")),
    ("11 misspelt model.widht=50", _refusal("model.widht=50")),
    ("12 file modes", file_modes),
    ("13 first line, compiling, --help", first_line_and_help),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the checkout to run (default: this one)")
    parser.add_argument("--label", default="this tree", help="the checkout's name in the report")
    parser.add_argument("--only", nargs="*", help="case numbers to run (e.g. 1 7)")
    parser.add_argument("--out", help="the report (default benchmarks/results/failures-<label>.md)")
    args = parser.parse_args()
    commit = subprocess.run(["git", "-C", str(args.root), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        c = Checkout(args.root.resolve())
        for name, case in CASES:
            if args.only and name.split()[0] not in args.only:
                continue
            t0 = time.perf_counter()
            try:
                out = case(c, Path(tmp))
            except Exception as error:  # noqa: BLE001 - a case that breaks on an old tree is a row too
                out = ("-", "-", "-", f"case failed: {type(error).__name__}: {str(error).splitlines()[0][:80]}")
            if out is None:
                out = ("-", "-", "-", "skipped (mount not allowed)")
            status, lines, left, note = out
            rows.append([name, str(status), str(lines), left, note.replace("|", "/")])
            print(f"{name:<42} exit {status!s:>4}  stderr {lines!s:>4} lines  left {left}  {note}  "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    table = markdown_table(["case", "exit", "stderr lines", "folder left", "note"], rows)
    notes = [f"checkout: {args.label} ({commit}, {args.root})",
             "stderr lines: non-empty lines; folder left: what a refusal left in its working directory"]
    save_report(f"failures-{args.label.replace(' ', '-')}", "Failures of issue 20, provoked", notes, table, args.out)


if __name__ == "__main__":
    main()
