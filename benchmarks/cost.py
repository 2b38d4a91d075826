"""What each operation of a PINN optimizer costs, against the machine's matrix-multiply rate.

    python benchmarks/cost.py [--pdes ...] [--widths 50 200] [--dtypes float32 float64]
                              [--ops loss grad hvp sketch adam lbfgs nncg] [--cg 1000]
    python benchmarks/cost.py --compare [--widths 50 200]    # derivative methods x blocks
    python benchmarks/cost.py --donation                     # chunks with / without donation

For each PDE, width (depth 3) and dtype, with 10,000 residual points and the default
engine (``derivatives=auto``, ``loss.block_size=auto``): median seconds (min-max) of a loss
evaluation, a gradient, a Hessian-vector product (forward over reverse), a sketch block of
60 products sharing one linearisation (the Nystrom sketch), an Adam step, an L-BFGS inner
iteration (one outer step of 20 iterations / its iteration count) and an NNCG step with
``--cg`` CG iterations (sketch included; one run, not a median); each one's compile
seconds; XLA's memory estimate of the compiled program (arguments + outputs + temporaries,
``memory_analysis``); and achieved GFLOP/s: the FLOPs XLA's cost analysis counts for the
same operation compiled as one batch (``block_size=None``; XLA counts a loop body once, so
the blocked program cannot be counted itself, and rematerialised work is not useful work),
divided by the measured time, next to the GFLOP/s of a 2048^3 matrix product and of the
network's own product shape (10,000 x w times w x w) in the same dtype, measured in the same
run before and after. Loops (L-BFGS, NNCG) get no FLOP count.

``--compare`` times the gradient and the Hessian-vector product for every derivative method
and with and without blocks (the measurements behind the defaults).

Writes benchmarks/results/cost-<machine>.md (or cost-methods-<machine>.md).
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
from _common import markdown_table, matmul_gflops, save_report, timed  # noqa: E402

import jpinn  # noqa: E402
from jpinn.derivatives import resolve_method as _resolve  # noqa: E402
from jpinn.linalg import hvp, hvp_block, value_grad_hvp  # noqa: E402
from jpinn.optim import LBFGS, NNCG, Adam  # noqa: E402


def resolve_method(model, terms):
    """The method ``auto`` picks for these terms (names of the study's (x, t) problems)."""
    return _resolve(model, [jpinn.derivatives.STUDY_VARIABLES.parse(t) for t in terms])


OPS = ("loss", "grad", "hvp", "sketch", "adam", "lbfgs", "nncg")
SKETCH = 60


def _loss_value(f, w):
    return f(w)[0]


def _grad(f, w):
    return jax.grad(_loss_value, argnums=1)(f, w)


def _hvp(f, w, v):
    return hvp(f, w, v)


def _sketch(f, w, vectors):
    return hvp_block(value_grad_hvp(f, w)[2], vectors)


def _sketch_one_batch(f, w, vectors):  # for the FLOP count only: no lax.map loop
    return hvp_block(value_grad_hvp(f, w)[2], vectors, batch_size=None)


def _sketch_flops(f, w, vectors) -> float:
    """FLOPs of the one-batch sketch of all rows, from one-batch programs of 1 and 2 rows:
    the linearisation is shared and each row adds the same work, so the count is linear in
    the rows. (Compiling the 60-row program itself ran out of memory at width 200 in
    float64.)"""
    one, two = (_flops(_sketch_one_batch, f, w, vectors[:k]) for k in (1, 2))
    return one + (vectors.shape[0] - 1) * (two - one)


def _hvp_linearized(f, w, v, k=10):  # k products sharing one linearisation, as in CG
    product = value_grad_hvp(f, w)[2]
    return jax.lax.fori_loop(0, k, lambda i, x: 1e-3 * product(x) + v, v)


def _compiled(fn, *args):
    t0 = time.perf_counter()
    compiled = eqx.filter_jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t0


def _flops(fn, *args) -> float:
    analysis = eqx.filter_jit(fn).lower(*args).compile().compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    return float((analysis or {}).get("flops", float("nan")))


def _memory(compiled) -> float:
    try:
        m = compiled.compiled.memory_analysis()
        return (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
                - m.alias_size_in_bytes) / 2**20
    except Exception:  # not every backend reports it
        return float("nan")


def _problem(pde_name, width, dtype, n_residual, method="auto", block_size="auto"):
    pde = jpinn.pdes.make_pde(pde_name)
    data = jpinn.sample_collocation(pde, n_residual=n_residual, seed=0, dtype=dtype)
    model = jpinn.models.MLP(width=width, depth=3, key=jax.random.PRNGKey(0), dtype=dtype)
    f, w = jpinn.build_loss(pde, model, data, method=method, block_size=block_size)
    return pde, model, f, w


def _fmt(median, low, high, unit=1.0):
    return f"{median * unit:.4g} ({low * unit:.3g}-{high * unit:.3g})"


def _measure(pde_name, width, dtype, args, calib):
    """Rows [pde, width, dtype, op, ms, compile s, GFLOP, GFLOP/s, % of matmul, MiB]."""
    pde, model, f, w = _problem(pde_name, width, dtype, args.n_residual)
    one, _ = _problem(pde_name, width, dtype, args.n_residual, block_size=None)[2:]
    v = jax.random.normal(jax.random.PRNGKey(1), w.shape, dtype)
    vectors = jax.random.normal(jax.random.PRNGKey(2), (SKETCH, w.shape[0]), dtype)
    rows, times = [], {}
    method = resolve_method(model, pde.residual_terms)

    def row(op, seconds, compile_s, flops, mib, note=""):
        median, low, high = seconds
        times[op] = median
        gflops = flops / median / 1e9 if flops == flops else float("nan")
        cells = [pde_name, str(width), jnp.dtype(dtype).name, op + note, _fmt(median, low, high, 1e3),
                 f"{compile_s:.1f}", f"{flops / 1e9:.2f}" if flops == flops else "-",
                 f"{gflops:.0f}" if gflops == gflops else "-",
                 f"{100 * gflops / calib:.0f}%" if gflops == gflops else "-", f"{mib:.0f}"]
        rows.append(cells)
        print(" | ".join(cells), flush=True)

    simple = {"loss": (_loss_value, (w,)), "grad": (_grad, (w,)), "hvp": (_hvp, (w, v)),
              "sketch": (_sketch, (w, vectors))}
    for op in [o for o in OPS[:4] if o in args.ops]:
        fn, rest = simple[op]
        compiled, compile_s = _compiled(fn, f, *rest)
        jax.block_until_ready(compiled(f, *rest))
        repeats = args.repeats if op != "sketch" else max(1, args.repeats // 3)
        if not args.flops:
            flops = float("nan")
        elif op == "sketch":
            flops = _sketch_flops(one, *rest)
        else:
            flops = _flops(fn, one, *rest)
        row(op, timed(lambda *a: compiled(f, *a), *rest, repeats=repeats), compile_s, flops, _memory(compiled),
            f" ({method})" if op == "loss" else (f" ({SKETCH} vectors)" if op == "sketch" else ""))

    def step_op(op, optimizer, per, repeats):
        state = optimizer.init(f, w)
        compiled, compile_s = _compiled(optimizer.step, f, w, state)
        out = compiled(f, w, state)
        jax.block_until_ready(out)
        count = max(int(per(out[2])), 1)
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            jax.block_until_ready(compiled(f, w, state))
            runs.append((time.perf_counter() - t0) / count)
        flops = float("nan")
        if op == "adam step" and args.flops:
            flops = _flops(optimizer.step, one, w, optimizer.init(one, w))
        seconds = (statistics.median(runs), min(runs), max(runs))
        row(op, seconds, compile_s, flops, _memory(compiled))
        return out

    if "adam" in args.ops:
        step_op("adam step", Adam(1e-3), lambda info: 1, args.repeats)
    if "lbfgs" in args.ops:
        step_op("lbfgs iteration", LBFGS(), lambda info: info["iterations"], max(1, args.repeats // 2))
    if "nncg" in args.ops:
        nncg = NNCG(cg_max_iter=args.cg, cg_tol=0.0, cg_rtol=0.0)
        out = step_op(f"nncg step (M={args.cg})", nncg, lambda info: 1, 1)
        hvps = int(out[2]["hvps"])
        rows[-1][3] += f": {int(out[2]['cg_iterations'])} CG it., {hvps} HVPs, {times[rows[-1][3]] / hvps * 1e3:.1f} ms / HVP"
    return rows, times


def _calibrate(dtype, widths):
    rates = {"2048": matmul_gflops(2048, dtype=dtype)}
    for width in widths:
        rates[str(width)] = matmul_gflops(10_000, width, width, dtype=dtype)
    return rates


def run_costs(args):
    rows, targets, notes = [], [], []
    for dtype_name in args.dtypes:
        dtype = jpinn.set_precision(dtype_name)
        before = _calibrate(dtype, args.widths)
        for pde_name in args.pdes:
            for width in args.widths:
                r, times = _measure(pde_name, width, dtype, args, before["2048"])
                rows += r
                if "grad" in times and "hvp" in times:
                    targets.append((dtype_name, pde_name, width, times, r))
                _save_costs(args, rows, targets, notes + [f"{dtype_name}: calibration before: "
                            + ", ".join(f"{k} {v:.0f}" for k, v in before.items()) + " (run in progress)"])
        after = _calibrate(dtype, args.widths)
        notes.append(
            f"{dtype_name} matmul GFLOP/s before / after: 2048^3 {before['2048']:.0f} / {after['2048']:.0f}; "
            + "; ".join(f"10000x{w} @ {w}x{w} {before[str(w)]:.0f} / {after[str(w)]:.0f}" for w in args.widths)
        )
    _save_costs(args, rows, targets, notes)


def _save_costs(args, rows, targets, notes):
    """Write the table so far (called after every case, so a failed run keeps its rows)."""
    header = ["pde", "width", "dtype", "operation", "ms, median (min-max)", "compile s", "GFLOP (XLA)",
              "GFLOP/s", "% of 2048^3 matmul (before)", "MiB (XLA)"]
    table = markdown_table(header, rows)
    summary = []
    for dtype_name, pde_name, width, times, r in targets:
        rate = {row[3].split(" ")[0]: f"{row[7]} ({row[8]})" for row in r}
        summary.append([dtype_name, pde_name, str(width), rate.get("grad", "-"), rate.get("hvp", "-"),
                        f"{times['hvp'] / times['grad']:.2f}"])
    table += "\n\nTargets (issue 5): gradient and HVP GFLOP/s at width 200 >= half the matmul rate; " \
             "wave HVP <= 4x its gradient.\n\n" + markdown_table(
                 ["dtype", "pde", "width", "grad GFLOP/s (% of 2048^3 matmul)", "HVP GFLOP/s (%)",
                  "HVP / grad time"], summary)
    save_report("cost", "Cost of each operation", [
        f"n_residual {args.n_residual}, depth 3, derivatives auto, loss.block_size auto; "
        f"medians of {args.repeats} runs after a warm-up (sketch: a third, L-BFGS: half as many; NNCG: one run)",
        *notes,
    ], table, args.out)


def run_compare(args):
    rows = []
    dtype = jpinn.set_precision(args.dtypes[0])
    before = matmul_gflops(2048, dtype=dtype)
    for pde_name in args.pdes:
        for width in args.widths:
            base = None
            for method in ("reverse", "forward", "taylor"):
                for block in ("auto", None):
                    pde, model, f, w = _problem(pde_name, width, dtype, args.n_residual, method, block)
                    v = jax.random.normal(jax.random.PRNGKey(1), w.shape, dtype)
                    grad = eqx.filter_jit(_grad)
                    product = eqx.filter_jit(_hvp)
                    linear = eqx.filter_jit(_hvp_linearized)
                    jax.block_until_ready((grad(f, w), product(f, w, v), linear(f, w, v)))
                    g = timed(lambda: grad(f, w), repeats=args.repeats)[0]
                    h = timed(lambda: product(f, w, v), repeats=args.repeats)[0]
                    lin = timed(lambda: linear(f, w, v), repeats=args.repeats)[0] / 10
                    base = base or (g, h)
                    auto = resolve_method(model, pde.residual_terms) == method and block == "auto"
                    rows.append([pde_name, str(width), method + (" (auto)" if auto else ""),
                                 str(f.block_size), f"{g * 1e3:.1f}", f"{h * 1e3:.1f}", f"{lin * 1e3:.1f}",
                                 f"{base[0] / g:.2f}", f"{base[1] / h:.2f}"])
                    print(" | ".join(rows[-1]), flush=True)
    after = matmul_gflops(2048, dtype=dtype)
    header = ["pde", "width", "method", "block_size", "grad ms", "HVP ms",
              "HVP ms, 10 from one linearisation (CG)", "grad speed-up vs first row (reverse, blocks)",
              "HVP speed-up vs first row"]
    save_report("cost-methods", "Derivative methods and blocks: gradient and HVP", [
        f"{args.dtypes[0]}, n_residual {args.n_residual}, depth 3; medians of {args.repeats} runs; "
        "block_size None = one batch",
        f"calibration, 2048^3 matmul: {before:.0f} GFLOP/s before, {after:.0f} after",
    ], markdown_table(header, rows), args.out)


def run_donation(args):
    """One phase's chunk program with and without donating w and the optimizer state:
    XLA's memory estimate and the median seconds per chunk, alternated A B A B."""
    import importlib

    train_module = importlib.import_module("jpinn.train")  # the module, not jpinn.train the function

    dtype = jpinn.set_precision(args.dtypes[0])
    rows = []
    for pde_name in args.pdes:
        for width in args.widths:
            _, _, f, w = _problem(pde_name, width, dtype, args.n_residual)
            for label, optimizer, steps in (("adam", Adam(1e-3), 20), ("lbfgs", LBFGS(), 1)):
                programs = {}
                for donate in ("all-except-first", "none"):
                    chunk = eqx.filter_jit(train_module._run_chunk, donate=donate)
                    state = optimizer.init(f, w)
                    fixed = (optimizer, f)
                    args_ = lambda: (fixed, jnp.copy(w), jax.tree.map(jnp.copy, state))  # noqa: E731
                    compiled = chunk.lower(*args_(), jnp.int32(steps), jnp.asarray(jnp.inf, w.dtype), steps).compile()
                    programs[donate] = (compiled, args_)
                runs = {k: [] for k in programs}
                for _ in range(args.repeats):
                    for donate, (compiled, args_) in programs.items():
                        inputs = args_()
                        jax.block_until_ready(inputs)
                        t0 = time.perf_counter()
                        jax.block_until_ready(compiled(*inputs, jnp.int32(steps), jnp.asarray(jnp.inf, w.dtype), steps))
                        runs[donate].append(time.perf_counter() - t0)
                cells = [pde_name, str(width), f"{label} x {steps} steps"]
                for donate, (compiled, _) in programs.items():
                    cells += [f"{statistics.median(runs[donate]) * 1e3:.1f}", f"{_memory(compiled):.0f}"]
                rows.append(cells)
                print(" | ".join(cells), flush=True)
    header = ["pde", "width", "chunk", "ms, donated", "MiB (XLA), donated", "ms, not donated", "MiB, not donated"]
    save_report("cost-donation", "Donating parameters and optimizer state to the chunk program", [
        f"{args.dtypes[0]}, n_residual {args.n_residual}, depth 3; medians of {args.repeats} runs, alternated",
    ], markdown_table(header, rows), args.out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pdes", nargs="+", default=["convection", "reaction", "wave"])
    parser.add_argument("--widths", nargs="+", type=int, default=[50, 200])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    parser.add_argument("--ops", nargs="+", default=list(OPS), choices=OPS)
    parser.add_argument("--n-residual", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cg", type=int, default=1000, help="CG iterations of the NNCG step (M)")
    parser.add_argument("--no-flops", dest="flops", action="store_false",
                        help="skip the one-batch compilations that count FLOPs")
    parser.add_argument("--compare", action="store_true", help="derivative methods x blocks instead")
    parser.add_argument("--donation", action="store_true", help="chunks with and without buffer donation instead")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    for name in args.pdes:
        jpinn.pdes.make_pde(name)  # unknown names fail here, before any measurement
    if any(w <= 0 for w in args.widths) or args.n_residual <= 0 or args.repeats <= 0 or args.cg <= 0:
        parser.error("--widths, --n-residual, --repeats and --cg must be positive")
    if args.compare:
        run_compare(args)
    elif args.donation:
        run_donation(args)
    else:
        run_costs(args)


if __name__ == "__main__":
    main()
