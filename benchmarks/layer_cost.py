"""The problem layer's cost on the study's problems: gradient and Hessian-vector product
times of this tree against an earlier commit's, side by side, and each derivative method.

Each round runs one worker process per tree, alternately (the order flips every round);
a worker builds the loss (10,000 residual points, depth 3, float32, derivatives=auto,
loss.block_size=auto), compiles, then times ``--repeats`` gradients and HVPs and reports
the medians. The table gives the median over rounds and the ratio after / before.
``--methods`` adds this tree's gradient and HVP time per derivative method.

    python benchmarks/layer_cost.py [--before 8f9294a] [--pdes wave] [--widths 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import markdown_table, save_report

ROOT = Path(__file__).resolve().parent.parent

WORKER = r"""
import json, sys, time, statistics
import jax, jax.numpy as jnp, equinox as eqx
import jpinn
from jpinn.linalg import hvp
pde_name, width, repeats, method = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
jpinn.set_precision("float32")
pde = jpinn.pdes.make_pde(pde_name)
data = jpinn.sample_collocation(pde, n_residual=10_000, seed=0)
model = jpinn.models.MLP(width=width, depth=3, key=jax.random.PRNGKey(0))
f, w = jpinn.build_loss(pde, model, data, method=method)
v = jnp.ones_like(w) * 1e-2
grad = eqx.filter_jit(lambda f, w: jax.grad(lambda w: f(w)[0])(w))
prod = eqx.filter_jit(hvp)
jax.block_until_ready(grad(f, w)); jax.block_until_ready(prod(f, w, v))
def median(fn, *args):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter(); jax.block_until_ready(fn(*args)); times.append(time.perf_counter() - t0)
    return statistics.median(times)
print(json.dumps({"grad": median(grad, f, w), "hvp": median(prod, f, w, v)}))
"""


def worker(src: str, pde: str, width: int, repeats: int, method: str = "auto") -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(WORKER)
    env = {"PYTHONPATH": src, "PATH": "/usr/bin:/bin"}
    import os

    env = {**os.environ, **env}
    done = subprocess.run([sys.executable, handle.name, pde, str(width), str(repeats), method], capture_output=True,
                          text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="8f9294a", help="the commit to compare against")
    parser.add_argument("--pdes", nargs="+", default=["wave"])
    parser.add_argument("--widths", nargs="+", type=int, default=[200])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--methods", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    old = Path(tempfile.mkdtemp()) / "before"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-f", "--detach", str(old), args.before], check=True,
                   capture_output=True)
    trees = {"before": str(old / "src"), "after": str(ROOT / "src")}
    rows = []
    try:
        for pde in args.pdes:
            for width in args.widths:
                times = {name: {"grad": [], "hvp": []} for name in trees}
                for k in range(args.rounds):
                    for name in (("before", "after") if k % 2 == 0 else ("after", "before")):
                        result = worker(trees[name], pde, width, args.repeats)
                        for op in ("grad", "hvp"):
                            times[name][op].append(result[op])
                med = {n: {op: statistics.median(t[op]) for op in t} for n, t in times.items()}
                rows.append([pde, str(width), "auto", *(f"{med[n][op] * 1e3:.1f}" for op in ("grad", "hvp") for n in trees),
                             f"{med['after']['grad'] / med['before']['grad']:.3f}",
                             f"{med['after']['hvp'] / med['before']['hvp']:.3f}"])
                print(rows[-1], flush=True)
                if args.methods:
                    for method in ("taylor", "forward", "reverse"):
                        r = [worker(trees["after"], pde, width, args.repeats, method) for _ in range(args.rounds)]
                        rows.append([pde, str(width), f"{method} (after)", "", f"{statistics.median(x['grad'] for x in r) * 1e3:.1f}",
                                     "", f"{statistics.median(x['hvp'] for x in r) * 1e3:.1f}", "", ""])
                        print(rows[-1], flush=True)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], capture_output=True)
    table = markdown_table(["pde", "width", "derivatives", "grad ms before", "grad ms after", "HVP ms before",
                            "HVP ms after", "grad after/before", "HVP after/before"], rows)
    save_report("layer-cost", "Problem layer: gradient and HVP time before and after (float32, 10,000 points)",
                [f"before: commit {args.before}; medians of {args.repeats} timings per process, median over "
                 f"{args.rounds} alternating rounds"], table, args.out)


if __name__ == "__main__":
    main()
