"""Are this tree's optimizer iterates bit-identical to an earlier commit's?

    python benchmarks/identity.py [--before COMMIT] [--width 8] [--dtypes float32 float64]

For each of the study's problems, a worker process of each tree (the earlier commit checked
out in a temporary git worktree, and this one) builds the loss (width ``--width``, depth 2,
200 residual points, derivatives auto) and runs from the same initial parameters: the loss
and gradient, 3 Adam steps, 3 L-BFGS outer steps (20 inner iterations each, history 100) and
2 NNCG steps (rank 8, 20 CG iterations). Each result's bytes are hashed; the table says
whether the two trees agree, and the script exits 1 if any differs. Both workers run on
this machine in the same environment, so a difference is the code's, not the machine's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import markdown_table, save_report

ROOT = Path(__file__).resolve().parent.parent
PDES = ("convection", "reaction", "wave")

WORKER = r"""
import hashlib, json, sys
import equinox as eqx, jax, numpy as np
import jpinn
from jpinn.optim import LBFGS, NNCG, Adam
width, dtype_name = int(sys.argv[1]), sys.argv[2]
dtype = jpinn.set_precision(dtype_name)
out = {}
def digest(*arrays):
    h = hashlib.sha256()
    for a in jax.tree_util.tree_leaves(arrays):
        h.update(np.asarray(a).tobytes())
    return h.hexdigest()[:16]
for name in ("convection", "reaction", "wave"):
    pde = jpinn.pdes.make_pde(name)
    data = jpinn.sample_collocation(pde, n_x=33, n_t=21, n_residual=200, seed=0, dtype=dtype)
    model = jpinn.models.MLP(width=width, depth=2, key=jax.random.PRNGKey(0), dtype=dtype)
    f, w0 = jpinn.build_loss(pde, model, data)
    (loss, _), grad = jax.jit(jax.value_and_grad(f, has_aux=True))(w0)
    out[f"{name} loss+grad"] = digest(loss, grad)
    for label, opt, steps in (("adam", Adam(1e-3), 3), ("lbfgs", LBFGS(), 3),
                              ("nncg", NNCG(rank=8, cg_max_iter=20, cg_tol=0.0), 2)):
        step = eqx.filter_jit(opt.step)
        w, state = w0, opt.init(f, w0)
        trail = []
        for _ in range(steps):
            w, state, info = step(f, w, state)
            trail.append(w)
        out[f"{name} {label} x{steps}"] = digest(trail)
print(json.dumps(out))
"""


def worker(src: str, width: int, dtype: str) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(WORKER)
    env = {**os.environ, "PYTHONPATH": src}
    done = subprocess.run([sys.executable, handle.name, str(width), dtype], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"worker ({src}) failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _commit(name: str) -> str:
    done = subprocess.run(["git", "rev-parse", "--short", name], capture_output=True, text=True, cwd=ROOT)
    return done.stdout.strip() or "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="HEAD", help="the commit to compare against (default: the last commit)")
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    old = Path(tempfile.mkdtemp()) / "before"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-f", "--detach", str(old), args.before], check=True,
                   capture_output=True)
    rows, same = [], True
    try:
        for dtype in args.dtypes:
            before, after = worker(str(old / "src"), args.width, dtype), worker(str(ROOT / "src"), args.width, dtype)
            for key in before:
                equal = before[key] == after.get(key)
                same &= equal
                rows.append([dtype, key, before[key], after.get(key, "-"), "yes" if equal else "NO"])
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], capture_output=True)
    save_report("identity", "Iterates of this tree against an earlier commit's", [
        f"before: {args.before} ({_commit(args.before)}), after: this tree (uncommitted changes included); "
        f"width {args.width}, depth 2, 200 residual points; sha256 of the bytes (first 16 hex)",
    ], markdown_table(["dtype", "result", "before", "after", "bit-identical"], rows), args.out)
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
