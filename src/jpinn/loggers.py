"""Experiment tracking: the driver's log records sent to TensorBoard, Weights & Biases or
MLflow, beside ``metrics.jsonl`` (always written, the source of truth that resume, plots and
reports read).

A logger is anything with ``start(run_dir, config, resumed_at)``, ``log(record)`` and
``finish(summary)`` (``Logger``); ``Loggers`` sends every record to ``metrics.jsonl`` first,
then to each logger. The config's ``logger`` section (the Hydra group ``logger=tensorboard``,
or ``logger=[tensorboard,mlflow]``) names the backends and their options; ``build_loggers``
makes them. The backends are optional extras (``pip install "jpinn[tracking]"``); a missing
one is refused before any work.

What each backend receives, per record (step = the record's ``iteration``, over the run):
``train/loss``, ``train/grad_norm``, ``loss/<condition>`` (each loss component),
``info/<key>`` (the optimizer's scalar info: learning rate, damping, CG iterations, ...),
``phase`` (the phase index) and ``time/wall_seconds``; at the end ``test/l2re``,
``test/l1re`` and ``test/loss`` (``summary.json``'s). MLflow and W&B also get the resolved
config (flattened: ``model.width`` ...) as parameters.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Protocol

from . import io

SCALAR_KEYS = ("phase", "phase_index", "iteration", "phase_iteration", "step", "evaluations", "loss", "grad_norm",
               "status", "info", "time")


class Logger(Protocol):
    """Where a run's records go besides metrics.jsonl."""

    name: str

    def start(self, run_dir: Path, config: dict[str, Any], resumed_at: int | None) -> None:
        """Before the first record; ``resumed_at``: the iteration a resumed run goes on from
        (records past it, from the interrupted attempt, are superseded), None for a fresh run."""

    def log(self, record: dict[str, Any]) -> None: ...

    def finish(self, summary: dict[str, Any] | None) -> None:
        """After the last record; ``summary`` None when training stopped early (an error,
        Ctrl-C)."""


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """A driver record as the tagged scalars every backend logs (the module's docstring)."""
    out = {"train/loss": record["loss"], "train/grad_norm": record["grad_norm"], "phase": record["phase_index"],
           "time/wall_seconds": record["time"]}
    out.update({f"loss/{k}": v for k, v in record.items() if k not in SCALAR_KEYS})
    out.update({f"info/{k}": v for k, v in (record.get("info") or {}).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)})
    return {k: float(v) for k, v in out.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def summary_scalars(summary: dict[str, Any]) -> dict[str, float]:
    out = {"test/l2re": summary.get("l2re"), "test/l1re": summary.get("l1re"), "test/loss": summary.get("loss")}
    return {k: float(v) for k, v in out.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def flat_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``model.width: 50`` ...; lists as their text (MLflow and W&B take scalars)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_config(value, f"{name}."))
        else:
            out[name] = value if isinstance(value, (int, float, str, bool)) or value is None else str(value)
    return out


class TensorBoard:
    """Event files under ``RUN_DIR/<dir>`` (default ``tensorboard``), written with
    TensorBoard's own writer: ``tensorboard --logdir outputs`` shows every run. A resumed run
    first writes a session start just past the checkpoint's iteration, which makes TensorBoard drop
    the interrupted attempt's later points."""

    name = "tensorboard"

    def __init__(self, dir: str = "tensorboard", flush_seconds: float = 10.0):
        self.dir, self.flush_seconds = dir, float(flush_seconds)
        self._writer = None

    def start(self, run_dir, config, resumed_at):
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._event = event_pb2
        self._writer = EventFileWriter(str(Path(run_dir) / self.dir), flush_secs=self.flush_seconds)
        if resumed_at is not None:
            self._writer.add_event(event_pb2.Event(wall_time=time.time(), step=int(resumed_at) + 1,
                                                   session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)))

    def _write(self, values: dict[str, float], step: int):
        from tensorboard.compat.proto import summary_pb2

        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=k, simple_value=v) for k, v in values.items()
                                             if math.isfinite(v)])
        self._writer.add_event(self._event.Event(wall_time=time.time(), step=int(step), summary=summary))

    def log(self, record):
        self._write(scalars(record), record["iteration"])
        self._last = record["iteration"]

    def finish(self, summary):
        if summary is not None:
            self._write(summary_scalars(summary), summary.get("iterations", getattr(self, "_last", 0)))
        self._writer.close()


class WandB:
    """A Weights & Biases run, offline by default (``mode: offline``: files under
    ``RUN_DIR/wandb``, no account; ``wandb sync RUN_DIR/wandb/offline-run-*`` uploads it
    later), named after the run folder, in ``project``, grouped by ``group`` (default: the
    folder above the run's, a sweep's)."""

    name = "wandb"

    def __init__(self, project: str = "jpinn", mode: str = "offline", group: str | None = None, entity: str | None = None,
                 tags: list[str] | None = None):
        if mode not in ("offline", "online", "disabled"):
            raise ValueError(f"mode: must be offline, online or disabled, got {mode!r}")
        self.project, self.mode, self.group, self.entity, self.tags = project, mode, group, entity, list(tags or [])
        self._run = None

    def start(self, run_dir, config, resumed_at):
        import wandb

        os.environ.setdefault("WANDB_SILENT", "true")
        run_dir = Path(run_dir).resolve()
        self._run = wandb.init(
            project=self.project, mode=self.mode, dir=str(run_dir), name=run_dir.name, entity=self.entity,
            group=self.group or run_dir.parent.name, tags=self.tags, config=flat_config(config), reinit="create_new",
            notes=None if resumed_at is None else f"resumed at iteration {resumed_at}",
        )

    def log(self, record):
        self._run.log({k: v for k, v in scalars(record).items() if math.isfinite(v)}, step=int(record["iteration"]))

    def finish(self, summary):
        if summary is not None:
            self._run.summary.update(summary_scalars(summary))
        self._run.finish(exit_code=0 if summary is not None else 1)


