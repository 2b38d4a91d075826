"""Seconds per L-BFGS outer step, inner iteration and evaluation, per PDE and width.

    python benchmarks/lbfgs_step.py [--widths 50 200] [--n-residual 10000] [--adam-warmup 200]

Each case starts from the parameters after ``--adam-warmup`` Adam steps (an L-BFGS phase
in the study starts after Adam), compiles the outer step (20 inner iterations, history
100, the reference's strong-Wolfe search), then times ``--steps`` outer steps one by one
and reports medians. Beside it: one loss-and-gradient evaluation, so the line search's
and the two-loop recursion's share is visible. A float32 matmul calibration runs before
and after. Writes benchmarks/results/lbfgs-step-<machine>.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import equinox as eqx
import jax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, matmul_gflops, save_report, timed  # noqa: E402

import jpinn  # noqa: E402
from jpinn.optim import LBFGS, Adam  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pdes", nargs="+", default=["convection", "reaction", "wave"])
    parser.add_argument("--widths", nargs="+", type=int, default=[50, 200])
    parser.add_argument("--n-residual", type=int, default=10_000)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--adam-warmup", type=int, default=200)
    parser.add_argument("--steps", type=int, default=5, help="outer steps timed per case")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    dtype = jpinn.set_precision(args.dtype)
    calib_before = matmul_gflops()
    rows = []
    lbfgs = LBFGS()
    for pde_name in args.pdes:
        for width in args.widths:
            pde = jpinn.pdes.make_pde(pde_name)
            data = jpinn.sample_collocation(pde, n_residual=args.n_residual, seed=0, dtype=dtype)
            model = jpinn.models.MLP(width=width, depth=3, key=jax.random.PRNGKey(0), dtype=dtype)
            f, w = jpinn.build_loss(pde, model, data)
            if args.adam_warmup:
                w = jpinn.train(f, w, [jpinn.Phase(Adam(1e-3), args.adam_warmup)],
                                log_every=args.adam_warmup, progress=False).w
            evaluate = eqx.filter_jit(lambda f, w: jax.value_and_grad(f, has_aux=True)(w))
            jax.block_until_ready(evaluate(f, w))
            eval_median, _, _ = timed(evaluate, f, w, repeats=5)
            state = eqx.filter_jit(lbfgs.init)(f, w)
            t0 = time.perf_counter()
            step = eqx.filter_jit(lbfgs.step)
            jax.block_until_ready(step(f, w, state))  # compile (and a first step, discarded)
            compile_s = time.perf_counter() - t0
            per_step, per_iter, per_eval, iters, evals = [], [], [], [], []
            for _ in range(args.steps):
                t0 = time.perf_counter()
                w, state, out = step(f, w, state)
                jax.block_until_ready(w)
                seconds = time.perf_counter() - t0
                n_iter, n_eval = int(out["iterations"]), int(out["evaluations"])
                per_step.append(seconds)
                per_iter.append(seconds / max(n_iter, 1))
                per_eval.append(seconds / max(n_eval, 1))
                iters.append(n_iter)
                evals.append(n_eval)
                if int(out["status"]) != 0:
                    break
            med = statistics.median
            rows.append([
                pde_name, str(width), f"{med(per_step):.3f}", f"{min(per_step):.3f}-{max(per_step):.3f}",
                f"{med(per_iter) * 1e3:.1f}", f"{med(iters):.0f}", f"{med(evals):.0f}",
                f"{med(per_eval) * 1e3:.1f}", f"{eval_median * 1e3:.1f}", f"{compile_s:.1f}",
            ])
            print(" | ".join(rows[-1]), flush=True)
    calib_after = matmul_gflops()
    header = ["pde", "width", "s / outer step (median)", "min-max", "ms / inner iteration",
              "inner iterations / step", "evaluations / step", "ms / evaluation in L-BFGS",
              "ms / loss-and-gradient alone", "compile + first step s"]
    table = markdown_table(header, rows)
    save_report("lbfgs-step", "L-BFGS step cost", [
        f"dtype: {args.dtype}, n_residual: {args.n_residual}, depth 3, matmul precision highest;"
        f" L-BFGS history 100, max_iter 20, strong Wolfe; start after {args.adam_warmup} Adam steps (lr 1e-3)",
        f"calibration, 2048^3 float32 matmul: {calib_before:.0f} GFLOP/s before, {calib_after:.0f} after",
        f"medians over {args.steps} outer steps per case",
    ], table, args.out)


if __name__ == "__main__":
    main()
