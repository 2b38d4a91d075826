"""The study's tables from run folders (``scripts/aggregate.py``).

A run is read from its ``summary.json`` and ``checkpoint/config.json``. Runs are grouped
by PDE (name and coefficients) and *method*: the sequence of optimizers of its phases
(``adam``, ``lbfgs``, ``adam+lbfgs``, ``adam+lbfgs+nncg`` ...), so Adam+L-BFGS with any
switch point is one method and the switch is a hyperparameter like width and learning rate.

Selection rule (the study's, PAPER.md section 4: "best over widths and learning rates"):
per PDE and method, the *best run* is the completed run with the lowest final loss over
every width, learning rate, switch point and seed. Its configuration (the same everything
but the seed) gives the spread: median, minimum and maximum over its seeds. Runs with a
non-finite loss count as failed and are never selected; folders without ``summary.json``
(a run that did not finish) are counted as incomplete.

Table 1 holds the methods that end in Adam or L-BFGS; Table 2 the fine-tuning methods, whose
last phase (NNCG, GD) starts where the phase before it ended: it reports both points and
the factor by which the last phase lowered the loss.
"""

from __future__ import annotations

import csv
import dataclasses
import io as _io
import json
import math
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .io import CHECKPOINT_DIR, CONFIG_FILE, METRICS_FILE, SUMMARY_FILE, RunFolderError

FINE_TUNERS = ("nncg", "gd")
OPTIMIZER_LABELS = {"adam": "Adam", "lbfgs": "L-BFGS", "nncg": "NNCG", "gd": "GD", "gauss_newton": "Gauss-Newton",
                    "arncg": "ARNCG", "ssbfgs": "SSBFGS", "ssbroyden": "SSBroyden"}
# PAPER.md section 4 (float32, loss / test L2RE), by method and problem (the headline
# coefficients only: the study's numbers say nothing about, e.g., convection with beta 35)
CONVECTION, REACTION, WAVE = "convection (beta 40)", "reaction (rho 5)", "wave (beta 5, c2 4)"
STUDY_TABLE1 = {
    ("adam", CONVECTION): (1.40e-4, 5.96e-2), ("adam", REACTION): (4.73e-6, 2.12e-2),
    ("adam", WAVE): (2.03e-2, 3.49e-1),
    ("lbfgs", CONVECTION): (1.51e-5, 8.26e-3), ("lbfgs", REACTION): (8.93e-6, 3.83e-2),
    ("lbfgs", WAVE): (1.84e-2, 3.35e-1),
    ("adam+lbfgs", CONVECTION): (5.95e-6, 4.19e-3), ("adam+lbfgs", REACTION): (3.26e-6, 1.92e-2),
    ("adam+lbfgs", WAVE): (1.12e-3, 5.52e-2),
}
STUDY_TABLE2 = {  # the GD row of the study's Table 2 reads "no change"
    ("adam+lbfgs+nncg", CONVECTION): (3.63e-7, 1.94e-3),
    ("adam+lbfgs+nncg", REACTION): (2.89e-7, 9.92e-3),
    ("adam+lbfgs+nncg", WAVE): (6.13e-5, 1.27e-2),
}


