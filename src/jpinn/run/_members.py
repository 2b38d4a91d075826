"""Ensembles: the members of one (``ensemble.seeds`` / ``ensemble.params`` expanded into
solo run configs, ``jpinn.run._fields.ensemble_members``), checked, built and trained as
one vmapped program, each member's outputs in its own run folder."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import io
from ..loggers import Loggers, build_loggers
from ._build import build_phases
from ._config import validate
from ._fields import RESUME_FREE, ConfigError, _allowed_in_ensemble, _flatten, ensemble_axes
from ._outputs import _finish
from ._resume import check_resume, say_changes
from ._run import Run, build


def check_ensemble(configs: list[dict[str, Any]]) -> None:
    """The resolved member configs of one ensemble may differ only in ``ENSEMBLE_FIELDS``,
    and their phases only in what ``jpinn.ensemble.stack_members`` can stack (real values,
    seeds); a one-line ``ConfigError`` otherwise. Builds no array."""
    from ..ensemble import EnsembleError, check_members, stack_members

    flat = [_flatten({k: v for k, v in c.items() if k not in RESUME_FREE | {"ensemble"}}) for c in configs]
    for k, other in enumerate(flat[1:], start=1):
        for key in sorted(set(flat[0]) | set(other)):
            differs = flat[0].get(key, "<absent>") != other.get(key, "<absent>")
            # the phases' own differences are stack_members' to judge, below
            if differs and not (_allowed_in_ensemble(key) or key == "optimizer.phases"):
                raise ConfigError(
                    f"ensemble: members 0 and {k} differ in {key} ({flat[0].get(key, '<absent>')!r},"
                    f" {other.get(key, '<absent>')!r}); members may differ only in seeds, PDE coefficients,"
                    f" optimizer settings and protocol values"
                )
    phases = [build_phases(c["optimizer"], c.get("budget_scale", 1.0)) for c in configs]
    try:
        check_members(phases)
        for index in range(len(phases[0])):
            stack_members([p[index].optimizer for p in phases], f"optimizer.phases[{index}]", np.float32, xp=np)
    except EnsembleError as error:
        raise ConfigError(str(error)) from None


@dataclasses.dataclass
class EnsembleRun:
    """The members of an ensemble (``Run`` each) and the field values that set them apart."""

    members: list[Run]
    overrides: list[dict[str, Any]]


ENSEMBLE_FILE = "ensemble.json"



def member_folder(index: int) -> str:
    return f"member-{index:03d}"


def validate_ensemble(configs: list[dict[str, Any]], overrides: list[dict[str, Any]] | None = None) -> None:
    """Every member config valid (the error names the member and its values), each a solo
    run's, and all of them one ensemble (``check_ensemble``). Builds no array."""
    if not configs:
        raise ConfigError("ensemble: no members")
    for k, config in enumerate(configs):
        values = overrides[k] if overrides else {}
        where = f"ensemble member {k}" + (f" ({', '.join(f'{f}={v}' for f, v in values.items())})" if values else "")
        try:
            validate(config)
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None
        if ensemble_axes(config.get("ensemble")):
            raise ConfigError(f"{where}: ensemble: a member's own config must be a solo run's")
    check_ensemble(configs)


def check_ensemble_resume(run_dir: str | Path, configs: list[dict[str, Any]]) -> tuple[dict[str, str], list[str]]:
    """Whether ``configs`` may resume the ensemble in ``run_dir``: each member folder's
    checkpoint was trained with its member's config and one snapshot is held by all. Returns
    each member folder's checkpoint file to load (``io.common_snapshot``) and the changes to
    its phases (``check_resume``; each line once, for all members); ``ConfigError`` naming
    ``resume`` otherwise."""
    run_dir = Path(run_dir)
    if not (run_dir / ENSEMBLE_FILE).is_file():
        raise ConfigError(f"resume: {run_dir} is not an ensemble run folder (no {ENSEMBLE_FILE})")
    folders = [run_dir / member_folder(k) for k in range(len(configs))]
    changes: list[str] = []
    for folder, config in zip(folders, configs):
        changes += [line for line in check_resume(folder, config)["changes"] if line not in changes]
    try:
        return io.common_snapshot(folders), changes
    except io.RunFolderError as error:
        raise ConfigError(f"resume: {error}") from None


