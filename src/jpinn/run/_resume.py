"""Whether a config may resume a run folder: the fields that change the numbers agree
with the checkpoint's config (``RESUME_FREE`` may differ) and the folder has named streams."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

from .. import io
from ..models import MLP
from ..optim import Adam
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


def config_difference(saved: dict[str, Any], config: dict[str, Any]) -> str | None:
    """The first field (dotted) where two run configs differ in a way that changes the
    numbers, as ``field: saved A, now B``; None if they agree. A field added since the
    saved run (``ADDED``) matches its absence when it holds the value that changes nothing."""
    a, b = _flatten_lists(_flatten(saved)), _flatten_lists(_flatten(config))
    for key in sorted(set(a) | set(b)):
        if key.split(".")[0] in RESUME_FREE:
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
    difference = config_difference(meta["config"], config)
    if difference is not None:
        raise ConfigError(f"resume: {run_dir} was trained with another config ({difference})")
    return meta