def method_label(method: str) -> str:
    """``adam+lbfgs`` -> ``Adam+L-BFGS``."""
    return "+".join(OPTIMIZER_LABELS.get(part, part) for part in method.split("+"))


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One finished run, flattened to what the tables need."""

    path: str
    pde: str                      # e.g. "convection"
    problem: str                  # e.g. "convection (beta 40)"
    method: str                   # e.g. "adam+lbfgs"
    optimizer: str                # the config's optimizer name, e.g. "adam_lbfgs_11k"
    width: int | None
    learning_rate: float | None   # Adam's, if the run has an Adam phase
    switch: int | None            # iterations of the first phase, if there are several
    seed: int | None
    loss: float
    l2re: float
    l1re: float
    iterations: int
    train_seconds: float
    wall_seconds: float
    phases: tuple[dict[str, Any], ...]

    @property
    def finite(self) -> bool:
        return math.isfinite(self.loss) and math.isfinite(self.l2re)

    @property
    def config_key(self) -> tuple:
        """Everything that makes a configuration, except the seed."""
        return (self.problem, self.method, self.optimizer, self.width, self.learning_rate, self.switch)

    @property
    def start(self) -> dict[str, Any]:
        """Where the last phase started: the report of the phase before it."""
        return self.phases[-2] if len(self.phases) > 1 else {}


def _number(value: Any) -> float:
    # summary.json writes non-finite floats as strings ("nan", "inf")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _problem(pde: dict[str, Any]) -> str:
    coefficients = ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}"
                             for k, v in pde.items() if k != "name")
    return f"{pde['name']} ({coefficients})" if coefficients else pde["name"]


def read_run(run_dir: str | Path) -> RunRecord:
    """A finished run folder as a ``RunRecord``; ``RunFolderError`` with the reason otherwise."""
    run_dir = Path(run_dir)
    summary_path, config_path = run_dir / SUMMARY_FILE, run_dir / CHECKPOINT_DIR / CONFIG_FILE
    if not summary_path.is_file() or not config_path.is_file():
        raise RunFolderError(f"{run_dir}: not a finished jpinn run (no {SUMMARY_FILE} and {CHECKPOINT_DIR}/{CONFIG_FILE})")
    try:
        summary = json.loads(summary_path.read_text())
        config = json.loads(config_path.read_text())
        phases = tuple(summary["phases"])
        method = "+".join(p["optimizer"] for p in phases)
        optimizer_config = config.get("optimizer", {})
        adam = [p for p in phases if p["optimizer"] == "adam"]  # Adam's learning rate, as trained
        return RunRecord(
            path=str(run_dir),
            pde=summary["pde"]["name"],
            problem=_problem(summary["pde"]),
            method=method,
            optimizer=str(optimizer_config.get("name", method)),
            width=config.get("model", {}).get("width"),
            learning_rate=_number(adam[0].get("hyperparameters", {}).get("learning_rate")) if adam else None,
            switch=int(phases[0]["iterations_budget"]) if len(phases) > 1 else None,
            seed=config.get("seed"),
            loss=_number(summary["loss"]),
            l2re=_number(summary["l2re"]),
            l1re=_number(summary.get("l1re")),
            iterations=int(summary["iterations"]),
            train_seconds=_number(summary["seconds"]),
            wall_seconds=_number(summary.get("wall_seconds")),
            phases=phases,
        )
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise RunFolderError(f"{run_dir}: unreadable run summary ({type(error).__name__}: {error})") from None


@dataclasses.dataclass
class Collection:
    """The runs found under some folders, and the folders that hold an unfinished run."""

    runs: list[RunRecord]
    incomplete: list[str]


def _is_run(folder: Path) -> bool:
    return (folder / SUMMARY_FILE).is_file() or (folder / METRICS_FILE).is_file() or (folder / CHECKPOINT_DIR).is_dir()


def collect(folders: Iterable[str | Path]) -> Collection:
    """Every run under ``folders``: each is a run folder or a (multi)run folder holding run
    folders at any depth. A folder that holds no run is an error."""
    runs, incomplete = [], []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise RunFolderError(f"{folder}: no such folder")
        candidates = [folder] if _is_run(folder) else sorted(
            {p.parent for name in (SUMMARY_FILE, METRICS_FILE) for p in folder.rglob(name)}
        )
        if not candidates:
            raise RunFolderError(f"{folder}: holds no jpinn run (no {SUMMARY_FILE} or {METRICS_FILE} below it)")
        for run_dir in candidates:
            if not (run_dir / SUMMARY_FILE).is_file():
                incomplete.append(str(run_dir))
                continue
            runs.append(read_run(run_dir))
    return Collection(runs, incomplete)


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def slug(problem: str) -> str:
    """A file-name form of a problem label: ``convection (beta 40)`` -> ``convection-beta-40``."""
    out = "".join(c if c.isalnum() or c == "." else "-" for c in problem)
    return "-".join(part for part in out.split("-") if part)


@dataclasses.dataclass
class Row:
    """One (PDE, method) cell of a table, with the selected run and its seeds' spread."""

    problem: str
    pde: str
    method: str
    runs: int
    failed: int
    best: RunRecord
    seeds: list[RunRecord]   # the best run's configuration, one run per seed

    def stats(self, field: str) -> tuple[float, float, float]:
        values = [getattr(r, field) for r in self.seeds]
        return _median(values), min(values), max(values)

    def as_dict(self) -> dict[str, Any]:
        b = self.best
        loss, l2re = self.stats("loss"), self.stats("l2re")
        out = {
            "problem": self.problem, "method": self.method, "runs": self.runs, "failed": self.failed,
            "best_loss": b.loss, "best_l2re": b.l2re, "best_l1re": b.l1re,
            "optimizer": b.optimizer, "width": b.width, "learning_rate": b.learning_rate,
            "switch": b.switch, "seed": b.seed, "n_seeds": len(self.seeds),
            "median_loss": loss[0], "min_loss": loss[1], "max_loss": loss[2],
            "median_l2re": l2re[0], "min_l2re": l2re[1], "max_l2re": l2re[2],
            "median_iterations": _median([r.iterations for r in self.seeds]),
            "median_train_seconds": _median([r.train_seconds for r in self.seeds]),
            "median_wall_seconds": _median([r.wall_seconds for r in self.seeds]),
        }
        if self.method.split("+")[-1] in FINE_TUNERS and len(b.phases) > 1:
            factors = [fine_tune_factor(r) for r in self.seeds]
            last = b.phases[-1]
            out.update({
                "start_loss": _number(b.start.get("loss")), "start_l2re": _number(b.start.get("l2re")),
                "factor": fine_tune_factor(b), "median_factor": _median(factors),
                "min_factor": min(factors), "max_factor": max(factors),
                "last_phase_steps": last["steps"], "last_phase_seconds": _number(last["seconds"]),
            })
        return out


