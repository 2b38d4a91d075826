"""Whether a config may resume a run folder: the fields that change the numbers agree
with the checkpoint's config (``RESUME_FREE`` may differ) and the folder has named streams."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import io
from ._fields import RESUME_FREE, ConfigError, _flatten


def config_difference(saved: dict[str, Any], config: dict[str, Any]) -> str | None:
    """The first field (dotted) where two run configs differ in a way that changes the
    numbers, as ``field: saved A, now B``; None if they agree."""
    a, b = _flatten(saved), _flatten(config)
    for key in sorted(set(a) | set(b)):
        if key.split(".")[0] in RESUME_FREE:
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
