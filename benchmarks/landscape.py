"""The study's landscape numbers at a CPU-sized protocol: top eigenvalues and condition
estimates of the Hessian before and after L-BFGS preconditioning, per PDE and loss
component, and the condition-number growth exponent over n_res.

    python benchmarks/landscape.py [--pdes convection reaction wave] [--width 50]
                                   [--switch 11000] [--iterations 21000] [--probes 10] [--steps 100]

For each PDE: ``scripts/train.py optimizer=adam_lbfgs`` (Adam lr 1e-3 for ``--switch``
iterations, then L-BFGS up to ``--iterations`` in all; 10,000 residual points) into
outputs/landscape/<pde>, then ``scripts/spectrum.py`` on it (the study's settings), then
``scripts/spectrum.py --condition-sweep``. Prints and saves the table to
benchmarks/results/landscape-<machine>.md; the run folders keep every array and figure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, save_report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# the study's magnitudes (PAPER.md section 5): top Hessian eigenvalue of the total loss
STUDY_TOP = {"convection": "> 1e4", "reaction": "> 1e3", "wave": "> 1e5"}


def _run(command: list[str], skip: bool = False) -> float:
    print("$ " + " ".join(command), flush=True)
    if skip:
        return float("nan")
    t0 = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True)
    return time.perf_counter() - t0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pdes", nargs="+", default=["convection", "reaction", "wave"])
    parser.add_argument("--width", type=int, default=50)
    parser.add_argument("--switch", type=int, default=11_000)
    parser.add_argument("--iterations", type=int, default=21_000)
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--no-condition-sweep", dest="sweep", action="store_false")
    parser.add_argument("--report-only", action="store_true",
                        help="only tabulate the folders a previous run left in outputs/landscape")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    python = sys.executable
    base = ROOT / "outputs" / "landscape"
    rows, notes = [], []
    for pde in args.pdes:
        run_dir = base / pde
        train_s = _run([python, "scripts/train.py", f"pde={pde}", "optimizer=adam_lbfgs", f"model.width={args.width}",
                        f"optimizer.switch={args.switch}", f"optimizer.iterations={args.iterations}",
                        "quiet=true", f"hydra.run.dir={run_dir}"], args.report_only)
        spec_s = _run([python, "scripts/spectrum.py", str(run_dir), "--probes", str(args.probes),
                       "--steps", str(args.steps)], args.report_only)
        summary = json.loads((run_dir / "summary.json").read_text())
        spectrum = json.loads((run_dir / "spectrum" / "spectrum.json").read_text())
        lbfgs = summary["phases"][-1]
        notes.append(f"{pde}: loss {summary['loss']:.3g}, L2RE {summary['l2re']:.3g}; L-BFGS {lbfgs['iterations']} "
                     f"iterations, stopped: {lbfgs['stop_reason']}; {spectrum.get('lbfgs_pairs', 0)} pairs; "
                     f"training {train_s:.0f} s, analysis {spec_s:.0f} s; line scan along the last direction: "
                     f"{spectrum['direction']['decreasing_steps']} of {spectrum['direction']['steps']} steps decrease "
                     f"the loss, {spectrum['direction']['armijo_steps']} pass Armijo, "
                     f"{spectrum['direction']['wolfe_steps']} strong Wolfe")
        for component in ("total", "residual", "initial", "boundary"):
            before, after = spectrum["density"][component], spectrum["preconditioned"][component]
            rows.append([pde, component, f"{spectrum['top'][component][0]:.3g}", f"{before['lambda_min']:.3g}",
                         f"{before['condition_ritz']:.3g}", f"{after['top'][0]:.3g}", f"{after['lambda_min']:.3g}",
                         f"{after['condition_ritz']:.3g}",
                         f"{spectrum['top'][component][0] / after['top'][0]:.3g}",
                         STUDY_TOP[pde] if component == "total" else ""])
    if args.sweep:
        sweep_dir = base / "condition"
        _run([python, "scripts/spectrum.py", "--condition-sweep", "--out", str(sweep_dir)], args.report_only)
        sweep = json.loads((sweep_dir / "spectrum.json").read_text())["condition_sweep"]
        notes.append("condition sweep (convection beta 1, width 32, depth 1, jpinn protocol: float64, 1000 Adam +"
                     " 1000 L-BFGS): "
                     + ", ".join(f"n={n}: {r:.3g}" for n, r in zip(sweep["n_residual"], sweep["ratio"]))
                     + f"; ratio |lambda_1 / lambda_{sweep['index']}| by magnitude (lambda_{sweep['index']}: "
                     + ", ".join(f"{v:.3g}" for v in sweep["lambda_index_by_magnitude"])
                     + f"), fitted exponent {sweep['exponent']:.3g}")
    header = ["pde", "component", "top eigenvalue (Lanczos)", "lambda_min (SLQ)", "condition_ritz",
              "preconditioned top", "preconditioned lambda_min", "preconditioned condition_ritz",
              "top / preconditioned top", "study: top of H"]
    save_report("landscape", "Hessian spectra after Adam+L-BFGS, before and after L-BFGS preconditioning", [
        f"width {args.width}, depth 3, 10,000 residual points, float32; Adam lr 1e-3 for {args.switch} iterations,"
        f" then L-BFGS up to {args.iterations} in all; SLQ with {args.probes} probes x {args.steps} steps",
        "condition_ritz: lambda_max over the smallest positive Ritz value (SLQ; not a condition number)", *notes,
    ], markdown_table(header, rows), args.out)


if __name__ == "__main__":
    main()
