"""Each optimizer operation against its own building blocks, measured side by side.

    python benchmarks/blocks.py [--pdes ...] [--widths 50 200] [--repeats 7] [--cg 100]

For each PDE and width (depth 3, 10,000 residual points, float32, the default engine), in
one process, every timing waited for (``block_until_ready``) before the clock is read:

- ``loss+grad``: one loss-and-gradient evaluation, the unit of L-BFGS and Adam;
- ``HVP in CG``: the marginal cost of one Hessian-vector product from a shared
  linearisation, as CG uses them: (time of 40 chained products - time of 1) / 39, and the
  linearisation as the time of 1 less that marginal product (the chain uses no gradient, so
  XLA keeps only the forward residuals the products need: near 0 at every size measured);
- ``Adam step`` / loss+grad;
- ``L-BFGS step`` (one outer step of up to 20 inner iterations, history 100, strong Wolfe,
  after 3 warm outer steps) / (its evaluations x loss+grad);
- ``sketch``: the Nystrom preconditioner of NNCG (the linearisation, 60 products, QR,
  Cholesky, SVD) / (the linearisation + 60 chained products), and / its own 60 products
  alone (``hvp_block``: the products as the sketch forms them, one vmapped row at a time,
  without the QR, Cholesky and SVD): the first ratio is the whole overhead, the second the
  linear algebra's share of it;
- ``NNCG step`` with ``--cg`` CG iterations (the sketch included) / (one loss+grad, which
  its linearisation also gives, + its products x HVP in CG + its Armijo losses).

Each operation and its blocks are timed alternately, ``--repeats`` rounds, and the table gives
medians. Within a round an operation shorter than a second runs 3 to 10 times in a row (each
call waited for) and counts its median call: a single call timed right after a
several-second sketch came out up to 1.5x slower than the same call timed among its own
kind (the Adam step read 1.28-1.55 loss+grads that way; timed in a row it is 1.0).
``--quick`` times only loss+grad and the Adam step.

A ratio near 1 means the operation costs what its products cost; above 1 is the
optimizer's own overhead (the two-loop recursion, line-search bookkeeping, QR and SVD...).
The issue's targets: L-BFGS <= 1.15, sketch <= 1.2.

Writes benchmarks/results/blocks-<machine>.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, matmul_gflops, save_report  # noqa: E402
from cost import _problem  # noqa: E402

import jpinn  # noqa: E402
from jpinn.linalg import hvp_block, nystrom, value_grad_hvp  # noqa: E402
from jpinn.optim import LBFGS, NNCG, Adam  # noqa: E402

RANK = 60


def _loss_and_grad(f, w):
    (loss, _), grad = jax.value_and_grad(f, has_aux=True)(w)
    return loss, grad


def _chain(f, w, v, k):
    """k products from one linearisation, each feeding the next (no product can be skipped)."""
    product = value_grad_hvp(f, w)[2]
    return jax.lax.fori_loop(0, k, lambda i, x: 1e-3 * product(x) + v, v)


def _sketch(f, w, key):
    product = value_grad_hvp(f, w)[2]
    return nystrom(lambda vectors: hvp_block(product, vectors), key, w.shape[0], RANK, dtype=w.dtype)


def _products(f, w, vectors):
    return hvp_block(value_grad_hvp(f, w)[2], vectors)


def _clock(fn) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t0


def _calls(seconds: float, burst_s: float = 1.0) -> int:
    # an op under ``burst_s``: 3 to 10 calls in a row (the first may pay for what ran before it)
    return 1 if seconds >= burst_s else max(3, min(10, int(burst_s / max(seconds, 1e-6))))


def _alternate(ops: dict, repeats: int) -> dict:
    """Median seconds of each (already compiled) op, timed in turn, ``repeats`` rounds; an op
    shorter than a second runs 3 to 10 times in a row within a round (``_calls``), every call
    waited for, and gives that round its median call."""
    runs = {name: [] for name in ops}
    calls = {name: _calls(_clock(fn)) for name, fn in ops.items()}
    for _ in range(repeats):
        for name, fn in ops.items():
            runs[name].append(statistics.median(_clock(fn) for _ in range(calls[name])))
    return {name: statistics.median(t) for name, t in runs.items()}


def measure(pde_name: str, width: int, args) -> list[list[str]]:
    dtype = jnp.float32
    _, _, f, w = _problem(pde_name, width, dtype, args.n_residual)
    v = jax.random.normal(jax.random.PRNGKey(1), w.shape, dtype)
    key = jax.random.PRNGKey(2)
    loss_grad = eqx.filter_jit(_loss_and_grad)
    chain = eqx.filter_jit(_chain)
    sketch = eqx.filter_jit(_sketch)
    products = eqx.filter_jit(_products)
    vectors = jax.random.normal(jax.random.PRNGKey(3), (RANK, w.shape[0]), dtype)
    adam, lbfgs = Adam(1e-3), LBFGS()
    adam_step, lbfgs_step = eqx.filter_jit(adam.step), eqx.filter_jit(lbfgs.step)
    adam_state = adam.init(f, w)
    if args.quick:
        jax.block_until_ready((loss_grad(f, w), adam_step(f, w, adam_state)))
        t = _alternate({"loss+grad": lambda: loss_grad(f, w), "adam": lambda: adam_step(f, w, adam_state)}, args.repeats)
        rows = [[pde_name, str(width), "loss+grad", f"{t['loss+grad'] * 1e3:.2f}", "", ""],
                [pde_name, str(width), "Adam step", f"{t['adam'] * 1e3:.2f}", "1 x loss+grad",
                 f"{t['adam'] / t['loss+grad']:.2f}"]]
        for row in rows:
            print(" | ".join(row), flush=True)
        return rows
    # L-BFGS from its state after 3 warm outer steps (the memory filled, as in a phase)
    lbfgs_state = lbfgs.init(f, w)
    w_l = w
    for _ in range(3):
        w_l, lbfgs_state, _ = lbfgs_step(f, w_l, lbfgs_state)
    jax.block_until_ready((w_l, lbfgs_state))
    warm = [loss_grad(f, w), chain(f, w, v, 1), chain(f, w, v, 40), sketch(f, w, key), products(f, w, vectors), adam_step(f, w, adam_state)]
    jax.block_until_ready(warm)
    evaluations = []

    def lbfgs_once():
        out = lbfgs_step(f, w_l, lbfgs_state)
        evaluations.append(out[2]["evaluations"])
        return out

    jax.block_until_ready(lbfgs_once())
    evaluations.clear()
    ops = {
        "loss+grad": lambda: loss_grad(f, w),
        "chain1": lambda: chain(f, w, v, 1),
        "chain40": lambda: chain(f, w, v, 40),
        "sketch": lambda: sketch(f, w, key),
        "products": lambda: products(f, w, vectors),
        "adam": lambda: adam_step(f, w, adam_state),
        "lbfgs": lbfgs_once,
    }
    t = _alternate(ops, args.repeats)
    n_eval = statistics.median(int(e) for e in evaluations)
    hvp = (t["chain40"] - t["chain1"]) / 39
    linearisation = t["chain1"] - hvp
    sketch_blocks = linearisation + RANK * hvp
    rows = [
        [pde_name, str(width), "loss+grad", f"{t['loss+grad'] * 1e3:.2f}", "", ""],
        [pde_name, str(width), "HVP in CG (marginal)", f"{hvp * 1e3:.2f}", f"linearisation {linearisation * 1e3:.1f} ms",
         ""],
        [pde_name, str(width), "Adam step", f"{t['adam'] * 1e3:.2f}", "1 x loss+grad", f"{t['adam'] / t['loss+grad']:.2f}"],
        [pde_name, str(width), "L-BFGS outer step", f"{t['lbfgs'] * 1e3:.1f}", f"{n_eval} x loss+grad",
         f"{t['lbfgs'] / (n_eval * t['loss+grad']):.2f}"],
        [pde_name, str(width), f"sketch ({RANK} HVPs)", f"{t['sketch'] * 1e3:.1f}",
         f"linearisation + {RANK} x HVP", f"{t['sketch'] / sketch_blocks:.2f}"],
        [pde_name, str(width), f"sketch ({RANK} HVPs)", f"{t['sketch'] * 1e3:.1f}",
         f"its own {RANK} products (hvp_block, {t['products'] * 1e3:.1f} ms)", f"{t['sketch'] / t['products']:.2f}"],
        [pde_name, str(width), f"{RANK} products as the sketch forms them", f"{t['products'] * 1e3:.1f}",
         f"linearisation + {RANK} x HVP", f"{t['products'] / sketch_blocks:.2f}"],
    ]
    if args.cg:
        nncg = NNCG(cg_max_iter=args.cg, cg_tol=0.0, cg_rtol=0.0, rank=RANK)
        step = eqx.filter_jit(nncg.step)
        state = nncg.init(f, w)
        out = step(f, w, state)
        jax.block_until_ready(out)
        hvps = int(out[2]["hvps"])
        seconds = statistics.median(_clock(lambda: step(f, w, state)) for _ in range(max(1, args.repeats // 3)))
        blocks = t["loss+grad"] + hvps * hvp + (1 + int(out[2]["backtracks"])) * t["loss+grad"] / 2
        rows.append([pde_name, str(width), f"NNCG step (CG {args.cg})", f"{seconds * 1e3:.0f}",
                     f"loss+grad + {hvps} x HVP + Armijo losses", f"{seconds / blocks:.2f}"])
    for row in rows:
        print(" | ".join(row), flush=True)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pdes", nargs="+", default=["convection", "reaction", "wave"])
    parser.add_argument("--widths", nargs="+", type=int, default=[50, 200])
    parser.add_argument("--n-residual", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cg", type=int, default=100, help="CG iterations of the NNCG step (0: skip it)")
    parser.add_argument("--quick", action="store_true", help="only loss+grad and the Adam step")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    jpinn.set_precision("float32")
    before = matmul_gflops(2048)
    rows = []
    for pde_name in args.pdes:
        for width in args.widths:
            rows += measure(pde_name, width, args)
    after = matmul_gflops(2048)
    save_report("blocks-quick" if args.quick else "blocks", "Operations against their building blocks (float32)", [
        f"n_residual {args.n_residual}, depth 3, derivatives auto, loss.block_size auto; medians of "
        f"{args.repeats} alternating rounds (NNCG: {max(1, args.repeats // 3)} runs); every timing waited for",
        "Armijo losses counted at half a loss+grad each (a loss alone, no gradient)",
        f"calibration, 2048^3 float32 matmul: {before:.0f} GFLOP/s before, {after:.0f} after",
    ], markdown_table(["pde", "width", "operation", "ms (median)", "building blocks", "ratio"], rows), args.out)


if __name__ == "__main__":
    main()