def fine_tune_factor(run: RunRecord) -> float:
    """How many times the last phase lowered the loss (start loss / final loss)."""
    start = _number(run.start.get("loss"))
    return start / run.loss if run.loss > 0 else float("inf")


def select(runs: Sequence[RunRecord]) -> list[Row]:
    """One ``Row`` per (problem, method), by the selection rule of this module's docstring."""
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for run in runs:
        groups.setdefault((run.problem, run.method), []).append(run)
    rows = []
    for (problem, method), members in sorted(groups.items()):
        finite = [r for r in members if r.finite]
        failed = len(members) - len(finite)
        if not finite:
            continue
        best = min(finite, key=lambda r: (r.loss, r.path))
        seeds = sorted((r for r in finite if r.config_key == best.config_key), key=lambda r: (r.seed is None, r.seed))
        rows.append(Row(problem, best.pde, method, len(members), failed, best, seeds))
    return rows


def split_tables(rows: Sequence[Row]) -> tuple[list[Row], list[Row]]:
    """Table 1 (methods ending in Adam or L-BFGS) and Table 2 (ending in NNCG or GD)."""
    table2 = [r for r in rows if r.method.split("+")[-1] in FINE_TUNERS]
    return [r for r in rows if r not in table2], table2


# ------------------------------------------------------------------------- formatting

def _e(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}e}"


