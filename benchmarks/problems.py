"""The problem layer's problems trained at a CPU size: Adam then L-BFGS, each run through
the command line as a user would, within about 2 minutes each on the 2-core CPU.

For each problem: the command's overrides, the final loss, the L2RE per field on the
problem's test set (the closed form on a grid, Sobol points above 4 dimensions), the
iterations, the wall seconds of the whole command (compile included) and the train seconds.

    python benchmarks/problems.py [--only heat poisson2 ...] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import markdown_table, save_report

ROOT = Path(__file__).resolve().parent.parent
COMMON = ["data=sampled", "optimizer=adam_lbfgs", "model.width=32", "model.depth=3", "model.input_scaling=true",
          "quiet=true", "plot=false", "log_every=500", "checkpoint_every=null"]
BUDGET = ["optimizer.iterations=3000", "optimizer.switch=2000"]  # 2,000 Adam + at most 1,000 L-BFGS steps
PROBLEMS = {
    "heat": ["pde=heat"],
    "heat_neumann": ["pde=heat", "pde.boundary=neumann"],
    "heat_periodic": ["pde=heat", "pde.boundary=periodic"],
    "poisson2": ["pde=poisson", "pde.dim=2"],
    "poisson5": ["pde=poisson", "pde.dim=5", "+data.points.boundary=2000"],
    "poisson10": ["pde=poisson", "pde.dim=10", "+data.points.boundary=2000", "optimizer.iterations=1500",
                  "optimizer.switch=1000"],
    "helmholtz": ["pde=helmholtz"],
    "kovasznay": ["pde=kovasznay", "optimizer.iterations=2500", "optimizer.switch=2000"],
}


def run(name: str, overrides: list[str], folder: Path) -> dict:
    args = [*COMMON, *BUDGET, *overrides, f"hydra.run.dir={folder / name}"]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *args], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{name}: train.py failed: {done.stderr.strip().splitlines()[-1]}")
    summary = json.loads((folder / name / "summary.json").read_text())
    return {"summary": summary, "wall": wall, "args": [a for a in [*BUDGET, *overrides]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=list(PROBLEMS), default=list(PROBLEMS))
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only:
            result = run(name, PROBLEMS[name], Path(tmp))
            s = result["summary"]
            errors = s["errors"][s["test_set"]]["fields"]
            rows.append([name, " ".join(result["args"]), f"{s['loss']:.2e}",
                         ", ".join(f"{f} {e['l2re']:.2e}" for f, e in errors.items()),
                         str(s["iterations"]), f"{result['wall']:.0f}", f"{s['seconds']:.0f}"])
            print(rows[-1], flush=True)
    table = markdown_table(["problem", "overrides", "loss", "L2RE per field", "iterations", "wall s", "train s"], rows)
    save_report("problems", "Problems of the general layer: Adam -> L-BFGS at a CPU size",
                [f"every run: `python scripts/train.py {' '.join(COMMON)}` plus the overrides; seed 123, float32"],
                table, args.out)


if __name__ == "__main__":
    main()
