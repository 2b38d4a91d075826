"""A run's outputs: ``execute`` trains a ``Run`` and writes its folder (metrics.jsonl,
checkpoints, summary.json, figures); ``evaluate`` gives test errors; ``load_run`` reads a
run folder back."""

from __future__ import annotations

import dataclasses
import platform
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import io, rng
from ..data import TEST_SETS, reference_sets
from ..loggers import Loggers, build_loggers
from ..metrics import field_errors
from ..optim import LBFGS
from ..precision import MATMUL_PRECISION, set_precision
from ..problems import AbstractProblem
from ..train import TrainResult, train
from ._build import build_model, build_pde, build_resample, default_test_set
from ._fields import ConfigError
from ._resume import check_resume, say_changes
from ._run import Run


def evaluate(model, pde: AbstractProblem, test_set: str | tuple = "full", dtype=jnp.float32) -> dict[str, Any]:
    """L2RE and L1RE of ``model`` on a test set: the name of one of the study's grids
    (``full``, ``companion``; the closed form there) or ``(points, reference values)``.
    Per field under ``fields``; ``l2re`` / ``l1re``: the worst field's."""
    if isinstance(test_set, str):
        test_set = reference_sets(pde, study_grid=True, dtype=dtype)[test_set]
    points, reference = test_set
    return field_errors(model.predict(points), reference, tuple(pde.fields))


@dataclasses.dataclass
class LoadedRun:
    """A trained run read back: the network, its problem, its config and its summary."""

    model: Any
    pde: Any
    config: dict[str, Any]
    summary: dict[str, Any] | None
    w: Any


def load_run(run_dir: str | Path) -> LoadedRun:
    """Load a run folder back into a model (``LoadedRun.model``) and its problem, rebuilt
    from the folder's config (a user's ``pde._target_`` problem is imported again).

    Sets the run's precision first (float64 runs enable JAX's x64 mode).
    """
    import json

    from ..loss import check_learn, coefficient_value, flatten_model

    w, config = io.load_checkpoint(run_dir)
    dtype = set_precision(config.get("dtype", "float32"))
    try:
        pde = build_pde(config["pde"])
        # the run's own model key: what is fixed at initialisation and not trained (a Fourier
        # embedding's B) must be the run's; the trained parameters come from the checkpoint
        model = build_model(config, rng.key(config.get("seed", 0), "model"), dtype, pde)
    except (ConfigError, KeyError, TypeError) as error:
        raise io.RunFolderError(f"{run_dir}: its config does not build ({str(error).splitlines()[0]})") from None
    w0, unravel, static = flatten_model(model)
    try:
        learned = check_learn(pde, (config.get("loss") or {}).get("learn"))
    except ValueError as error:
        raise io.RunFolderError(f"{run_dir}: its config does not build ({error})") from None
    if w0.shape[0] + len(learned) != w.shape[0]:
        raise io.RunFolderError(
            f"{run_dir}: checkpoint has {w.shape[0]} parameters, its config's model has {w0.shape[0]}"
            + (f" and {len(learned)} learned coefficient(s)" if learned else "")
        )
    w = jnp.asarray(w, dtype=dtype)
    model = eqx.combine(unravel(w[: w0.shape[0]] if learned else w), static)
    if learned:  # the problem at its learned coefficients
        values = [float(coefficient_value(w[w0.shape[0] + i], kind)) for i, (_, kind) in enumerate(learned)]
        pde = eqx.tree_at(lambda p: [getattr(p, n) for n, _ in learned], pde, values)
    summary_path = Path(run_dir) / io.SUMMARY_FILE
    try:
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    except (OSError, ValueError) as error:
        raise io.RunFolderError(f"{summary_path}: unreadable ({str(error).splitlines()[0]})") from None
    return LoadedRun(model=model, pde=pde, config=config, summary=summary, w=w)


# environment variables that change how XLA uses the device (launcher=local sets the first two)
XLA_ENV = ("XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION", "XLA_PYTHON_CLIENT_ALLOCATOR", "XLA_FLAGS")



def _device_description() -> dict[str, Any]:
    import os

    device = jax.devices()[0]
    return {
        "pid": os.getpid(),
        "xla_env": {name: os.environ[name] for name in XLA_ENV if name in os.environ},
        "platform": device.platform,
        "device_kind": getattr(device, "device_kind", "unknown"),
        "device_count": str(jax.device_count()),
        "host": platform.node(),
        "processor": platform.processor() or platform.machine(),
    }


