"""Run files: metrics.jsonl, summary.json and the checkpoint, written so that a crash
loses nothing already written (each metrics line is flushed; JSON files and checkpoints
are written to a temporary file, fsynced and renamed into place)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

CHECKPOINT_DIR = "checkpoint"
PARAMS_FILE = "params.npz"
CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.jsonl"
LBFGS_FILE = "lbfgs.npz"
LBFGS_KEYS = ("w", "direction", "grad", "loss", "s", "y", "rho", "gamma", "c1", "c2")
TRAIN_FILE = "train.npz"
PREVIOUS_TRAIN_FILE = "train.prev.npz"  # an ensemble member's previous checkpoint
TRAIN_FORMAT = 1


class RunFolderError(ValueError):
    """A folder that is not a readable jpinn run."""


def _clean(obj: Any) -> Any:
    # JSON has no NaN/inf: write them as strings so every reader can parse the file
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.generic, jax.Array)) and np.ndim(obj) == 0:
        return _clean(np.asarray(obj).item())
    return obj


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it: put it straight back
    os.umask(mask)
    return mask


def _atomic_write(path: Path, write, *, delay: float = 0.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file 0600; give it the mode open() would (0666 less the umask),
        # so that a run's summary and checkpoints are as readable as its other files
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            if delay:  # a test widens the window in which a kill lands inside the write
                time.sleep(delay)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


RUN_FILES = (METRICS_FILE, SUMMARY_FILE, CHECKPOINT_DIR, "ensemble.json")  # what makes a folder a run's (or an ensemble's)


def check_run_folder(run_dir: str | os.PathLike, *, resume: bool = False, field: str = "hydra.run.dir") -> Path:
    """``run_dir`` if a run can write there; a one-line ``RunFolderError`` naming ``field`` otherwise.

    Refused: an empty name; a path through a file; a folder that cannot be created or
    written (read-only, ``/proc``); and, for a fresh run (``resume=False``), a folder that
    already holds a run's files (two runs' metrics would mix; ``resume=`` continues it).
    Leaves nothing behind (writability is probed with a folder made and removed at once)."""
    text = os.fspath(run_dir)
    if not text.strip():
        raise RunFolderError(f"{field}: empty; give a folder for the run's files")
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"{field}: {path} is a file, not a folder")
    existing = path
    while not existing.exists():  # the nearest ancestor that exists must be a writable folder
        existing = existing.parent
    if not existing.is_dir():
        raise RunFolderError(f"{field}: {path}: {existing} is a file, so no folder can be made under it")
    try:  # the honest test of writability (root, read-only mounts, /proc): make and remove a folder
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".jpinn-probe-"))
    except OSError as error:
        raise RunFolderError(f"{field}: {existing} is not writable ({error.strerror or error}); choose another folder") from None
    if not resume and path.is_dir():
        found = [name for name in RUN_FILES if (path / name).exists()]
        if found:
            raise RunFolderError(
                f"{field}: {path} already holds a run ({', '.join(found)}); continue it with resume={path},"
                f" or give another folder"
            )
    return path


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(_clean(obj), indent=2, sort_keys=False) + "\n"
    _atomic_write(Path(path), lambda h: h.write(text.encode()))


class MetricsWriter:
    """Appends one JSON line per log record and flushes it at once."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a", encoding="utf-8")

    def __call__(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(_clean(record)) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise RunFolderError(f"{run_dir}: not a jpinn run folder (no {METRICS_FILE})")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise RunFolderError(f"{path}: unreadable ({error})") from None
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):  # a torn last line (a run killed mid-write): left out
        lines = lines[:-1]
    return _parse_records(path, lines)


def _parse_records(path: Path, lines: list[str]) -> list[dict[str, Any]]:
    """The JSON records of metrics.jsonl lines; a RunFolderError naming the file and the line."""
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise RunFolderError(f"{path}: line {number} is not a JSON record ({error.msg})") from None
        if not isinstance(record, dict):
            raise RunFolderError(f"{path}: line {number} is not a JSON record (a {type(record).__name__})")
        records.append(record)
    return records


