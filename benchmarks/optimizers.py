"""Time to accuracy per optimizer: loss and L2RE against wall seconds, from one Adam point.

    python benchmarks/optimizers.py [--problems convection poisson2d] [--seconds 60]
                                    [--optimizers lbfgs nncg gauss_newton ...] [--out FILE]

For each problem one Adam run (``--adam`` iterations, learning rate 1e-3) gives the start
point; from it each optimizer trains for ``--seconds`` of wall time (compilation and the
error evaluation after each log point excluded; ``time_to_accuracy._curve``). Problems:

- ``convection``: beta 40 (the study's), width 50, depth 3, 2,000 residual points of the
  study's grid sampler, float32 (the issue's CPU size);
- ``poisson2d``: Poisson on the unit square (``pde=poisson pde.dim=2``, sampled points),
  width 32, depth 3, float32;
- ``reaction``, ``wave``: the study's other two problems (its grid data, 2,000 residual
  points), width 50, depth 3;
- ``burgers``: viscous Burgers, nu = 0.01/pi, on jpinn's Cole-Hopf reference (sampled points),
  width 32, depth 3.

The float64 table of the issue "Optimizers beyond NNCG" is this script with every problem
and ``--set dtype=float64``; rows with a published number (ANCHORS below: ARNCG and NNCG
in float64 on the study's problems, ENGD and L-BFGS on Poisson 2-D, a sketched Gauss-Newton
and SSBFGS on Burgers) show it beside jpinn's, with the published setting:

    python benchmarks/optimizers.py --problems convection reaction wave poisson2d burgers \
        --set dtype=float64 --seconds 45 --out benchmarks/results/optimizers-float64-vm.md

Optimizers (their settings in OPTIMIZERS below): L-BFGS (the study's), NNCG (the study's
mu 1e-2 with inexact CG: rtol 1e-2, at most 100 iterations), Gauss-Newton with
Levenberg-Marquardt and Nystrom-PCG, Gauss-Newton with LM and the Woodbury direct solve,
ENGD (Gauss-Newton with the grid line search), ARNCG, SSBFGS and SSBroyden. The table gives
loss / L2RE reached by 10, 30, 60 ... s; curves go to the .json and .png beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, save_report  # noqa: E402
from time_to_accuracy import _at, _compose, _curve, plot  # noqa: E402

import jpinn  # noqa: E402
from jpinn.optim import make_optimizer  # noqa: E402
from jpinn.train import Phase  # noqa: E402

PROBLEMS = {
    "convection": ["pde=convection", "model.width=50", "model.depth=3", "data.n_residual=2000"],
    "poisson2d": ["pde=poisson", "pde.dim=2", "data=sampled", "model.width=32", "model.depth=3"],
    "reaction": ["pde=reaction", "model.width=50", "model.depth=3", "data.n_residual=2000"],
    "wave": ["pde=wave", "model.width=50", "model.depth=3", "data.n_residual=2000"],
    "burgers": ["pde=burgers", "data=sampled", "model.width=32", "model.depth=3"],
}
# published L2RE beside jpinn's row for the same kind of optimizer, with its own setting
_STUDY_F64 = "float64, width 200, 10,000 points, mean of 8 seeds (arXiv 2502.04799)"
ANCHORS = {  # (problem, optimizer) -> (L2RE, setting)
    ("convection", "ARNCG"): ("6.82e-5", _STUDY_F64),
    ("reaction", "ARNCG"): ("8.54e-4", _STUDY_F64),
    ("wave", "ARNCG"): ("5.05e-3", _STUDY_F64),
    ("convection", "NNCG"): ("1.42e-3", "NNCG rerun, " + _STUDY_F64),
    ("reaction", "NNCG"): ("4.81e-3", "NNCG rerun, " + _STUDY_F64),
    ("wave", "NNCG"): ("2.6e-2 to 6.2e-2", "NNCG rerun, " + _STUDY_F64),
    ("poisson2d", "ENGD (line search)"): ("6.2e-8", "ENGD, float64 (Mueller & Zeinhofer 2023)"),
    ("poisson2d", "L-BFGS"): ("1.8e-4", "L-BFGS, float64 (Mueller & Zeinhofer 2023)"),
    ("burgers", "GN-LM (PCG)"): ("8e-14", "doubly-sketched Gauss-Newton, float64, 4 x 40 SIREN"),
    ("burgers", "SSBFGS"): ("about 1e-7", "self-scaled BFGS, float64 (Kiyani et al. 2025)"),
    ("burgers", "SSBroyden"): ("about 1e-7", "self-scaled Broyden, float64 (Kiyani et al. 2025)"),
}
OPTIMIZERS = {  # name -> (optimizer, settings, log_every)
    "L-BFGS": ("lbfgs", {}, 5),
    "NNCG": ("nncg", dict(mu=1e-2, cg_rtol=1e-2, cg_max_iter=100), 1),
    "GN-LM (PCG)": ("gauss_newton", {}, 1),
    "GN-LM (Woodbury)": ("gauss_newton", dict(solver="woodbury"), 1),
    "ENGD (line search)": ("gauss_newton", dict(damping="line_search", damping_init=1e-6, solver="woodbury"), 1),
    "ARNCG": ("arncg", dict(cg_max_iter=100), 1),
    "SSBFGS": ("ssbfgs", {}, 10),
    "SSBroyden": ("ssbroyden", {}, 10),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", choices=list(PROBLEMS), default=list(PROBLEMS))
    parser.add_argument("--optimizers", nargs="+", choices=list(OPTIMIZERS), default=list(OPTIMIZERS))
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--adam", type=int, default=1000)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more overrides for every problem")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    marks = [t for t in (10, 30, 60, 120, 300, 600) if t <= args.seconds]
    curves, rows = {}, []
    for problem in args.problems:
        overrides = [*PROBLEMS[problem], "optimizer=adam", f"optimizer.iterations={args.adam}", "compile_cache=false",
                     *args.set]
        run = jpinn.run.build(_compose(overrides))
        t = time.perf_counter()
        start = jpinn.train(run.loss, run.w0, run.phases, log_every=1000, progress=False)
        start_seconds = time.perf_counter() - t
        print(f"{problem}: start point after {args.adam} Adam iterations ({start_seconds:.0f} s), loss "
              f"{start.phases[-1].loss:.3e}, {run.w0.shape[0]} parameters", flush=True)
        curves[problem] = {"start": dict(adam=args.adam, seconds=start_seconds, loss=start.phases[-1].loss,
                                         parameters=int(run.w0.shape[0]))}
        for name in args.optimizers:
            optimizer, settings, log_every = OPTIMIZERS[name]
            phase = Phase(make_optimizer(optimizer, **settings), iterations=10**6, log_every=log_every)
            curve = _curve(run, start.w, phase, args.seconds)
            curves[problem][name] = curve
            last = curve[-1]
            cells = [problem, name, *[f"{_at(curve, m)['loss']:.2e} / {_at(curve, m)['l2re']:.2e}" for m in marks],
                     f"{last['seconds']:.0f}", str(last["iterations"]), f"{min(p['l2re'] for p in curve):.2e}",
                     ANCHORS.get((problem, name), ("", ""))[0]]
            rows.append(cells)
            print(" | ".join(cells), flush=True)
    notes = ["start point per problem: Adam (learning rate 1e-3) for the stated iterations; float32 unless --set dtype=...;"
             + (f" overrides {' '.join(args.set)}" if args.set else ""),
             *[f"{p}: {' '.join(PROBLEMS[p])}" for p in args.problems],
             "cells: loss / L2RE reached by that many wall seconds from the start point (compilation and error"
             " evaluation excluded); steps: the optimizer's iterations (L-BFGS inner iterations)",
             "settings: " + "; ".join(f"{n}: {o} {s or ''}" for n, (o, s, _) in OPTIMIZERS.items() if n in args.optimizers),
             "start points: " + "; ".join(f"{p} loss {c['start']['loss']:.3e} after {c['start']['seconds']:.0f} s,"
                                          f" {c['start']['parameters']} parameters" for p, c in curves.items())]
    anchors = [f"{o} on {p}: {v} ({setting})" for (p, o), (v, setting) in ANCHORS.items()
               if p in args.problems and o in args.optimizers]
    if anchors:
        notes.append("published: " + "; ".join(anchors) + ". jpinn's rows differ from these settings in width"
                     " (32 or 50, not 200 or 40), points (2,000), seeds (one) and time (the stated seconds on a"
                     " 2-core CPU, not tens of thousands of iterations on a GPU)")
    headers = ["problem", "optimizer", *[f"by {m} s" for m in marks], "s run", "steps", "best L2RE", "published"]
    report = save_report("optimizers", "Time to accuracy per optimizer from one Adam point", notes,
                         markdown_table(headers, rows), args.out)
    path = report.with_suffix(".json")
    path.write_text(json.dumps(curves, indent=1))
    print(f"curves saved {path}")
    plot(curves, path.with_suffix(".png"))


if __name__ == "__main__":
    main()
