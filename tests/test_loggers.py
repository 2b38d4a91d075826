"""Experiment tracking (jpinn.loggers): each backend, through its real library, receives
every record of a short run, read back with that library's own reader (TensorBoard's event
accumulator, MLflow's client, the W&B offline transaction log parsed into W&B's protobuf
records) and compared with metrics.jsonl, the source of truth. A resumed run does not leave
the interrupted attempt's points in TensorBoard; bad logger settings are refused first."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from jpinn import loggers

ROOT = Path(__file__).resolve().parent.parent
TINY = ["model.width=8", "model.depth=2", "data.n_x=33", "data.n_t=21", "data.n_residual=100", "quiet=true",
        "plot=false", "optimizer=adam_lbfgs", "optimizer.switch=40", "optimizer.iterations=80", "log_every=20"]


def _train(*args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *TINY, *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd)


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _expected(run: Path) -> dict[str, list[tuple[int, float]]]:
    """Tag -> [(step, value)] as every backend should hold them, from metrics.jsonl."""
    out: dict[str, list[tuple[int, float]]] = {}
    for record in _records(run):
        for tag, value in loggers.scalars(record).items():
            out.setdefault(tag, []).append((record["iteration"], value))
    summary = json.loads((run / "summary.json").read_text())
    for tag, value in loggers.summary_scalars(summary).items():
        out.setdefault(tag, []).append((summary["iterations"], value))
    return out


@pytest.fixture(scope="module")
def tracked(tmp_path_factory) -> Path:
    """One short Adam -> L-BFGS run logged to all three backends at once."""
    cwd = tmp_path_factory.mktemp("tracked")
    done = _train("logger=[tensorboard,wandb,mlflow]", f"hydra.run.dir={cwd / 'run'}", cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return cwd / "run"


def _close(a: list[tuple[int, float]], b: list[tuple[int, float]], rel: float = 1e-6) -> bool:
    return [s for s, _ in a] == [s for s, _ in b] and all(v == pytest.approx(w, rel=rel) for (_, v), (_, w) in zip(a, b))


@pytest.mark.slow
def test_tensorboard_event_files_hold_every_record(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(tracked / "tensorboard"))
    accumulator.Reload()
    expected = _expected(tracked)
    tags = set(accumulator.Tags()["scalars"])
    assert {"train/loss", "train/grad_norm", "loss/residual", "loss/initial", "loss/boundary", "phase",
            "time/wall_seconds", "info/step_size", "test/l2re"} <= tags, tags
    assert tags == set(expected)
    for tag in tags:  # float32 in the event file
        assert _close([(e.step, e.value) for e in accumulator.Scalars(tag)], expected[tag]), tag


@pytest.mark.slow
def test_mlflow_store_holds_every_record_and_the_config(tracked, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks local file stores to opt in

    client = MlflowClient((tracked.parent / "mlruns").resolve().as_uri())
    run_id = (tracked / "mlflow-run-id").read_text().strip()
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.params["model.width"] == "8" and run.data.params["optimizer.name"] == "adam_lbfgs"
    for tag, values in _expected(tracked).items():
        history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, tag.replace("/", ".")))
        assert _close(history, values, rel=1e-12), tag


def _wandb_records(path: Path):
    """The protobuf records of a W&B transaction log (``run-*.wandb``): a 7-byte header
    (":W&B", magic 0xBEE1, version 0), then LevelDB-log blocks of 32 KiB whose records have a
    7-byte header (crc32c, length, type 1 full / 2 first / 3 middle / 4 last)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B" and struct.unpack("<H", data[4:6])[0] == 0xBEE1
    block, position, pending = 32768, 7, b""
    while position + 7 <= len(data):
        left = block - position % block
        if left < 7:  # the block's tail is padding
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + 7])
        if kind == 0 and length == 0:
            position += left
            continue
        chunk = data[position + 7:position + 7 + length]
        position += 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record
            pending = b""


@pytest.mark.slow
def test_wandb_offline_run_holds_every_record(tracked):
    [log] = list((tracked / "wandb").glob("offline-run-*/run-*.wandb"))
    history, summary, config = {}, {}, {}
    for record in _wandb_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            items = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            for key, value in items.items():
                if not key.startswith("_"):
                    history.setdefault(key, []).append((items["_step"], value))
        elif kind == "summary":
            summary.update({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                            for item in record.summary.update})
        elif kind in ("run", "config"):  # the config comes with the run record, later changes as config records
            update = record.run.config.update if kind == "run" else record.config.update
            config.update({item.key: json.loads(item.value_json) for item in update})
    expected = _expected(tracked)
    for tag, values in expected.items():
        if tag.startswith("test/"):  # the summary, not the history
            assert summary[tag] == pytest.approx(values[-1][1], rel=1e-12), tag
        else:
            assert _close(history[tag], values, rel=1e-12), tag
    assert config["model.width"] == 8 and config["optimizer.name"] == "adam_lbfgs"


@pytest.mark.slow
def test_a_resumed_run_replaces_the_interrupted_points_in_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    assert _train("logger=tensorboard", f"hydra.run.dir={run}", cwd=tmp_path).returncode == 0
    # the interrupted attempt went past its last checkpoint: its last two log points are redone
    records = _records(run)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    longer = _train("logger=tensorboard", "optimizer.iterations=120", f"resume={run}", cwd=tmp_path)
    assert longer.returncode == 0, longer.stderr[-2000:]
    accumulator = EventAccumulator(str(run / "tensorboard"))
    accumulator.Reload()
    steps = [e.step for e in accumulator.Scalars("train/loss")]
    assert steps == [r["iteration"] for r in _records(run)]  # each once, in order, as metrics.jsonl
    assert steps[-1] > 80 and len(set(steps)) == len(steps)  # the longer run went on, each point once


def test_logger_settings_are_refused_in_one_line(train_script, monkeypatch):
    for args, words in [
        (["+logger.tensorboard.flush=1"], "logger.tensorboard.flush: unknown option; allowed: dir, flush_seconds"),
        (["logger=wandb", "logger.wandb.mode=sometimes"], "logger.wandb.mode: must be offline, online or disabled"),
        (["logger=neptune"], "logger"),
    ]:
        message = train_script.precheck(TINY + args)
        assert message is not None and "\n" not in message and words in message, (args, message)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(ValueError, match=r'logger.mlflow: needs the mlflow package: pip install "jpinn\[tracking\]"'):
        loggers.check_loggers({"mlflow": {}})
