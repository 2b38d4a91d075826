"""E runs trained as one ensemble (jpinn.ensemble.train_ensemble) against the same E runs
trained one after another (jpinn.train.train), at the `cpu` profile's size.

    python benchmarks/ensemble.py [--sizes 1 4 16] [--optimizers adam lbfgs] [--iterations 500]

The members differ in seed (network, collocation points) and, for Adam, in learning rate
(1e-3 and 1e-2 alternately: the cpu profile's grid); L-BFGS members differ in seed. The
sequential runs share one process, so members with equal settings reuse a compiled chunk
(the most favourable case for the sequential side: a sweep compiles once per process).
Reported: training seconds (the phases' own clocks, compilation excluded) and compile
seconds, medians over ``--repeats`` alternating repetitions (sequential, ensemble,
sequential, ...), the per-run speed-up, and how far each member's final loss lies from its
solo run's. Calibrated by a matrix product before and after. Saved to
benchmarks/results/ensemble-<machine>.md (or --out).
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
from jpinn.ensemble import train_ensemble  # noqa: E402
from jpinn.optim import LBFGS, Adam  # noqa: E402
from jpinn.train import Phase, train  # noqa: E402


def members(E: int, optimizer: str, args) -> list:
    out = []
    for k in range(E):
        pde = jpinn.pdes.make_pde(args.pde)
        data = jpinn.sample_collocation(pde, n_residual=args.n_residual, seed=100 + k, dtype=jnp.float32)
        model = jpinn.models.MLP(width=args.width, depth=3, key=jax.random.PRNGKey(100 + k), dtype=jnp.float32)
        f, w0 = jpinn.build_loss(pde, model, data)
        if optimizer == "adam":
            phase = Phase(Adam(learning_rate=(1e-3, 1e-2)[k % 2]), args.iterations)
        else:
            phase = Phase(LBFGS(), args.iterations)
        out.append((f, w0, [phase]))
    return out


def sequential(runs, log_every):
    t0 = time.perf_counter()
    # compile_ahead off: the phases' own clocks must not include a background compilation
    results = [train(f, w0, phases, log_every=log_every, progress=False, compile_ahead=False)
               for f, w0, phases in runs]
    wall = time.perf_counter() - t0
    return results, wall, sum(p.seconds for r in results for p in r.phases)


def ensemble(runs, log_every):
    t0 = time.perf_counter()
    results = train_ensemble([r[0] for r in runs], [r[1] for r in runs], [r[2] for r in runs],
                             log_every=log_every, progress=False, compile_ahead=False)
    wall = time.perf_counter() - t0
    return results, wall, max(p.seconds for r in results for p in r.phases)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 4, 16])
    parser.add_argument("--optimizers", nargs="+", default=["adam", "lbfgs"], choices=["adam", "lbfgs"])
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--pde", default="convection")
    parser.add_argument("--width", type=int, default=50)
    parser.add_argument("--n-residual", type=int, default=2000)
    parser.add_argument("--log-every", type=int, default=250)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    jpinn.set_precision("float32")

    before = matmul_gflops()
    rows = []
    for optimizer in args.optimizers:
        for E in args.sizes:
            runs = members(E, optimizer, args)
            seq_train, ens_train, seq_wall, ens_wall = [], [], [], []
            for repeat in range(args.repeats):
                jax.clear_caches()  # each repetition compiles afresh, as a new process would
                solo, wall, seconds = sequential(runs, args.log_every)
                seq_wall.append(wall)
                seq_train.append(seconds)
                jax.clear_caches()
                together, wall, seconds = ensemble(runs, args.log_every)
                ens_wall.append(wall)
                ens_train.append(seconds)
                print(f"{optimizer} E={E} repeat {repeat}: sequential {seq_train[-1]:.2f} s train / {seq_wall[-1]:.2f} s wall,"
                      f" ensemble {ens_train[-1]:.2f} s train / {ens_wall[-1]:.2f} s wall", flush=True)
            deviation = max(abs(e.phases[-1].loss - s.phases[-1].loss) / abs(s.phases[-1].loss)
                            for s, e in zip(solo, together))
            # the yardstick: the same solo runs from w0 nudged by one float32 ulp (relative)
            eps = float(jnp.finfo(jnp.float32).eps)
            nudged = [(f, w0 * (1 + eps * jnp.sign(jax.random.normal(jax.random.PRNGKey(7), w0.shape))), p)
                      for f, w0, p in runs]
            spread = max(abs(n.phases[-1].loss - s.phases[-1].loss) / abs(s.phases[-1].loss)
                         for s, n in zip(solo, sequential(nudged, args.log_every)[0]))
            iterations = sum(p.iterations for r in solo for p in r.phases) / E
            st, et = statistics.median(seq_train), statistics.median(ens_train)
            sw, ew = statistics.median(seq_wall), statistics.median(ens_wall)
            rows.append([
                optimizer, str(E), f"{iterations:.0f}",
                f"{st:.2f} [{min(seq_train):.2f}, {max(seq_train):.2f}]",
                f"{et:.2f} [{min(ens_train):.2f}, {max(ens_train):.2f}]",
                f"{st / E * 1e3 / iterations:.3f}", f"{et / E * 1e3 / iterations:.3f}", f"{st / et:.2f}x",
                f"{sw:.1f}", f"{ew:.1f}", f"{sw / ew:.2f}x", f"{deviation:.1e}", f"{spread:.1e}",
            ])
    after = matmul_gflops()
    header = ["optimizer", "E", "iterations per run", "sequential train s", "ensemble train s",
              "sequential ms/it/run", "ensemble ms/it/run", "speed-up (train)", "sequential wall s",
              "ensemble wall s", "speed-up (wall)", "max final-loss deviation", "nudged solo deviation"]
    notes = [
        f"problem: {args.pde}, MLP width {args.width} depth 3, {args.n_residual} residual points (the cpu profile's size), float32",
        f"{args.repeats} repetitions, alternating sequential / ensemble, each after jax.clear_caches(); medians [min, max]",
        "train s: the phases' clocks (compilation excluded); wall s: the whole call, compilation and start-up included",
        "deviation: max over members of |final loss (ensemble) - final loss (solo)| / final loss (solo);"
        " nudged solo: the same for a solo run started from w0 (1 + eps s), s a random sign per entry,"
        " eps float32's: how far rounding alone carries a run on this problem (the yardstick)",
        f"calibration, 2048^3 float32 matmul: {before:.0f} GFLOP/s before, {after:.0f} GFLOP/s after",
    ]
    save_report("ensemble", "Ensembles against sequential runs", notes, markdown_table(header, rows), args.out)


if __name__ == "__main__":
    main()
