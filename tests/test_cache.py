"""The persistent compilation cache: where it lives, the switch, and that a run read back
from it gives the numbers of a run compiled from scratch."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jpinn.cache import cache_dir, compilation_cache_folder, use_compilation_cache
from jpinn.experiment import ConfigError, validate

ROOT = Path(__file__).resolve().parent.parent
# Adam -> L-BFGS -> NNCG at a tiny size: every kind of compiled program a run makes
TINY = [
    "optimizer=adam_lbfgs_nncg", "optimizer.iterations=12", "optimizer.switch=6", "optimizer.nncg.iterations=3",
    "optimizer.nncg.rank=4", "optimizer.nncg.cg_max_iter=5", "model.width=8", "model.depth=2", "data.n_x=33", "data.n_t=21",
    "data.n_residual=200", "log_every=3", "quiet=true", "plot=false",
]


def _train(args, env):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *args], capture_output=True,
                          text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _entries(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def _numbers(run_dir: Path):
    summary = json.loads((run_dir / "summary.json").read_text())
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    records = [{k: v for k, v in json.loads(x).items() if "second" not in k and k != "time"} for x in lines]
    return summary["loss"], summary["l2re"], [p["loss"] for p in summary["phases"]], records


def test_where_the_cache_lives(monkeypatch, tmp_path):
    monkeypatch.setenv("JPINN_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    assert compilation_cache_folder("auto") == tmp_path / "mine" / "xla"
    monkeypatch.delenv("JPINN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compilation_cache_folder(True) == tmp_path / "xdg" / "jpinn" / "xla"
    assert compilation_cache_folder(str(tmp_path / "there")) == tmp_path / "there"
    assert compilation_cache_folder(False) is None and compilation_cache_folder(None) is None


@pytest.mark.parametrize("value", [3, "", " ", ["a"], 1.5])
def test_bad_setting_is_refused_in_one_line(value):
    config = {"pde": {"name": "convection"}, "model": {"name": "mlp"}, "data": {"name": "study"},
              "optimizer": {"name": "adam"}, "compile_cache": value}
    with pytest.raises(ConfigError, match=r"^compile_cache: must be auto, false or a folder, got ") as error:
        validate(config)
    assert "\n" not in str(error.value)


def test_unwritable_folder_runs_uncached(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert use_compilation_cache(str(blocker / "xla")) is None
    line = capsys.readouterr().err.strip()
    assert line.startswith("jpinn: compile_cache:") and "\n" not in line
    use_compilation_cache("auto")


@pytest.mark.slow
def test_cached_run_equals_uncached_and_the_switch_turns_it_off(tmp_path):
    import os

    env = {**os.environ, "JPINN_CACHE_DIR": str(tmp_path / "cache")}
    folder = tmp_path / "cache" / "xla"
    # off: nothing is written to the cache folder
    _train([*TINY, "compile_cache=false", f"hydra.run.dir={tmp_path / 'off'}"], env)
    assert _entries(folder) == set()
    # on: the first run fills the cache; a second one compiles nothing new
    _train([*TINY, f"hydra.run.dir={tmp_path / 'first'}"], env)
    written = _entries(folder)
    assert written
    _train([*TINY, f"hydra.run.dir={tmp_path / 'second'}"], env)
    assert _entries(folder) == written  # every program was read back, none compiled again
    off, first, second = (_numbers(tmp_path / name) for name in ("off", "first", "second"))
    assert first == off and second == off  # bit for bit: the same floats in the summary and the log
