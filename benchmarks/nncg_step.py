"""Seconds per Hessian-vector product and per NNCG step, per PDE and width.

    python benchmarks/nncg_step.py [--widths 50] [--caps 1000 100] [--n-residual 10000]

For each case: the median seconds of one Hessian-vector product (inside a compiled loop
of products sharing one linearisation, as CG uses them), then the first NNCG step (Nystrom sketch of
60 products plus CG with the smallest cap), then one plain step per CG cap in ``--caps``
from the state it left, all with rank 60 and absolute CG tolerance 1e-16 (never met in
float32, so every step runs all its CG iterations), from the parameters after
``--adam-warmup`` Adam steps and ``--lbfgs-warmup`` L-BFGS iterations (NNCG follows
Adam+L-BFGS in the study), with the study's mu = 1e-2. Writes benchmarks/results/nncg-step-<machine>.md.
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
from _common import markdown_table, matmul_gflops, save_report  # noqa: E402

import jpinn  # noqa: E402
from jpinn.linalg import value_grad_hvp  # noqa: E402
from jpinn.optim import LBFGS, NNCG, Adam  # noqa: E402


def _hvp_loop(f, w, v, k):
    _, _, hvp = value_grad_hvp(f, w)
    return jax.lax.fori_loop(0, k, lambda i, x: 1e-3 * hvp(x) + v, v)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pdes", nargs="+", default=["convection", "reaction", "wave"])
    parser.add_argument("--widths", nargs="+", type=int, default=[50])
    parser.add_argument("--caps", nargs="+", type=int, default=[1000, 100])
    parser.add_argument("--n-residual", type=int, default=10_000)
    parser.add_argument("--adam-warmup", type=int, default=1000)
    parser.add_argument("--lbfgs-warmup", type=int, default=1000)
    parser.add_argument("--mu", type=float, default=1e-2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    jpinn.set_precision("float32")
    calib_before = matmul_gflops()
    rows = []
    for pde_name in args.pdes:
        for width in args.widths:
            pde = jpinn.pdes.make_pde(pde_name)
            data = jpinn.sample_collocation(pde, n_residual=args.n_residual, seed=0)
            model = jpinn.models.MLP(width=width, depth=3, key=jax.random.PRNGKey(0))
            f, w = jpinn.build_loss(pde, model, data)
            warm = [jpinn.Phase(Adam(1e-3), args.adam_warmup)]
            if args.lbfgs_warmup:
                warm.append(jpinn.Phase(LBFGS(), args.lbfgs_warmup))
            w = jpinn.train(f, w, warm, log_every=500, progress=False).w
            v = jax.random.normal(jax.random.PRNGKey(1), w.shape)
            loop = eqx.filter_jit(_hvp_loop)
            k = 10
            jax.block_until_ready(loop(f, w, v, k))
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                jax.block_until_ready(loop(f, w, v, k))
                times.append((time.perf_counter() - t0) / k)
            hvp_s = statistics.median(times)
            # the refresh step (Nystrom sketch + CG), with the smallest cap; its state
            # (preconditioner, warm start) then feeds one plain step per cap
            small = NNCG(cg_max_iter=min(args.caps), mu=args.mu)
            t0 = time.perf_counter()
            compiled = eqx.filter_jit(small.step).lower(f, w, small.init(f, w)).compile()
            compile_s = time.perf_counter() - t0
            state = small.init(f, w)
            t0 = time.perf_counter()
            w1, state1, out1 = compiled(f, w, state)
            jax.block_until_ready(w1)
            refresh_s = time.perf_counter() - t0
            for cap in args.caps:
                opt = NNCG(cg_max_iter=cap, mu=args.mu)
                step = eqx.filter_jit(opt.step).lower(f, w1, state1).compile()
                t0 = time.perf_counter()
                w2, _, out2 = step(f, w1, state1)
                jax.block_until_ready(w2)
                plain_s = time.perf_counter() - t0
                rows.append([
                    pde_name, str(width), f"{hvp_s * 1e3:.1f}", f"{refresh_s:.2f}", str(int(out1["hvps"])),
                    str(cap), f"{plain_s:.2f}", str(int(out2["cg_iterations"])), str(bool(out2["negative_curvature"])),
                    f"{plain_s / max(int(out2['cg_iterations']), 1) * 1e3:.1f}", f"{compile_s:.1f}",
                ])
                print(" | ".join(rows[-1]), flush=True)
    calib_after = matmul_gflops()
    header = ["pde", "width", "ms / HVP", f"s / refresh step (M = {min(args.caps)})", "HVPs", "CG cap M",
              "s / plain step", "CG iterations", "negative curvature", "ms / CG iteration", "compile s"]
    save_report("nncg-step", "NNCG step cost", [
        f"float32, n_residual {args.n_residual}, depth 3; NNCG rank 60, mu {args.mu:g}, CG tolerance 1e-16;"
        f" from the parameters after {args.adam_warmup} Adam (lr 1e-3) and up to {args.lbfgs_warmup} L-BFGS"
        " iterations. CG goes on through non-positive curvature (the study's CG; column 'negative"
        " curvature' says whether it met any), so each step runs its M iterations",
        f"calibration, 2048^3 float32 matmul: {calib_before:.0f} GFLOP/s before, {calib_after:.0f} after",
    ], markdown_table(header, rows), args.out)


if __name__ == "__main__":
    main()
