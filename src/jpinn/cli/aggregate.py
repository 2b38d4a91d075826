"""The study's tables (and figures) from run folders.

    python scripts/aggregate.py FOLDER [FOLDER ...] [--out DIR] [--figures] [--no-study]

Each FOLDER is a run folder of scripts/train.py or a multirun folder (`-m`) holding run
folders at any depth. Prints Table 1 (Adam, L-BFGS, Adam+L-BFGS: loss / L2RE of the best
run) and Table 2 (NNCG and GD after Adam+L-BFGS: the loss where the last phase started,
where it ended, and the factor), then writes to DIR (default: FOLDER/aggregate):

- tables.md: both tables (with the study's numbers under each method unless --no-study),
  the details (selected configuration; median, min and max over seeds; iterations; train and
  wall seconds), the selection rule, the machine and the command;
- table1.csv, table2.csv (one row per problem and method), runs.csv (one row per run);
- with --figures: curves-PROBLEM.png (loss and gradient norm against iterations of the best run
  of each method, phase switches dotted), finetune-PROBLEM.png (the same for NNCG and GD, over
  their own steps from where Adam+L-BFGS ended), error-vs-loss.png (test L2RE against final loss of
  every run) and fields-PROBLEM.png (exact solution, prediction and |error| of each method's
  best run).

Selection rule (the study's): per problem and method, the run with the lowest final loss
over widths, learning rates, switch points and seeds; its configuration's seeds give the
median and spread. Runs with a non-finite loss are failed; folders without summary.json
are incomplete. Both are counted, never selected.
"""

from __future__ import annotations

PROG = "aggregate.py"  # the name in messages: "jpinn aggregate" under the jpinn command

import argparse
import datetime
import shlex
import sys
from pathlib import Path



def parse(argv):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", help="run folders or multirun folders")
    parser.add_argument("--out", help="where to write the tables (default: FOLDER/aggregate)")
    parser.add_argument("--figures", action="store_true", help="also draw the comparison figures")
    parser.add_argument("--no-study", action="store_true", help="leave the study's numbers out of the tables")
    return parser.parse_args(argv)


def _machines(runs) -> list[str]:
    import json

    seen = []
    for run in runs:
        summary = json.loads((Path(run.path) / "summary.json").read_text())
        device, versions = summary.get("device", {}), summary.get("versions", {})
        text = (f"{device.get('platform', '?')} ({device.get('device_kind', '?')}, {device.get('processor', '?')},"
                f" host {device.get('host', '?')}), jax {versions.get('jax', '?')}")
        if text not in seen:
            seen.append(text)
    return seen


def _finished(runs) -> str:
    times = sorted((Path(r.path) / "summary.json").stat().st_mtime for r in runs)
    fmt = "%Y-%m-%d %H:%M UTC"
    first, last = (datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(fmt) for t in (times[0], times[-1]))
    return first if first == last else f"{first} to {last}"


def write_figures(rows, runs, out: Path) -> list[Path]:
    from jpinn import io, plot, report
    from jpinn.experiment import load_run
    from jpinn.report import FINE_TUNERS, fine_tune_factor, method_label

    paths = []
    for problem in sorted({r.problem for r in rows}):
        members = sorted((r for r in rows if r.problem == problem), key=lambda r: (r.method.count("+"), r.method))
        slug = report.slug(problem)
        curves = [(f"{method_label(r.method)} (loss {r.best.loss:.2e})", io.read_metrics(r.best.path)) for r in members]
        path = out / f"curves-{slug}.png"
        plot.plot_curves(curves, path, title=f"{problem}: best run of each method")
        paths.append(path)
        tuned = [r for r in members if r.method.split("+")[-1] in FINE_TUNERS]
        if tuned:
            path = out / f"finetune-{slug}.png"
            curves = [(f"{method_label(r.method)} (factor {fine_tune_factor(r.best):.3g})", io.read_metrics(r.best.path))
                      for r in tuned]
            plot.plot_curves(curves, path, title=f"{problem}: the last phase, from where Adam+L-BFGS ended",
                             last_phase=True)
            paths.append(path)
        loaded = [(method_label(r.method), load_run(r.best.path)) for r in members]
        path = out / f"fields-{slug}.png"
        plot.plot_fields([(label, run.model) for label, run in loaded], loaded[0][1].pde, path)
        paths.append(path)
    path = out / "error-vs-loss.png"
    plot.plot_error_vs_loss([(r.problem, method_label(r.method), r.loss, r.l2re) for r in runs], path)
    paths.append(path)
    return paths


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    from jpinn import report
    from jpinn.io import RunFolderError, check_run_folder

    try:
        collection = report.collect(args.folders)
    except RunFolderError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    runs = collection.runs
    if not runs:
        print(f"{PROG}: error: no finished run under {', '.join(args.folders)}"
              f" ({len(collection.incomplete)} incomplete)", file=sys.stderr)
        return 2
    rows = report.select(runs)
    table1, table2 = report.split_tables(rows)
    study = not args.no_study
    try:
        out = check_run_folder(args.out or Path(args.folders[0]) / "aggregate", resume=True,
                               field="--out" if args.out else "--out (default FOLDER/aggregate)")
    except RunFolderError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)

    command = "python scripts/aggregate.py " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    failed = sum(r.failed for r in rows)
    lines = [
        "# Tables of the study (PAPER.md section 4) from run folders",
        "",
        f"Command: `{command}`  ",
        f"Runs: {len(runs)} finished ({failed} with a non-finite loss), {len(collection.incomplete)} incomplete;"
        f" finished {_finished(runs)}  ",
        "Machine: " + "; ".join(_machines(runs)),
        "",
        "Selection rule (the study's): per problem and method, the run with the lowest final loss over"
        " widths, learning rates, switch points and seeds; its configuration's seeds give the median and"
        " [min, max]. Loss is the training loss (sum of the component MSEs); L2RE the relative L2 error"
        " on the run's test set." + (" *study* rows: PAPER.md section 4 (float32, best over widths and"
                                     " learning rates)." if study else ""),
        "",
    ]
    if table1:
        lines += ["## Table 1: loss / L2RE of the best run", "", report.table1_markdown(table1, study), ""]
    if table2:
        lines += [
            "## Table 2: fine-tuning after Adam+L-BFGS",
            "",
            "start loss -> final loss (factor by which the last phase lowered it) / final L2RE;"
            " the start is where the Adam+L-BFGS phases of the same run ended.",
            "",
            report.table2_markdown(table2, study),
            "",
        ]
    if collection.incomplete:
        lines += ["## Incomplete runs (no summary.json)", ""] + [f"- {p}" for p in collection.incomplete] + [""]
    text = "\n".join(lines)
    (out / "tables.md").write_text(text)
    (out / "table1.csv").write_text(report.to_csv([r.as_dict() for r in table1]))
    (out / "table2.csv").write_text(report.to_csv([r.as_dict() for r in table2]))
    (out / "runs.csv").write_text(report.to_csv([report.run_dict(r) for r in runs]))
    print(text)
    written = ["tables.md", "table1.csv", "table2.csv", "runs.csv"]
    if args.figures:
        written += [p.name for p in write_figures(rows, runs, out)]
    print(f"{PROG}: wrote {', '.join(written)} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
