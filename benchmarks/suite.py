"""Every optimizer on every problem, several seeds, one stated budget: a PINNacle-style table.

    python benchmarks/suite.py [--profile cpu|gpu] [--problems ...] [--optimizers ...] [--seeds 0 1]
                               [--config benchmarks/suite.yaml] [--out FILE]

Each run goes through ``scripts/train.py`` as a user would (the suite file's common
overrides, the profile's budget and size, the problem's and the optimizer's own overrides,
``seed=S``), in a fresh process. The table gives, per problem and optimizer: the L2RE median
[min, max] over the seeds, the wall seconds of the whole command (median), the iterations
(median), the phases' stop reasons (with counts), and a published number only where the
suite file marks its setting as this profile's (``profile: NAME`` on the published entry;
the others are listed under the table with their own setting). A profile may bring its own
``common`` overrides and its default ``problems`` and ``optimizers`` lists (the ``pinnacle``
profile: PINNacle's network, budget and points on the problems whose setting is PINNacle's).
A run that fails is a row of its own with the error's last line, and the suite goes on.
Results: ``benchmarks/results/suite-<profile>-<machine>.md`` and ``.json`` beside it. Each finished run is also appended at once to ``.runs.jsonl`` beside
them (its key and exact overrides); ``--resume`` reuses the runs there whose overrides are
this run's and runs only the rest, so an interrupted suite goes on where it stopped and an
optimizer added to the suite file later costs only its own runs.

An optimizer joins the suite with one line of ``benchmarks/suite.yaml``:
``NAME: [optimizer=NAME, ...overrides]``.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, report_path, save_report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def load_suite(path: Path) -> dict:
    suite = yaml.safe_load(path.read_text())
    for key in ("common", "profiles", "problems", "optimizers"):
        if key not in suite:
            raise SystemExit(f"{path}: missing {key!r}")
    return suite


def run_one(overrides: list[str], folder: Path) -> dict:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *overrides, f"hydra.run.dir={folder}"],
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()] or ["(no message)"]
        return {"error": lines[-1], "wall": wall}
    summary = json.loads((folder / "summary.json").read_text())
    return {"l2re": summary["l2re"], "loss": summary["loss"], "iterations": summary["iterations"], "wall": wall,
            "stops": [f"{p['name']}:{p['stop_reason']}" for p in summary["phases"]], "test_set": summary["test_set"]}


def _read_log(path: Path) -> dict:
    """The finished runs of an earlier suite (the last entry per key); a torn last line is skipped."""
    runs = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            runs[entry["key"]] = entry
    return runs


def _fmt(values, spec=".2e"):
    return f"{statistics.median(values):{spec}} [{min(values):{spec}}, {max(values):{spec}}]"


def matches(entry: dict, profile: str) -> bool:
    """A published number sits in the table only for the profile whose setting is its own."""
    return entry.get("profile") == profile


def table_rows(results: dict, published: list[dict], profile: str = "") -> list[list[str]]:
    rows = []
    for (problem, optimizer), runs in results.items():
        ok = [r for r in runs if "error" not in r and r["l2re"] is not None]
        failed = [r for r in runs if "error" in r]
        stops = collections.Counter(s for r in ok for s in r["stops"])
        match = [p for p in published if p["problem"] == problem and p.get("optimizer") == optimizer
                 and matches(p, profile)]
        rows.append([
            problem, optimizer, f"{len(ok)}/{len(runs)}",
            _fmt([r["l2re"] for r in ok]) if ok else "-",
            f"{statistics.median(r['wall'] for r in ok):.0f}" if ok else "-",
            f"{statistics.median(r['iterations'] for r in ok):.0f}" if ok else "-",
            "; ".join(filter(None, [", ".join(f"{s} x{n}" for s, n in sorted(stops.items())),
                                    *(f"failed x{n}: {e}" for e, n in collections.Counter(r["error"] for r in failed).items())])),
            "; ".join(f"{p['value']:.3g} ({p['source']})" for p in match),
        ])
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(Path(__file__).resolve().parent / "suite.yaml"))
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--problems", nargs="+")
    parser.add_argument("--optimizers", nargs="+")
    parser.add_argument("--seeds", nargs="+", type=int)
    parser.add_argument("--extra", nargs="*", default=[], help="overrides added to every run (a tiny test size)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--resume", action="store_true",
                        help="reuse the finished runs in the .runs.jsonl beside the output whose overrides match")
    args = parser.parse_args(argv)
    suite = load_suite(Path(args.config))
    if args.profile not in suite["profiles"]:
        raise SystemExit(f"--profile: unknown {args.profile!r}; allowed: {', '.join(suite['profiles'])}")
    profile = suite["profiles"][args.profile]
    problems = args.problems or list(profile.get("problems", suite["problems"]))
    optimizers = args.optimizers or list(profile.get("optimizers", suite["optimizers"]))
    common = profile.get("common", suite["common"])
    for kind, names, known in (("problems", problems, suite["problems"]), ("optimizers", optimizers, suite["optimizers"])):
        unknown = [n for n in names if n not in known]
        if unknown:
            raise SystemExit(f"--{kind}: unknown {', '.join(unknown)}; allowed: {', '.join(known)}")
    seeds = args.seeds if args.seeds is not None else profile["seeds"]
    log = report_path(f"suite-{args.profile}", args.out).with_suffix(".runs.jsonl")
    done = _read_log(log) if args.resume else {}
    if not args.resume:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for problem in problems:
            for optimizer in optimizers:
                runs = results.setdefault((problem, optimizer), [])
                for seed in seeds:
                    overrides = [*common, *profile["size"], *suite["problems"][problem],
                                 *(o.format(**profile["budget"]) for o in suite["optimizers"][optimizer]),
                                 f"seed={seed}", *args.extra]
                    key = f"{problem}/{optimizer}/{seed}"
                    reused = done.get(key, {}).get("overrides") == overrides
                    r = done[key]["result"] if reused else run_one(overrides, Path(tmp) / f"{problem}-{optimizer}-{seed}")
                    runs.append(r)
                    if not reused:
                        with log.open("a") as f:
                            f.write(json.dumps({"key": key, "overrides": overrides, "result": r}) + "\n")
                    print(f"{problem} {optimizer} seed {seed}{' (reused)' if reused else ''}: " +
                          (f"failed: {r['error']}" if "error" in r else
                          f"L2RE {r['l2re']:.3e}, {r['iterations']} iterations, {r['wall']:.0f} s"), flush=True)
    rows = table_rows(results, suite.get("published", []), args.profile)
    table = markdown_table(["problem", "optimizer", "runs", "L2RE median [min, max]", "wall s", "iterations",
                            "stop reasons", "published (same setting)"], rows)
    context = [p for p in suite.get("published", []) if not matches(p, args.profile) and p["problem"] in problems]
    budget = ", ".join(f"{k} {v}" for k, v in profile["budget"].items())
    notes = [f"profile {args.profile}: seeds {seeds}, budget {budget}; every run: `python scripts/train.py "
             f"{' '.join([*common, *profile['size']])}` + the problem's and the optimizer's overrides"
             f" ({Path(args.config).name}){' + ' + ' '.join(args.extra) if args.extra else ''}",
             "L2RE on the problem's test set (closed form on a grid, or jpinn's reference solution); wall: the whole"
             " command, compilation included"]
    notes += [f"published, another setting (not comparable): {' '.join(filter(None, [p['problem'], p.get('optimizer')]))} {p['value']:.3g},"
              f" {p['source']}: {p['setting']}" for p in context]
    notes += [f"published, this setting: {p['problem']} {p['optimizer']} {p['value']:.3g}, {p['source']}: {p['setting']}"
              for p in suite.get("published", []) if matches(p, args.profile) and p["problem"] in problems]
    path = save_report(f"suite-{args.profile}", f"Optimizers across problems ({args.profile} profile)", notes, table,
                       args.out)
    path.with_suffix(".json").write_text(json.dumps(
        {f"{p}/{o}": runs for (p, o), runs in results.items()}, indent=1))


if __name__ == "__main__":
    main()
