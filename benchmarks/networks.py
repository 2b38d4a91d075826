"""What each network's derivatives cost: the gradient and the Hessian-vector product of the
PINN loss per network and derivative method, at width 100 (depth 3, float32).

    python benchmarks/networks.py [--pde burgers] [--width 100] [--n-residual 10000] [--rounds 3]

The problem's conditions need first and second derivatives (Burgers: u, u_t, u_x, u_xx).
Networks: the MLP with tanh, sin and gelu (Taylor mode, which ``auto`` picks for them, and
nested forward mode beside it), the Fourier-feature MLP (64 features) and the modified MLP,
which have no Taylor streams (``auto`` falls back to nested forward mode; reverse mode
beside it). Every timing waits for its result; the table gives medians of ``--rounds``
alternating rounds of 5 calls each, and each network's time against the tanh MLP's with
``auto``. Writes benchmarks/results/networks-<machine>.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, matmul_gflops, save_report, timed  # noqa: E402

import jpinn  # noqa: E402
from jpinn.derivatives import resolve_method  # noqa: E402
from jpinn.linalg import hvp  # noqa: E402

NETWORKS = {
    "mlp tanh": lambda w, d, key: jpinn.models.MLP(w, d, in_size=2, activation="tanh", key=key),
    "mlp sin": lambda w, d, key: jpinn.models.MLP(w, d, in_size=2, activation="sin", key=key),
    "mlp gelu": lambda w, d, key: jpinn.models.MLP(w, d, in_size=2, activation="gelu", key=key),
    "fourier_mlp (64 features)": lambda w, d, key: jpinn.models.FourierMLP(w, d, in_size=2, fourier_features=64, key=key),
    "modified_mlp": lambda w, d, key: jpinn.models.ModifiedMLP(w, d, in_size=2, key=key),
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pde", default="burgers")
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--n-residual", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    jpinn.set_precision("float32")
    problem = jpinn.problems.make_problem(args.pde)
    data = jpinn.sample_points(problem, sampler="sobol", points={"residual": args.n_residual}, seed=0)
    terms = [problem.variables.parse(t) for c in problem.conditions() for t in c.terms]
    grad = eqx.filter_jit(lambda f, w: jax.grad(lambda w: f(w)[0])(w))
    product = eqx.filter_jit(hvp)
    before = matmul_gflops(2048)
    ops = {}
    for name, build in NETWORKS.items():
        model = build(args.width, 3, jax.random.PRNGKey(0))
        auto = resolve_method(model, terms)
        for method in dict.fromkeys([auto, "forward" if auto == "taylor" else "reverse"]):
            f, w = jpinn.build_loss(problem, model, data, method=method)
            v = jnp.full_like(w, 1e-2)
            jax.block_until_ready((grad(f, w), product(f, w, v)))
            ops[(name, method, method == auto)] = (f, w, v)
    times = {key: {"grad": [], "hvp": []} for key in ops}
    for _ in range(args.rounds):
        for key, (f, w, v) in ops.items():
            times[key]["grad"].append(timed(grad, f, w)[0])
            times[key]["hvp"].append(timed(product, f, w, v)[0])
    after = matmul_gflops(2048)
    base = {k: statistics.median(v) for k, v in times[("mlp tanh", "taylor", True)].items()}
    rows = []
    for (name, method, is_auto), t in times.items():
        g, h = statistics.median(t["grad"]), statistics.median(t["hvp"])
        rows.append([name, method + (" (auto)" if is_auto else ""), str(ops[(name, method, is_auto)][1].shape[0]),
                     f"{g * 1e3:.1f}", f"{h * 1e3:.1f}", f"{g / base['grad']:.2f}", f"{h / base['hvp']:.2f}"])
        print(rows[-1], flush=True)
    save_report("networks", f"Networks: derivative cost at width {args.width} ({args.pde}, float32)", [
        f"{args.pde}: terms {', '.join(sorted({t.name for t in terms}))}; {args.n_residual} residual points (Sobol),"
        f" depth 3, loss.block_size auto; medians of {args.rounds} alternating rounds of 5 calls, each waited for",
        f"calibration, 2048^3 float32 matmul: {before:.0f} GFLOP/s before, {after:.0f} after",
    ], markdown_table(["network", "derivatives", "parameters", "gradient ms", "HVP ms", "gradient / tanh MLP auto",
                       "HVP / tanh MLP auto"], rows), args.out)


if __name__ == "__main__":
    main()