class MLflow:
    """An MLflow run in experiment ``experiment`` of the store ``tracking_uri`` (default
    ``mlruns`` in the working directory: a local file store, shared by every run launched
    there; ``mlflow ui --backend-store-uri mlruns`` shows them), named after the run folder;
    the config's fields are its parameters. A resumed run continues the same MLflow run (its
    id is kept in ``RUN_DIR/mlflow-run-id``)."""

    name = "mlflow"
    ID_FILE = "mlflow-run-id"

    def __init__(self, tracking_uri: str = "mlruns", experiment: str = "jpinn"):
        self.tracking_uri, self.experiment = tracking_uri, experiment
        self._client = self._run_id = None

    def _uri(self) -> str:
        uri = self.tracking_uri
        if "://" not in uri and not uri.startswith("file:"):  # a folder: a local file store
            uri = Path(uri).resolve().as_uri()
        if uri.startswith("file:"):  # maintained for local use; MLflow 3 asks for this opt-in
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        return uri

    def start(self, run_dir, config, resumed_at):
        from mlflow.tracking import MlflowClient

        self._client = MlflowClient(self._uri())
        id_file = Path(run_dir) / self.ID_FILE
        if resumed_at is not None and id_file.is_file():
            self._run_id = id_file.read_text().strip()
            self._client.update_run(self._run_id, status="RUNNING")
            return
        experiment = self._client.get_experiment_by_name(self.experiment)
        experiment_id = experiment.experiment_id if experiment else self._client.create_experiment(self.experiment)
        run = self._client.create_run(experiment_id, run_name=Path(run_dir).resolve().name,
                                      tags={"jpinn.run_dir": str(Path(run_dir).resolve())})
        self._run_id = run.info.run_id
        id_file.write_text(self._run_id + "\n")
        from mlflow.entities import Param

        params = [Param(k, str(v)[:6000]) for k, v in flat_config(config).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 parameters per batch
            self._client.log_batch(self._run_id, params=params[i:i + 100])

    def _metrics(self, values: dict[str, float], step: int):
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k.replace("/", "."), v, now, int(step)) for k, v in values.items() if math.isfinite(v)]
        self._client.log_batch(self._run_id, metrics=metrics)

    def log(self, record):
        self._metrics(scalars(record), record["iteration"])
        self._last = record["iteration"]

    def finish(self, summary):
        if summary is not None:
            self._metrics(summary_scalars(summary), summary.get("iterations", getattr(self, "_last", 0)))
        self._client.set_terminated(self._run_id, status="FINISHED" if summary is not None else "KILLED")


BACKENDS = {"tensorboard": (TensorBoard, "tensorboard"), "wandb": (WandB, "wandb"), "mlflow": (MLflow, "mlflow")}


def check_loggers(section: Any) -> dict[str, dict[str, Any]]:
    """The config's ``logger`` section (name -> options) checked: known names, options their
    backend takes, the backend's library installed. One-line ``ValueError`` naming the field."""
    import importlib.util
    import inspect

    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ValueError(f"logger: must be a mapping of backend -> options (logger=tensorboard), got {section!r}")
    for name, options in section.items():
        if name not in BACKENDS:
            raise ValueError(f"logger.{name}: unknown logger; allowed: {', '.join(BACKENDS)}")
        options = options or {}
        if not isinstance(options, dict):
            raise ValueError(f"logger.{name}: must be a mapping of options, got {options!r}")
        cls, package = BACKENDS[name]
        allowed = [p for p in inspect.signature(cls).parameters]
        for key in options:
            if key not in allowed:
                raise ValueError(f"logger.{name}.{key}: unknown option; allowed: {', '.join(allowed)}")
        if importlib.util.find_spec(package) is None:
            raise ValueError(f"logger.{name}: needs the {package} package: pip install \"jpinn[tracking]\""
                             f" (or pip install {package if name != 'mlflow' else 'mlflow-skinny'})")
        try:
            cls(**options)
        except (TypeError, ValueError) as error:
            raise ValueError(f"logger.{name}.{str(error)}") from None
    return {name: dict(options or {}) for name, options in section.items()}


def build_loggers(section: Any) -> list[Logger]:
    return [BACKENDS[name][0](**options) for name, options in check_loggers(section).items()]


class Loggers:
    """The driver's callback: each record to ``metrics.jsonl`` (first, flushed: the truth),
    then to every logger. A context manager: ``finish(summary)`` ends the loggers' runs; left
    without it (an error, Ctrl-C), they end as failed."""

    def __init__(self, run_dir: str | os.PathLike, loggers: list[Logger], config: dict[str, Any],
                 records: list[dict[str, Any]] = ()):
        self.run_dir, self.loggers = Path(run_dir), list(loggers)
        self.writer = io.MetricsWriter(self.run_dir / io.METRICS_FILE)
        resumed_at = records[-1]["iteration"] if records else None
        for logger in self.loggers:
            logger.start(self.run_dir, config, resumed_at)
        self._finished = False

    def __call__(self, record: dict[str, Any]) -> None:
        self.writer(record)
        for logger in self.loggers:
            logger.log(record)

    def finish(self, summary: dict[str, Any] | None) -> None:
        if self._finished:
            return
        self._finished = True
        self.writer.close()
        for logger in self.loggers:
            logger.finish(summary)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.finish(None)
        return False
