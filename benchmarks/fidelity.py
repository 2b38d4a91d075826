"""Issue 15's numbers: Lanczos on the review's float32 spectrum before and after the
breakdown fix, and the Nystrom Cholesky fallback against the companion code's.

1. A = Q diag(lambda) Q^T, n = 5000, three outliers (1e4, 3e4, 1e5) over a bulk of 4,997
   eigenvalues uniform in [-0.05, 0.5]; 100 Lanczos steps from a Rademacher probe, in
   float32 and float64, with the breakdown test of the commit given by ``--before`` (read
   from git history) and with this tree's. Against the dense eigendecomposition (NumPy
   eigh): the spectral measure along the probe, its moments 1-3, the bulk's central
   moments 4, 6, 8 and the largest CDF difference over the bulk.
2. The Cholesky fallback on an indefinite 60 x 60 matrix with top eigenvalue 1e4 (the
   matrix of tests/test_fidelity.py): the largest Nystrom eigenvalue of jpinn's consistent
   shift and of the companion code's shift of the core alone (NumPy, PAPER.md's formulas).

    python benchmarks/fidelity.py [--n 5000] [--before f1ade07]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from _common import markdown_table, save_report

jax.config.update("jax_enable_x64", True)
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def old_lanczos(commit: str):
    """``lanczos`` as it was at ``commit`` (None when git cannot show it)."""
    try:
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:src/jpinn/linalg/lanczos.py"],
                                check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("lanczos_before")
    exec(compile(source, f"{commit}:lanczos.py", "exec"), module.__dict__)
    return module.lanczos


def measure_measure(values, weights, eigenvalues, exact):
    moments = [abs(np.sum(weights * values**k) / np.sum(exact * eigenvalues**k) - 1) for k in (1, 2, 3)]
    bulk, nodes = eigenvalues < 1, values < 1

    def central(x, w, k):
        return np.sum(w * (x - 0.225) ** k) / np.sum(w)

    bulk_moments = [abs(central(values[nodes], weights[nodes], k) / central(eigenvalues[bulk], exact[bulk], k) - 1)
                    for k in (4, 6, 8)]
    grid = np.linspace(-0.05, 0.5, 111)
    cdf = lambda x, w: np.array([w[x <= t].sum() for t in grid])  # noqa: E731
    return moments, bulk_moments, float(np.max(np.abs(cdf(values, weights) - cdf(eigenvalues, exact)))), int(nodes.sum())


def lanczos_table(n: int, before: str) -> str:
    from jpinn.linalg import lanczos

    rng = np.random.default_rng(0)
    spectrum = np.concatenate([rng.uniform(-0.05, 0.5, n - 3), [1e4, 3e4, 1e5]])
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    a = (q * spectrum) @ q.T
    eigenvalues, vectors = np.linalg.eigh(a)
    v0 = rng.choice([-1.0, 1.0], n)
    exact = (vectors.T @ v0) ** 2 / (v0 @ v0)
    rows = []
    variants = [(f"before ({before})", old_lanczos(before)), ("after", lanczos)]
    for dtype in ("float32", "float64"):
        matrix = jnp.asarray(a, dtype)
        for label, fn in variants:
            if fn is None:
                continue
            tri = jax.jit(lambda v, fn=fn: fn(lambda x: matrix @ x, v, 100))(jnp.asarray(v0, dtype))
            values, weights = tri.ritz()
            moments, bulk, ks, bulk_nodes = measure_measure(values, weights, eigenvalues, exact)
            rows.append([dtype, label, str(int(tri.size)), str(bulk_nodes), *(f"{m:.1e}" for m in moments),
                         *(f"{m:.1e}" for m in bulk), f"{ks:.3f}"])
    return markdown_table(["dtype", "breakdown test", "steps kept of 100", "nodes in the bulk", "moment 1 rel. err",
                           "moment 2", "moment 3", "bulk central moment 4", "6", "8", "bulk CDF max err"], rows)


def fallback_table() -> str:
    from jpinn.linalg import nystrom
    from test_fidelity import companion_fallback_top, fallback_case  # the tests' reference of the companion code

    h, s, key = fallback_case()
    approx = nystrom(lambda v: v @ jnp.asarray(h), key, h.shape[0], s, shift="companion", dtype=jnp.float64)
    return markdown_table(
        ["true top eigenvalue", "Cholesky failed", "jpinn (Y shifted too): top", "companion code (core only): top"],
        [["1e4", str(bool(approx.cholesky_failed)), f"{float(np.max(np.asarray(approx.eigenvalues))):.4g}",
          f"{companion_fallback_top(h, s, key):.3g}"]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--before", default="f1ade07", help="the commit whose Lanczos is 'before'")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    table = "## Lanczos on the review's spectrum\n\n" + lanczos_table(args.n, args.before)
    table += "\n\n## Nystrom Cholesky fallback, indefinite matrix\n\n" + fallback_table()
    save_report("fidelity", "Study fidelity (issue 15): Lanczos breakdown, Cholesky fallback",
                [f"n = {args.n}: 3 outliers 1e4, 3e4, 1e5 over 4,997 bulk eigenvalues uniform in [-0.05, 0.5];"
                 " one Rademacher probe, 100 steps; errors against the dense eigendecomposition's measure along it"],
                table, args.out)


if __name__ == "__main__":
    main()
