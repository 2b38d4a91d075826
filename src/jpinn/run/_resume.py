"""Whether a config may resume a run folder: the fields that change the numbers agree
with the checkpoint's config (``RESUME_FREE`` may differ) and the folder has named streams.

The optimizer's phases are compared as the driver runs them (``build_phases``: budgets
scaled by ``budget_scale``, in optimizer steps), so that a resume may train longer, as a
run given the new budgets from the start would have (``phase_changes``): the phase in
progress may get a larger budget, and so may the last finished one while no later phase has
started (it is reopened where it ended); phases not started yet may be changed, appended
or dropped. A phase that ended on its own (converged, a fault) stays ended whatever its
budget: a run given the larger budget from the start would have ended there too."""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
from pathlib import Path
from typing import Any

from .. import io
from ..models import MLP
from ..optim import RUNNING, Adam, stop_reason
from ._fields import RESUME_FREE, ConfigError, _flatten


# fields added after runs were saved, with the value that keeps the old behaviour: a saved
# config without them matches a new one that has them at these values
ADDED = {"data.resample_every": None, "loss.learn": [],
         "model.activation": inspect.signature(MLP).parameters["activation"].default}
# Adam's schedule fields, under optimizer.* (phases, shorthands), at Adam's own defaults
ADDED_OPTIMIZER = {f.name: f.default for f in dataclasses.fields(Adam)
                   if f.name in ("schedule", "decay_steps", "decay_rate", "warmup_steps", "end_fraction")}


def _added_default(key: str):
    if key in ADDED:
        return ADDED[key]
    last = key.rsplit(".", 1)[-1]
    if key.startswith("optimizer.") and last in ADDED_OPTIMIZER:
        return ADDED_OPTIMIZER[last]
    return "<absent>"


def _flatten_lists(flat: dict[str, Any]) -> dict[str, Any]:
    # lists of mappings (optimizer.phases) field by field: KEY.INDEX.FIELD
    out = {}
    for key, value in flat.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                out.update({f"{key}.{i}.{k}": v for k, v in _flatten(item).items()})
            out[f"{key}.<count>"] = len(value)
        else:
            out[key] = value
    return out


def config_difference(saved: dict[str, Any], config: dict[str, Any], *, skip: tuple[str, ...] = ()) -> str | None:
    """The first field (dotted) where two run configs differ in a way that changes the
    numbers, as ``field: saved A, now B``; None if they agree. A field added since the
    saved run (``ADDED``) matches its absence when it holds the value that changes nothing.
    ``skip``: top-level keys compared elsewhere (``check_resume``: the optimizer's phases)."""
    a, b = _flatten_lists(_flatten(saved)), _flatten_lists(_flatten(config))
    for key in sorted(set(a) | set(b)):
        if key.split(".")[0] in RESUME_FREE or key.split(".")[0] in skip:
            continue
        if key not in a and key in b and b[key] == _added_default(key):
            continue
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            return f"{key}: saved {a.get(key, '<absent>')!r}, now {b.get(key, '<absent>')!r}"
    return None


def predates_streams(config: dict[str, Any]) -> bool:
    """Whether a run folder's config was written before jpinn's named random streams
    (``jpinn.rng``): its data section has no ``rng``, so its points cannot be rebuilt."""
    data = config.get("data")
    return isinstance(data, dict) and data.get("name", "study") == "study" and "rng" not in data


def check_resume(run_dir: str | Path, config: dict[str, Any]) -> dict[str, Any]:
    """The training checkpoint's metadata of ``run_dir`` if ``config`` may resume it;
    ``ConfigError`` naming ``resume`` and the reason otherwise."""
    try:
        meta = io.read_train_meta(run_dir)
    except io.RunFolderError as error:
        raise ConfigError(f"resume: {error}") from None
    if predates_streams(meta["config"]):
        raise ConfigError(f"resume: {run_dir} was trained before jpinn's named random streams (no data.rng in its"
                          f" config), so its points and sketches cannot be rebuilt; start a new run")
    difference = config_difference(meta["config"], config, skip=("optimizer", "budget_scale"))
    if difference is not None:
        raise ConfigError(f"resume: {run_dir} was trained with another config ({difference})")
    return {**meta, "changes": phase_changes(run_dir, meta, config)}


def _phase_name(i: int, phase) -> str:
    return f"phase {i + 1} ({phase.label})"


def _budget(phase, iterations: int | None = None) -> str:
    """A budget as the user gives it, in iterations; an optimizer budgeted in steps (L-BFGS)
    also in its steps."""
    per_step = phase.optimizer.iterations_per_step
    iterations = phase.iterations if iterations is None else iterations
    return f"{iterations} iterations" + (f" ({math.ceil(iterations / per_step)} steps)" if per_step > 1 else "")