def _g(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _markdown(header: Sequence[str], body: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def _grid(rows: Sequence[Row], cell, study: dict | None = None) -> str:
    """Methods down, problems across, ``cell(row)`` in each; the study's value under each
    method when ``study`` has it."""
    problems = sorted({r.problem for r in rows})
    methods = sorted({r.method for r in rows}, key=lambda m: (m.count("+"), m))
    by_key = {(r.method, r.problem): r for r in rows}
    body = []
    for m in methods:
        body.append([method_label(m)] + [cell(by_key[(m, p)]) if (m, p) in by_key else "-" for p in problems])
        if study and any((m, p) in study for p in problems):
            body.append(["*study*"] + [
                "*" + " / ".join(_e(v) for v in study[(m, p)]) + "*" if (m, p) in study else "-" for p in problems
            ])
    return _markdown(["method"] + problems, body)


def table1_markdown(rows: Sequence[Row], study: bool = True) -> str:
    headline = _grid(rows, lambda r: f"{_e(r.best.loss)} / {_e(r.best.l2re)}", STUDY_TABLE1 if study else None)
    detail = _markdown(
        ["problem", "method", "runs (failed)", "best loss", "its L2RE", "width", "Adam lr", "switch", "seed",
         "loss over seeds: median [min, max]", "L2RE over seeds: median [min, max]", "iterations", "train s", "wall s"],
        [
            [r.problem, method_label(r.method), f"{r.runs} ({r.failed})", _e(r.best.loss), _e(r.best.l2re),
             _g(r.best.width), _g(r.best.learning_rate), _g(r.best.switch), _g(r.best.seed),
             "{} [{}, {}]".format(*map(_e, r.stats("loss"))) + f" (n={len(r.seeds)})",
             "{} [{}, {}]".format(*map(_e, r.stats("l2re"))),
             _g(_median([s.iterations for s in r.seeds])),
             f"{_median([s.train_seconds for s in r.seeds]):.1f}", f"{_median([s.wall_seconds for s in r.seeds]):.1f}"]
            for r in rows
        ],
    )
    return f"{headline}\n\n{detail}"


def table2_markdown(rows: Sequence[Row], study: bool = True) -> str:
    def cell(r: Row) -> str:
        if "loss" not in r.best.start:  # a run of this one method (no Adam+L-BFGS phases before it)
            return f"{_e(r.best.loss)} / {_e(r.best.l2re)} (one phase: no start point)"
        return f"{_e(r.best.start.get('loss'))} -> {_e(r.best.loss)} ({fine_tune_factor(r.best):.4g}x) / {_e(r.best.l2re)}"

    headline = _grid(rows, cell, STUDY_TABLE2 if study else None)
    detail = _markdown(
        ["problem", "method", "runs (failed)", "seed", "start loss", "start L2RE", "final loss", "final L2RE",
         "factor", "factor over seeds: median [min, max]", "last-phase steps", "last-phase s", "wall s"],
        [
            [r.problem, method_label(r.method), f"{r.runs} ({r.failed})", _g(r.best.seed), _e(r.best.start.get("loss")),
             _e(r.best.start.get("l2re")), _e(r.best.loss), _e(r.best.l2re), f"{fine_tune_factor(r.best):.4g}",
             "{:.4g} [{:.4g}, {:.4g}]".format(*(lambda f: (_median(f), min(f), max(f)))([fine_tune_factor(s) for s in r.seeds]))
             + f" (n={len(r.seeds)})",
             _g(r.best.phases[-1]["steps"]), f"{_number(r.best.phases[-1]['seconds']):.1f}", f"{r.best.wall_seconds:.1f}"]
            for r in rows
        ],
    )
    return f"{headline}\n\n{detail}"


def to_csv(records: Sequence[dict[str, Any]]) -> str:
    """Rows of dicts as CSV text (the union of their keys as header, in first-seen order)."""
    fields: list[str] = []
    for record in records:
        fields += [k for k in record if k not in fields]
    buffer = _io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: ("" if record.get(k) is None else record.get(k)) for k in fields})
    return buffer.getvalue()


def run_dict(run: RunRecord) -> dict[str, Any]:
    """A run as one CSV row."""
    out = {k: getattr(run, k) for k in ("problem", "method", "optimizer", "width", "learning_rate", "switch", "seed",
                                        "loss", "l2re", "l1re", "iterations", "train_seconds", "wall_seconds")}
    if len(run.phases) > 1:
        out["start_loss"] = _number(run.start.get("loss"))
        out["start_l2re"] = _number(run.start.get("l2re"))
    out["stop_reason"] = run.phases[-1].get("stop_reason")
    out["path"] = run.path
    return out


__all__ = [
    "Collection", "FINE_TUNERS", "Row", "RunRecord", "collect", "fine_tune_factor", "method_label", "read_run",
    "run_dict", "select", "slug", "split_tables", "table1_markdown", "table2_markdown", "to_csv",
]
