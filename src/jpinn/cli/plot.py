"""The study's figures for chosen run folders, side by side.

    jpinn plot RUN_DIR [RUN_DIR ...] --out DIR [--labels A B ...] [--x phase|iteration|time]
               [--last-phase]

Writes DIR/curves.png (loss and gradient norm, one line per run, phase switches dotted and
labelled; --x phase, the default, gives each phase an equal share of the axis ticked with
its own iterations, so a short NNCG phase after a long Adam one is visible; iteration: the
whole run's iterations; time: wall-clock seconds; with --last-phase only each run's last
phase, from where the phase before it ended), DIR/fields.png (exact solution, each run's
prediction and |error|; the runs must solve the same problem) and DIR/error-vs-loss.png.
Labels default to the folder names. For the study's tables, with each method's best run
chosen for you, use jpinn aggregate --figures.
"""

from __future__ import annotations

PROG = "plot.py"  # the name in messages: "jpinn plot" under the jpinn command

import argparse
import sys
from pathlib import Path


def parse(argv):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run folders written by jpinn train")
    parser.add_argument("--out", required=True, help="folder for the figures")
    parser.add_argument("--labels", nargs="+", help="one label per run (default: folder names)")
    parser.add_argument("--x", choices=("phase", "iteration", "time"), default="phase",
                        help="x axis of curves.png (default: phase)")
    parser.add_argument("--last-phase", action="store_true", help="curves of each run's last phase only")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.labels is not None and len(args.labels) != len(args.runs):
        print(f"{PROG}: error: --labels: one per run, got {len(args.labels)} for {len(args.runs)} runs", file=sys.stderr)
        return 2
    from jpinn import io, plot, report
    from jpinn.experiment import load_run

    labels = args.labels or [Path(r).resolve().name for r in args.runs]
    try:
        records = [report.read_run(r) for r in args.runs]
        metrics = [io.read_metrics(r) for r in args.runs]
        loaded = [load_run(r) for r in args.runs]
        out = io.check_run_folder(args.out, resume=True, field="--out")
    except io.RunFolderError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    problems = {r.problem for r in records}
    out.mkdir(parents=True, exist_ok=True)
    written = [plot.plot_curves(list(zip(labels, metrics)), out / "curves.png", last_phase=args.last_phase,
                                     x=args.x)]
    if len(problems) == 1:
        written.append(plot.plot_fields([(label, run.model) for label, run in zip(labels, loaded)], loaded[0].pde,
                                        out / "fields.png"))
    else:
        print(f"{PROG}: the runs solve {len(problems)} problems; fields.png needs one, left out", file=sys.stderr)
    written.append(plot.plot_error_vs_loss([(r.problem, label, r.loss, r.l2re) for r, label in zip(records, labels)],
                                           out / "error-vs-loss.png"))
    print(f"{PROG}: wrote {', '.join(Path(p).name for p in written)} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