def phase_changes(run_dir: str | Path, meta: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """How ``config``'s phases differ from those of the checkpoint ``meta`` (of ``run_dir``),
    one line each for the console (budgets grown, a phase reopened, phases appended); a
    one-line ``ConfigError`` naming the phase's field where a resume cannot give what a run
    with ``config`` from the start would (the module's docstring)."""
    from ..train import _chunk_steps
    from ._build import build_phases

    saved = meta["config"]
    old = build_phases(saved["optimizer"], saved.get("budget_scale", 1.0))
    new = build_phases(config["optimizer"], config.get("budget_scale", 1.0))
    index, in_phase, reports = meta["phase_index"], meta["has_state"], meta["reports"]
    started = index + 1 if in_phase else index  # phases that have run, the last one perhaps in part
    if len(new) < started:
        raise ConfigError(f"optimizer.phases: must hold at least {started} phases on resume, got {len(new)}: {run_dir}"
                          f" has started {', '.join(p.label for p in old[:started])} (phases that have not started"
                          f" may be changed, appended or dropped)")

    def settings(config_phases):  # each started phase's entry, its budget aside (compared in steps below)
        return {"optimizer": {"phases": [{k: v for k, v in entry.items() if k != "iterations"}
                                         for entry in config_phases[:started]]}}

    difference = config_difference(settings(saved["optimizer"]["phases"]), settings(config["optimizer"]["phases"]))
    if difference is not None:
        difference = re.sub(r"^optimizer\.phases\.(\d+)\.", r"optimizer.phases[\1].", difference)
        raise ConfigError(f"resume: {run_dir} was trained with another config ({difference}; a phase that has"
                          f" started keeps its settings, its budget aside)")
    log_every = config.get("log_every", 100)
    scale = config.get("budget_scale", 1.0)

    def got(i):  # the budget the config gives, as the driver runs it
        return f", got {new[i].iterations}" + (f" (budget_scale {scale:g} included)" if scale != 1 else "")

    changes = []
    for i in range(started):
        if new[i].steps == old[i].steps:
            continue
        field, name = f"optimizer.phases[{i}].iterations", _phase_name(i, old[i])
        finished = i < index
        done = reports[i] if finished else {"steps": meta["steps"], "iterations": meta["iterations"],
                                            "stop_code": meta.get("status", RUNNING)}
        if new[i].steps < done["steps"]:
            raise ConfigError(f"{field}: must be at least {done['iterations']} on resume{got(i)}: {name} has run"
                              f" {_budget(old[i], done['iterations'])} already")
        if done["stop_code"] != RUNNING:
            changes.append(f"{name} ended on its own ({stop_reason(done['stop_code'])}) after"
                           f" {done['iterations']} iterations: a budget of {_budget(new[i])} changes nothing")
        elif finished and (in_phase or i < index - 1):
            later = _phase_name(i + 1, old[i + 1])
            raise ConfigError(f"{field}: must be {old[i].iterations} on resume{got(i)}: {name} ended on its budget and"
                              f" {later} has started from where it ended (a longer {name} needs a new run)")
        else:
            line = f"{name}: budget {_budget(old[i])} -> {_budget(new[i])}"
            chunk = _chunk_steps(new[i], log_every)
            if finished:
                line += ", reopened where it ended"
                if done["steps"] % chunk:
                    line += (f"; its old end (iteration {done['iterations']}) is not a multiple of its log interval"
                             f" ({chunk * new[i].optimizer.iterations_per_step} iterations): metrics.jsonl keeps a"
                             f" log point there that a run given this budget from the start would not have"
                             f" (the steps, and so the parameters, are the same)")
            changes.append(line)
    for i in range(started, len(new)):
        if i >= len(old):
            changes.append(f"{_phase_name(i, new[i])}: appended, {_budget(new[i])}")
        elif config_difference({"p": saved["optimizer"]["phases"][i]}, {"p": config["optimizer"]["phases"][i]}) \
                or new[i].steps != old[i].steps:
            changes.append(f"{_phase_name(i, new[i])}: not started yet, runs as now configured ({_budget(new[i])})")
    if len(new) < len(old):
        changes.append(f"phases {len(new) + 1}-{len(old)} ({', '.join(p.label for p in old[len(new):])}):"
                       f" dropped (not started yet)")
    return changes


def say_changes(changes: list[str]) -> None:
    """The changes a resume makes to the run's phases, on stderr (they change what it trains)."""
    import sys

    for line in changes:
        print(f"jpinn: resume: {line}", file=sys.stderr, flush=True)
