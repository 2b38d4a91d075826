"""Seconds per Adam step and compile seconds, per PDE, width and derivative method.

    python benchmarks/adam_step.py [--widths 50 200] [--n-residual 10000] [--dtype float32]

Each configuration runs the training driver's own compiled chunk (``lax.scan`` over
Adam steps), so the time is what ``scripts/train.py`` spends per iteration. The two
derivative methods are measured alternately (A B A B) and their ratio is reported; a
float32 matmul calibration runs before and after. Writes
benchmarks/results/adam-step-<machine>.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, matmul_gflops, save_report  # noqa: E402

import jpinn  # noqa: E402
from jpinn.optim import Adam  # noqa: E402
from jpinn.train import _chunk  # noqa: E402


def build(pde_name, width, n_residual, method, dtype):
    pde = jpinn.pdes.make_pde(pde_name)
    data = jpinn.sample_collocation(pde, n_residual=n_residual, seed=0, dtype=dtype)
    model = jpinn.models.MLP(width=width, depth=3, key=jax.random.PRNGKey(0), dtype=dtype)
    return jpinn.build_loss(pde, model, data, method=method)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pdes", nargs="+", default=["convection", "reaction", "wave"])
    parser.add_argument("--widths", nargs="+", type=int, default=[50, 200])
    parser.add_argument("--methods", nargs="+", default=["forward", "reverse"])
    parser.add_argument("--n-residual", type=int, default=10_000)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds-per-case", type=float, default=1.0,
                        help="target seconds of one timed chunk (sets the steps per chunk)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    dtype = jpinn.set_precision(args.dtype)
    calib_before = matmul_gflops()
    net_shape = matmul_gflops(args.n_residual, args.widths[-1], args.widths[-1])
    rows, records = [], []
    optimizer = Adam(1e-3)
    for pde_name in args.pdes:
        for width in args.widths:
            compiled, compile_s, per_step = {}, {}, {m: [] for m in args.methods}
            for method in args.methods:
                f, w = build(pde_name, width, args.n_residual, method, dtype)
                state = optimizer.init(f, w)
                t0 = time.perf_counter()
                probe = _chunk.lower((optimizer, f), w, state, jnp.int32(1), jnp.asarray(jnp.inf, w.dtype), 1).compile()
                compile_s[method] = time.perf_counter() - t0
                t0 = time.perf_counter()
                jax.block_until_ready(probe((optimizer, f), jnp.copy(w), jax.tree.map(jnp.copy, state), jnp.int32(1), jnp.asarray(jnp.inf, w.dtype), 1))
                one = time.perf_counter() - t0
                steps = max(2, min(200, int(args.seconds_per_case / max(one, 1e-4))))
                fn = _chunk.lower((optimizer, f), w, state, jnp.int32(steps), jnp.asarray(jnp.inf, w.dtype), steps).compile()
                compiled[method] = (fn, f, w, state, steps)
                jax.block_until_ready(fn((optimizer, f), jnp.copy(w), jax.tree.map(jnp.copy, state), jnp.int32(steps), jnp.asarray(jnp.inf, w.dtype), steps))
            for _ in range(args.repeats):  # alternate the methods: A B A B ...
                for method in args.methods:
                    fn, f, w, state, steps = compiled[method]
                    t0 = time.perf_counter()
                    jax.block_until_ready(fn((optimizer, f), jnp.copy(w), jax.tree.map(jnp.copy, state), jnp.int32(steps), jnp.asarray(jnp.inf, w.dtype), steps))
                    # the chunk adds one loss-and-gradient at its end: steps + 1 gradients
                    per_step[method].append((time.perf_counter() - t0) / (steps + 1))
            base = statistics.median(per_step[args.methods[0]])
            for method in args.methods:
                times = per_step[method]
                med = statistics.median(times)
                rows.append([
                    pde_name, str(width), method, f"{med * 1e3:.2f}",
                    f"{min(times) * 1e3:.2f}-{max(times) * 1e3:.2f}", f"{compile_s[method]:.2f}",
                    f"{med / base:.2f}",
                ])
                records.append((pde_name, width, method, med))
                print(" | ".join(rows[-1]), flush=True)
    calib_after = matmul_gflops()
    header = ["pde", "width", "derivatives", "ms / Adam step (median)", "min-max", "compile s",
              f"ratio to {args.methods[0]}"]
    table = markdown_table(header, rows)
    save_report("adam-step", "Adam step cost", [
        f"dtype: {args.dtype}, n_residual: {args.n_residual}, depth 3, matmul precision highest",
        f"calibration, 2048^3 float32 matmul: {calib_before:.0f} GFLOP/s before, {calib_after:.0f} after;"
        f" network-shaped ({args.n_residual} x {args.widths[-1]} @ {args.widths[-1]} x {args.widths[-1]}):"
        f" {net_shape:.0f} GFLOP/s",
        f"medians of {args.repeats} timed chunks per case, methods alternated; a step is one"
        " loss-and-gradient plus the Adam update",
    ], table, args.out)


if __name__ == "__main__":
    main()