def save_checkpoint(run_dir: str | os.PathLike, w, config: dict[str, Any]) -> Path:
    """Save the flat parameters and the resolved run config under ``run_dir/checkpoint``."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    w = np.asarray(jax.device_get(w))
    _atomic_write(folder / PARAMS_FILE, lambda h: np.savez(h, w=w))
    write_json(folder / CONFIG_FILE, config)
    return folder


def load_checkpoint(run_dir: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """The flat parameter vector and the config of a run folder, with clear errors."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    params, config = folder / PARAMS_FILE, folder / CONFIG_FILE
    if not Path(run_dir).is_dir():
        raise RunFolderError(f"{run_dir}: no such run folder")
    if not params.is_file() or not config.is_file():
        raise RunFolderError(f"{run_dir}: not a jpinn run folder (no {CHECKPOINT_DIR}/{PARAMS_FILE} and {CONFIG_FILE})")
    try:
        with np.load(params) as archive:
            w = archive["w"]
    except Exception as error:  # a truncated or foreign file
        raise RunFolderError(f"{params}: unreadable checkpoint ({type(error).__name__}: {error})") from None
    try:
        spec = json.loads(config.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunFolderError(f"{config}: unreadable run config ({type(error).__name__}: {error})") from None
    if not isinstance(spec, dict):
        raise RunFolderError(f"{config}: not a run config (a JSON {type(spec).__name__})")
    if w.ndim != 1:
        raise RunFolderError(f"{run_dir}: checkpoint parameters must be a flat vector, got shape {w.shape}")
    return w, spec


def save_arrays(path: str | os.PathLike, arrays: dict[str, Any], *, delay: float = 0.0) -> Path:
    """Write named arrays to an ``.npz`` file, atomically (``delay``: seconds to wait
    before the rename, a test's window for a kill inside the write)."""
    arrays = {k: np.asarray(jax.device_get(v)) for k, v in arrays.items()}
    _atomic_write(Path(path), lambda h: np.savez(h, **arrays), delay=delay)
    return Path(path)


def save_lbfgs(run_dir: str | os.PathLike, w, state, optimizer) -> Path:
    """Save what the landscape analysis needs of the last L-BFGS phase of a run: its final
    parameters, last direction, gradient and loss, its memory (pairs oldest first) and its
    line-search constants, as ``checkpoint/lbfgs.npz``."""
    s, y, rho, gamma = state.memory.ordered()
    arrays = {
        "w": w, "direction": state.direction, "grad": state.grad, "loss": state.loss,
        "s": s, "y": y, "rho": rho, "gamma": gamma, "c1": optimizer.c1, "c2": optimizer.c2,
    }
    return save_arrays(Path(run_dir) / CHECKPOINT_DIR / LBFGS_FILE, arrays)


def load_lbfgs(run_dir: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """The arrays saved by ``save_lbfgs``; None if the run had no L-BFGS phase."""
    path = Path(run_dir) / CHECKPOINT_DIR / LBFGS_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path) as archive:
            arrays = {k: archive[k] for k in LBFGS_KEYS}
    except Exception as error:
        raise RunFolderError(f"{run_dir}: unreadable {CHECKPOINT_DIR}/{LBFGS_FILE} ({type(error).__name__}: {error})") from None
    p = arrays["w"].shape
    if arrays["s"].ndim != 2 or arrays["s"].shape != arrays["y"].shape or arrays["s"].shape[1:] != p:
        raise RunFolderError(f"{run_dir}: {CHECKPOINT_DIR}/{LBFGS_FILE} has inconsistent shapes")
    return arrays


# ----------------------------------------------------------------- training checkpoints

def _host(x) -> np.ndarray:
    # a copy, not a view: the driver donates these buffers to its next chunk
    return np.array(jax.device_get(x), copy=True)


def _array_leaves(tree) -> list[np.ndarray]:
    return [_host(x) for x in jax.tree_util.tree_leaves(tree) if eqx.is_array(x)]


def _restore(template, arrays: list[np.ndarray], where: str):
    """``template`` (a pytree of ShapeDtypeStructs and static values) filled with ``arrays``."""
    leaves, treedef = jax.tree_util.tree_flatten(template)
    slots = [i for i, leaf in enumerate(leaves) if isinstance(leaf, jax.ShapeDtypeStruct)]
    if len(slots) != len(arrays):
        raise RunFolderError(f"{where}: holds {len(arrays)} arrays, the optimizer's state has {len(slots)}")
    for i, array in zip(slots, arrays):
        if array.shape != leaves[i].shape or array.dtype != leaves[i].dtype:
            raise RunFolderError(
                f"{where}: array of shape {array.shape} {array.dtype}, the optimizer's state wants"
                f" {leaves[i].shape} {leaves[i].dtype}"
            )
        leaves[i] = jnp.asarray(array)
    return jax.tree_util.tree_unflatten(treedef, leaves)


def save_train_checkpoint(run_dir: str | os.PathLike, checkpoint, config: dict[str, Any],
                          snapshot: int | None = None) -> Path:
    """Write a ``jpinn.train.TrainCheckpoint`` and the run's config as one file,
    ``checkpoint/train.npz``, atomically: the previous checkpoint stays in place until the
    new one is complete on disk, so a kill at any moment leaves one loadable checkpoint.

    ``snapshot`` (an ensemble member's checkpoint number): the previous checkpoint is kept
    as ``train.prev.npz``, so that after a kill in the middle of writing the members' files
    one after another, every member still holds the last snapshot all of them completed
    (``common_snapshot``)."""
    meta = {
        "format": TRAIN_FORMAT, "phase_index": checkpoint.phase_index, "has_state": checkpoint.state is not None,
        "steps": checkpoint.steps, "iterations": checkpoint.iterations, "evaluations": checkpoint.evaluations,
        "seconds": checkpoint.seconds, "compile_seconds": checkpoint.compile_seconds,
        "total_iterations": checkpoint.total_iterations, "n_records": checkpoint.n_records,
        "elapsed": checkpoint.elapsed, "reports": [r.to_dict() for r in checkpoint.reports],
        "loss_limit": float(checkpoint.loss_limit), "status": int(checkpoint.status),
        "loss_limits": [float(v) for v in checkpoint.loss_limits], "config": config,
        **({} if snapshot is None else {"snapshot": int(snapshot)}),
    }
    arrays = {"meta": np.array(json.dumps(_clean(meta))), "w": _host(checkpoint.w)}
    delay = float(os.environ.get("JPINN_CHECKPOINT_WRITE_DELAY", "0") or 0)  # tests only
    if checkpoint.state is not None:
        arrays.update({f"state/{i}": a for i, a in enumerate(_array_leaves(checkpoint.state))})
    for k, (w, state) in enumerate(zip(checkpoint.phase_w, checkpoint.states)):
        arrays[f"phase_w/{k}"] = _host(w)
        arrays.update({f"states/{k}/{i}": a for i, a in enumerate(_array_leaves(state))})
    path = Path(run_dir) / CHECKPOINT_DIR / TRAIN_FILE
    if snapshot is not None and path.is_file():
        os.replace(path, path.with_name(PREVIOUS_TRAIN_FILE))
    return save_arrays(path, arrays, delay=delay)


def common_snapshot(run_dirs: list[str | os.PathLike]) -> dict[str, str]:
    """The file (``train.npz`` or ``train.prev.npz``) of each ensemble member that holds the
    newest snapshot every member has; one-line ``RunFolderError`` if there is none."""
    held = []
    for run_dir in run_dirs:
        files = {}
        for name in (TRAIN_FILE, PREVIOUS_TRAIN_FILE):
            if (Path(run_dir) / CHECKPOINT_DIR / name).is_file():
                try:
                    files[read_train_meta(run_dir, name).get("snapshot")] = name
                except RunFolderError:
                    continue  # a torn file: the other one may do
        held.append(files)
    common = set.intersection(*(set(files) for files in held)) - {None} if held else set()
    if not common:
        raise RunFolderError(f"{Path(run_dirs[0]).parent}: its members hold no training checkpoint taken together")
    newest = max(common)
    return {str(run_dir): files[newest] for run_dir, files in zip(run_dirs, held)}


def read_train_meta(run_dir: str | os.PathLike, name: str = TRAIN_FILE) -> dict[str, Any]:
    """The metadata of ``checkpoint/train.npz`` (or ``name``: phase, iteration, the run's
    config), with a one-line ``RunFolderError`` for a folder without one or a file that is not one."""
    path = Path(run_dir) / CHECKPOINT_DIR / name
    if not Path(run_dir).is_dir():
        raise RunFolderError(f"{run_dir}: no such run folder")
    if not path.is_file():
        raise RunFolderError(f"{run_dir}: no training checkpoint to resume ({CHECKPOINT_DIR}/{name})")
    try:
        with np.load(path) as archive:
            meta = json.loads(str(archive["meta"]))
    except Exception as error:
        raise RunFolderError(f"{run_dir}: unreadable {CHECKPOINT_DIR}/{name} ({type(error).__name__}: {error})") from None
    if not isinstance(meta, dict) or meta.get("format") != TRAIN_FORMAT:
        raise RunFolderError(f"{run_dir}: {CHECKPOINT_DIR}/{name} is not a jpinn training checkpoint of format {TRAIN_FORMAT}")
    return meta


def load_train_checkpoint(run_dir: str | os.PathLike, f, w0, phases, name: str = TRAIN_FILE):
    """Read ``checkpoint/train.npz`` (or ``name``) back into a ``jpinn.train.TrainCheckpoint``
    for the run whose loss is ``f``, initial parameters ``w0`` and phases ``phases`` (they give
    the optimizer states' structure); returns ``(checkpoint, meta)``."""
    from .train import PhaseReport, TrainCheckpoint

    meta = read_train_meta(run_dir, name)
    where = f"{run_dir}: {CHECKPOINT_DIR}/{name}"
    for stale in (Path(run_dir) / CHECKPOINT_DIR).glob(f".{TRAIN_FILE}.*.tmp"):  # a write the crash cut short
        stale.unlink(missing_ok=True)
    try:
        with np.load(Path(run_dir) / CHECKPOINT_DIR / name) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except Exception as error:
        raise RunFolderError(f"{where}: unreadable ({type(error).__name__}: {error})") from None
    index, n_finished = meta["phase_index"], len(meta["reports"])
    if not (0 <= index <= len(phases)) or n_finished != index:
        raise RunFolderError(f"{where}: at phase {index} with {n_finished} finished, the run has {len(phases)} phases")

    def state_of(k: int, prefix: str):
        template = eqx.filter_eval_shape(phases[k].optimizer.init, f, w0)
        count = sum(1 for name in arrays if name.startswith(prefix))
        return _restore(template, [arrays[f"{prefix}{i}"] for i in range(count)], where)

    def vector(name: str):
        if name not in arrays or arrays[name].shape != w0.shape:
            raise RunFolderError(f"{where}: {name} missing or not a vector of {w0.shape[0]} parameters")
        return jnp.asarray(arrays[name], dtype=w0.dtype)

    fields = {f.name for f in dataclasses.fields(PhaseReport)}
    checkpoint = TrainCheckpoint(
        phase_index=index, w=vector("w"),
        state=state_of(index, "state/") if meta["has_state"] else None,
        steps=meta["steps"], iterations=meta["iterations"], evaluations=meta["evaluations"],
        seconds=meta["seconds"], compile_seconds=meta["compile_seconds"],
        total_iterations=meta["total_iterations"],
        reports=[PhaseReport(**{k: v for k, v in r.items() if k in fields}) for r in meta["reports"]],
        states=[state_of(k, f"states/{k}/") for k in range(n_finished)],
        phase_w=[vector(f"phase_w/{k}") for k in range(n_finished)],
        n_records=meta["n_records"], elapsed=meta["elapsed"],
        # written since issue 9 (the divergence limit of the phase in progress, an ensemble
        # member's status); a checkpoint without them has no limit and was running
        loss_limit=float(meta.get("loss_limit", "inf")), status=int(meta.get("status", 0)),
        # written since issue 20 (the finished phases' limits, for a phase reopened with a
        # larger budget); without them jpinn.train works them out again
        loss_limits=[float(v) for v in meta.get("loss_limits", [])],
    )
    return checkpoint, meta


def truncate_metrics(run_dir: str | os.PathLike, n_records: int) -> list[dict[str, Any]]:
    """Keep the first ``n_records`` lines of metrics.jsonl (those a checkpoint covers; later
    ones belong to work the resumed run redoes), rewritten atomically; return them."""
    path = Path(run_dir) / METRICS_FILE
    lines = path.read_text().splitlines(keepends=True) if path.is_file() else []
    complete = [line for line in lines if line.endswith("\n")]
    if len(complete) < n_records:
        raise RunFolderError(f"{run_dir}: {METRICS_FILE} holds {len(complete)} records, its checkpoint {n_records}")
    kept = complete[:n_records]
    records = _parse_records(path, kept)
    _atomic_write(path, lambda h: h.write("".join(kept).encode()))
    return records