def build_ensemble(configs: list[dict[str, Any]], overrides: list[dict[str, Any]] | None = None) -> EnsembleRun:
    """Validate and build the members of an ensemble from their resolved configs (each a
    solo run's config: ``scripts/train.py`` expands ``ensemble.seeds`` / ``ensemble.params``
    into them). ``overrides[k]``: what sets member k apart, for its summary."""
    validate_ensemble(configs, overrides)
    return EnsembleRun([build(config) for config in configs], list(overrides or [{} for _ in configs]))


def execute_ensemble(ensemble: EnsembleRun, run_dir: str | Path, *, progress: bool | None = None) -> list[dict[str, Any]]:
    """Train the members as one ensemble (``jpinn.ensemble.train_ensemble``); member k's run
    outputs go to ``run_dir/member-k`` (a run folder like any other: aggregate.py, plot.py
    and spectrum.py read it), and ``run_dir/ensemble.json`` lists the members.

    Each member's summary holds ``ensemble`` (size, index, overrides); its phase seconds are
    the ensemble's (all members trained in the same wall time). metrics.jsonl grows line by
    line per member. Training checkpoints are written for every member at the same chunk
    boundaries, numbered, the previous one kept (``io.save_train_checkpoint(snapshot=)``);
    with ``resume`` in the config the ensemble continues from the newest checkpoint all its
    members hold, bit for bit as if never interrupted."""
    from contextlib import ExitStack

    from ..ensemble import train_ensemble

    run_dir = Path(run_dir)
    runs = ensemble.members
    config = runs[0].config
    io.check_run_folder(run_dir, resume=config.get("resume") is not None, field="run folder")
    if progress is None:
        progress = not config.get("quiet", False)
    start = time.perf_counter()
    folders = [run_dir / member_folder(k) for k in range(len(runs))]
    listing = {"size": len(runs), "members": [
        {"index": k, "folder": folder.name, "overrides": overrides}
        for k, (folder, overrides) in enumerate(zip(folders, ensemble.overrides))
    ]}
    resumes, records, snapshot = None, None, 0
    if config.get("resume") is not None:  # continue from the newest snapshot every member holds
        files, changes = check_ensemble_resume(run_dir, [run.config for run in runs])
        say_changes(changes)
        resumes, records = [], []
        for folder, run in zip(folders, runs):
            checkpoint, meta = io.load_train_checkpoint(folder, run.loss, run.w0, run.phases, files[str(folder)])
            snapshot = meta["snapshot"]
            resumes.append(checkpoint)
            records.append(io.truncate_metrics(folder, checkpoint.n_records))
    else:
        for folder, run in zip(folders, runs):
            folder.mkdir(parents=True, exist_ok=True)
            io.write_json(folder / io.CHECKPOINT_DIR / io.CONFIG_FILE, run.config)
        io.write_json(run_dir / ENSEMBLE_FILE, listing)
    counters = [snapshot] * len(runs)  # the members' checkpoints are numbered together

    def saver(k: int):
        def save(checkpoint) -> None:
            counters[k] += 1
            io.save_train_checkpoint(folders[k], checkpoint, runs[k].config, snapshot=counters[k])
        return save

    with ExitStack() as stack:  # each member's records: its metrics.jsonl and its own loggers' runs
        writers = [stack.enter_context(Loggers(folder, build_loggers(run.config.get("logger")), run.config,
                                               records[k] if records else []))
                   for k, (folder, run) in enumerate(zip(folders, runs))]
        results = train_ensemble(
            [run.loss for run in runs], [run.w0 for run in runs], [run.phases for run in runs],
            log_every=config.get("log_every", 100), callbacks=writers, progress=progress,
            checkpoints=[saver(k) for k in range(len(runs))], checkpoint_every=config.get("checkpoint_every", 1000),
            resumes=resumes, records=records, compile_ahead=config.get("compile_ahead", True),
        )
        summaries = []
        for k, (run, folder, result) in enumerate(zip(runs, folders, results)):
            extra = {"ensemble": {"size": len(runs), "index": k, "overrides": ensemble.overrides[k]}}
            summaries.append(_finish(run, folder, result, start, extra))
            writers[k].finish(summaries[-1])
    io.write_json(run_dir / ENSEMBLE_FILE, {**listing, "wall_seconds": time.perf_counter() - start})
    return summaries