def execute(run: Run, run_dir: str | Path, *, progress: bool | None = None) -> dict[str, Any]:
    """Train ``run`` and write the run outputs of DESIGN.md into ``run_dir``.

    ``metrics.jsonl`` grows line by line while training; the checkpoint, ``summary.json``
    and the figures follow at the end. Returns the summary.
    """
    run_dir = Path(run_dir)
    config = run.config
    io.check_run_folder(run_dir, resume=config.get("resume") is not None, field="run folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    if progress is None:
        progress = not config.get("quiet", False)
    start = time.perf_counter()
    resume, records = None, []
    if config.get("resume") is not None:  # continue run_dir from its checkpoint
        say_changes(check_resume(run_dir, config)["changes"])
        resume, _ = io.load_train_checkpoint(run_dir, run.loss, run.w0, run.phases)
        records = io.truncate_metrics(run_dir, resume.n_records)  # later lines: work to redo
    else:
        io.write_json(run_dir / io.CHECKPOINT_DIR / io.CONFIG_FILE, config)
    with Loggers(run_dir, build_loggers(config.get("logger")), config, records) as loggers:
        result: TrainResult = train(
            run.loss, run.w0, run.phases, log_every=config.get("log_every", 100),
            callback=loggers, progress=progress,
            checkpoint=lambda ck: io.save_train_checkpoint(run_dir, ck, config),
            checkpoint_every=config.get("checkpoint_every", 1000), resume=resume, records=records,
            compile_ahead=config.get("compile_ahead", True),
            resample=build_resample(config, run.pde, run.data, run.phases, run.dtype),
        )
        summary = _finish(run, run_dir, result, start)
        loggers.finish(summary)
    return summary


def _learned(run: Run, result: TrainResult) -> dict[str, Any]:
    """An inverse problem's learned coefficients: name -> value, its start, its true value
    and relative error (where the problem knows it), and its value where each phase ended."""
    if not run.loss.learned:
        return {}
    true = run.pde.true_coefficients()
    final = {k: float(v) for k, v in run.loss.coefficients(result.w).items()}
    ends = [{k: float(v) for k, v in run.loss.coefficients(w).items()} for w in result.phase_w]
    out = {}
    for name, value in final.items():
        entry = {"value": value, "initial": float(getattr(run.pde, name)), "phase_ends": [e[name] for e in ends]}
        if name in true:
            entry["true"] = true[name]
            entry["relative_error"] = abs(value - true[name]) / abs(true[name]) if true[name] else abs(value)
        out[name] = entry
    return out


def _finish(run: Run, run_dir: Path, result: TrainResult, start: float, extra: dict[str, Any] | None = None):
    """The run outputs after training: final checkpoint, L-BFGS state, test errors,
    summary.json (with ``extra`` merged in) and figures. Returns the summary."""
    import importlib.metadata as metadata

    config = run.config
    io.save_checkpoint(run_dir, result.w, config)
    lbfgs = [k for k, phase in enumerate(run.phases) if isinstance(phase.optimizer, LBFGS)]
    if lbfgs:  # the landscape analysis (scripts/spectrum.py) starts from the last L-BFGS phase
        k = lbfgs[-1]
        io.save_lbfgs(run_dir, result.phase_w[k], result.states[k], run.phases[k].optimizer)
    model = run.loss.model(result.w)
    total, components = eqx.filter_jit(lambda f, w: f(w))(run.loss, result.w)
    test_set = default_test_set(config, run.references)
    errors = {name: evaluate(model, run.pde, reference, run.dtype) for name, reference in run.references.items()}
    phase_reports = [p.to_dict() for p in result.phases]
    if test_set is not None:
        for report, w in zip(phase_reports, result.phase_w):  # the test error where each phase ended
            report.update({k: v for k, v in evaluate(run.loss.model(w), run.pde, run.references[test_set], run.dtype).items()
                           if k != "fields"})
    learned = _learned(run, result)
    iterations = sum(p.iterations for p in result.phases)
    seconds = sum(p.seconds for p in result.phases)
    summary = {
        "pde": {"name": run.pde.name, **run.pde.coefficients(),
                **({"_target_": config["pde"]["_target_"]} if config["pde"].get("_target_") else {})},
        "loss": float(total),
        **{k: float(v) for k, v in components.items()},
        "components": [c.name for c in run.pde.conditions()],
        "fields": list(run.pde.fields),
        "coordinates": list(run.pde.domain().coordinates),
        "l2re": errors[test_set]["l2re"] if test_set else None,
        "l1re": errors[test_set]["l1re"] if test_set else None,
        "test_set": test_set,
        "errors": errors,
        **({"learned": learned} if learned else {}),
        "iterations": iterations,
        "seconds": seconds,
        "seconds_per_iteration": seconds / iterations if iterations else float("nan"),
        "compile_seconds": sum(p.compile_seconds for p in result.phases),
        "wall_seconds": time.perf_counter() - start,
        "phases": phase_reports,
        "n_parameters": int(run.w0.shape[0]),
        "data": run.data.counts(),
        "dtype": config.get("dtype", "float32"),
        "matmul_precision": MATMUL_PRECISION,
        "derivatives": config.get("derivatives", "auto"),
        "device": _device_description(),
        "devices": 1 if run.loss.mesh is None else run.loss.mesh.size,  # the points split over this many
        "versions": {pkg: metadata.version(pkg) for pkg in ("jax", "jaxlib", "optax", "equinox", "jpinn")},
        "python": platform.python_version(),
        "seed": config.get("seed", 0),
        "config": config,  # the resolved config: `train.py` with these values reruns the run
        **(extra or {}),
    }
    if config.get("plot", True):
        from ..plot import plot_history, plot_solution

        figures = run_dir / "figures"
        figures.mkdir(exist_ok=True)
        if test_set in TEST_SETS:
            plot_solution(model, run.pde, figures / "solution.png", n_x=TEST_SETS[test_set][0])
        else:
            plot_solution(model, run.pde, figures / "solution.png")
        plot_history(result.records, figures / "loss.png", components=list(components))
    io.write_json(run_dir / io.SUMMARY_FILE, summary)
    return summary
