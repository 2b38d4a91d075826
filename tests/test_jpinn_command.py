"""The ``jpinn`` command (installed by pip): its help lists the subcommands and each
subcommand's help its fields; ``jpinn predict`` writes what the network gives at the points
asked, in .npz and .csv; bad options end in one line with status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
JPINN = Path(sys.executable).parent / "jpinn"  # the console script pip installed beside this Python
TINY = ["model.width=8", "model.depth=2", "data.n_x=33", "data.n_t=21", "data.n_residual=100", "quiet=true",
        "plot=false"]


def jpinn(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(JPINN), *map(str, args)], capture_output=True, text=True, timeout=600, cwd=cwd)


def test_the_command_is_installed_and_lists_its_subcommands():
    assert JPINN.is_file(), f"pip did not install the jpinn command beside {sys.executable}"
    done = jpinn("--help")
    assert done.returncode == 0
    for name in ("train", "spectrum", "aggregate", "plot", "predict"):
        assert f"  {name} " in done.stdout, name
    wrong = jpinn("trian")
    assert wrong.returncode == 2 and wrong.stderr.strip() == (
        "jpinn: error: unknown command 'trian'; did you mean train? allowed: train, spectrum, aggregate, plot, predict")
    module = subprocess.run([sys.executable, "-m", "jpinn", "--help"], capture_output=True, text=True)
    assert module.returncode == 0 and module.stdout == done.stdout


@pytest.mark.parametrize("name, fields", [
    ("train", ["usage: jpinn train", "optimizer ", "model.width=", "resume=null", "checkpoint_every=1000", "exit status"]),
    ("spectrum", ["usage: jpinn spectrum", "--analyses", "--probes", "--config"]),
    ("aggregate", ["usage: jpinn aggregate", "--out", "--figures"]),
    ("plot", ["usage: jpinn plot", "--out", "--labels", "--last-phase", "--x {phase,iteration,time}"]),
    ("predict", ["usage: jpinn predict", "--points", "--grid", "--out", "--exact"]),
])
def test_each_subcommand_help_lists_its_fields(name, fields):
    done = jpinn(name, "--help")
    assert done.returncode == 0, done.stderr
    for field in fields:
        assert field in done.stdout, (name, field)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("command") / "run"
    done = jpinn("train", *TINY, "optimizer.iterations=30", f"hydra.run.dir={folder}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[0] == f"jpinn: run folder {folder}"
    return folder


@pytest.mark.slow
def test_predict_on_a_grid_and_on_points_gives_the_networks_values(run, tmp_path):
    from jpinn.experiment import load_run

    grid = tmp_path / "grid.npz"
    done = jpinn("predict", run, "--grid", 9, 5, "--out", grid, "--exact")
    assert done.returncode == 0, done.stderr
    with np.load(grid) as data:
        assert sorted(data.files) == ["shape", "t", "u", "u_exact", "x"]
        x, t, u, exact = data["x"], data["t"], data["u"], data["u_exact"]
        assert tuple(data["shape"]) == (9, 5) and u.shape == (9, 5)
    # the grid spans the domain, endpoints included: x in [0, 2 pi], t in [0, 1]
    np.testing.assert_allclose(x[:, 0], np.linspace(0, 2 * np.pi, 9))
    np.testing.assert_allclose(t[0], np.linspace(0, 1, 5))
    beta = json.loads((run / "summary.json").read_text())["pde"]["beta"]
    np.testing.assert_allclose(exact, np.sin(x - beta * t), rtol=1e-6, atol=1e-6)  # the closed form, by hand
    loaded = load_run(run)
    points = np.stack([x.ravel(), t.ravel()], axis=1)
    direct = np.asarray(loaded.model.predict(points.astype(np.float32))).ravel()
    np.testing.assert_allclose(u.ravel(), direct, rtol=1e-6)

    # the same points from a csv of the user's, columns in another order, back as csv
    table = tmp_path / "points.csv"
    table.write_text("t,x\n" + "".join(f"{float(b)!r},{float(a)!r}\n" for a, b in points))
    out = tmp_path / "u.csv"
    done = jpinn("predict", run, "--points", table, "--out", out)
    assert done.returncode == 0, done.stderr
    header, *rows = out.read_text().splitlines()
    assert header == "x,t,u" and len(rows) == len(points)
    values = np.array([[float(v) for v in row.split(",")] for row in rows])
    np.testing.assert_allclose(values[:, :2], points)
    np.testing.assert_allclose(values[:, 2], u.ravel(), rtol=1e-6)


@pytest.mark.slow
def test_predict_refuses_bad_options_in_one_line(run, tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not an archive")
    np.savez(tmp_path / "wrong.npz", y=np.zeros(3))
    cases = [
        (["--grid", 5, 3, 2, "--out", tmp_path / "u.npz"], "--grid: one count per coordinate (x, t) or one for all, got 3"),
        (["--grid", 1, "--out", tmp_path / "u.npz"], "--grid: each count must be at least 2"),
        (["--grid", 5, "--out", tmp_path / "u.txt"], "--out: "),
        (["--points", tmp_path / "none.csv", "--out", tmp_path / "u.npz"], "no such file"),
        (["--points", tmp_path / "bad.npz", "--out", tmp_path / "u.npz"], "unreadable"),
        (["--points", tmp_path / "wrong.npz", "--out", tmp_path / "u.npz"], "needs an array 'points'"),
        (["--grid", 5, "--out", tmp_path / "a-file" / "u.npz"], "--out"),
    ]
    (tmp_path / "a-file").write_text("x")
    for args, words in cases:
        done = jpinn("predict", run, *args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and words in lines[0], (args, done.stderr)
        assert lines[0].startswith("jpinn predict: error:")
    assert not (tmp_path / "u.npz").exists()
    missing = jpinn("predict", tmp_path / "no-run", "--grid", 5, "--out", tmp_path / "u.npz")
    assert missing.returncode == 2 and "no such run folder" in missing.stderr


def test_a_refusal_and_the_resume_line_name_the_jpinn_command(tmp_path):
    done = jpinn("train", *TINY, "model.widht=3", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("jpinn train: error: model.widht: unknown key")
    from jpinn.cli import train

    previous, argv = train.PROG, sys.argv
    try:
        train.PROG, sys.argv = "jpinn train", ["jpinn train", "optimizer=adam", "hydra.run.dir=x"]
        assert train._resume_command(Path("x")) == "jpinn train optimizer=adam resume=x"
    finally:
        train.PROG, sys.argv = previous, argv
