"""benchmarks/suite.py on two tiny problems x two optimizers: every run goes through the
command line and the table (markdown and JSON) holds one row per pair with its seeds."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

TINY = """
common: [model.depth=2, quiet=true, plot=false, checkpoint_every=null, log_every=10]
profiles:
  tiny:
    seeds: [0, 1]
    budget: {iterations: 30, switch: 20}
    size: [model.width=8]
problems:
  convection: [pde=convection, data.n_residual=200, data.n_x=33, data.n_t=21]
  heat: [pde=heat, data=sampled, +data.points.residual=200, data.test_points=400]
optimizers:
  adam: [optimizer=adam, "optimizer.iterations={iterations}"]
  adam_lbfgs: [optimizer=adam_lbfgs, "optimizer.iterations={iterations}", "optimizer.switch={switch}"]
  broken: [optimizer=adam, "optimizer.learning_rate=-1"]
published:
  - {problem: heat, optimizer: adam, value: 1.0e-3, source: "a test", profile: tiny, setting: "the tiny one"}
  - {problem: heat, optimizer: adam_lbfgs, value: 2.0e-3, source: "another test", profile: big, setting: "a big one"}
"""


@pytest.mark.slow
def test_suite_writes_the_table(tmp_path):
    config = tmp_path / "suite.yaml"
    config.write_text(TINY)
    out = tmp_path / "suite.md"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "suite.py"), "--config", str(config), "--profile",
                           "tiny", "--problems", "convection", "heat", "--optimizers", "adam", "adam_lbfgs", "broken",
                           "--out", str(out)], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    table = out.read_text()
    rows = [ln for ln in table.splitlines() if ln.startswith("| convection") or ln.startswith("| heat")]
    assert len(rows) == 6
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        if cells[1] == "broken":
            assert cells[2] == "0/2" and cells[6].startswith("failed x2: train.py: error:") and "learning_rate" in cells[6]
            continue
        assert cells[2] == "2/2" and "[" in cells[3] and "adam:budget x2" in cells[6]
        # Adam 30; Adam 20, then L-BFGS steps of up to 20 inner iterations for the last 10
        assert int(cells[5]) == 30 if cells[1] == "adam" else 20 < int(cells[5]) <= 40
    assert "0.001 (a test)" in [r for r in rows if r.startswith("| heat | adam |")][0]
    # a number published for another profile's setting is listed under the table, not in it
    assert "0.002" not in [r for r in rows if r.startswith("| heat | adam_lbfgs |")][0]
    assert "published, another setting (not comparable): heat adam_lbfgs 0.002, another test: a big one" in table
    runs = json.loads(out.with_suffix(".json").read_text())
    assert set(runs) == {f"{p}/{o}" for p in ("convection", "heat") for o in ("adam", "adam_lbfgs", "broken")}
    assert all(0 < r["l2re"] < 10 for r in runs["heat/adam"])
    # every finished run was logged as it ended; --resume reuses those whose overrides match and
    # runs only what changed (here: one seed more of one pair)
    log = [json.loads(ln) for ln in out.with_suffix(".runs.jsonl").read_text().splitlines()]
    assert len(log) == 12 and {e["key"] for e in log} == {f"{p}/{o}/{s}" for p in ("convection", "heat")
                                                             for o in ("adam", "adam_lbfgs", "broken") for s in (0, 1)}
    again = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "suite.py"), "--config", str(config), "--profile",
                            "tiny", "--problems", "heat", "--optimizers", "adam", "--seeds", "0", "1", "2", "--out",
                            str(out), "--resume"], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("(reused)") == 2 and "heat adam seed 2:" in again.stdout
    rerun = json.loads(out.with_suffix(".json").read_text())["heat/adam"]
    assert rerun[:2] == runs["heat/adam"] and len(rerun) == 3
