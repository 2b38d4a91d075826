"""A run built from its config: ``Run`` and ``build`` (validate, then build each section)."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax

from .. import rng
from ..cache import use_compilation_cache
from ..data import Collocation
from ..loss import PINNLoss, build_loss, resolve_devices, shard_loss
from ..precision import set_precision
from ..problems import AbstractProblem
from ..train import Phase
from ._build import build_data, build_model, build_pde, build_phases, build_references
from ._config import validate
from ._fields import _where


@dataclasses.dataclass
class Run:
    """Everything a run needs, built from a config: call ``execute`` to train it."""

    config: dict[str, Any]
    pde: AbstractProblem
    data: Collocation
    loss: PINNLoss
    w0: jax.Array
    phases: list[Phase]
    dtype: Any
    references: dict[str, tuple[Any, Any]] = dataclasses.field(default_factory=dict)  # test sets


def build(config: dict[str, Any]) -> Run:
    """Validate ``config`` and build problem, data, model, loss and phases.

    ``Run.config`` is ``config`` with ``data.rng`` filled in (default ``jax``): every run
    folder records which draw made its points, and a folder without it predates jpinn's
    named random streams (``jpinn.rng``), whose points cannot be rebuilt."""
    validate(config)
    if config["data"].get("name", "study") == "study":
        config = {**config, "data": {**config["data"], "rng": config["data"].get("rng", "jax")}}
    use_compilation_cache(config.get("compile_cache", "auto"))
    dtype = set_precision(config.get("dtype", "float32"))
    seed = config.get("seed", 0)
    pde = build_pde(config["pde"])
    references = build_references(config, pde, dtype)
    data = build_data(config, pde, dtype)
    model = build_model(config, rng.key(seed, "model"), dtype, pde)
    loss_config = config.get("loss", {})
    loss, w0 = build_loss(
        pde,
        model,
        data,
        method=config.get("derivatives", "auto"),
        mse_factor=loss_config.get("mse_factor", 1.0),
        block_size=loss_config.get("block_size", "auto"),
        weights=loss_config.get("weights") or None,
        learn=loss_config.get("learn") or (),
    )
    try:
        devices = resolve_devices(config.get("devices", 1))
    except ValueError as error:
        raise _where("", error) from None
    loss, w0 = shard_loss(loss, w0, devices)  # data parallelism over several devices
    phases = build_phases(config["optimizer"], config.get("budget_scale", 1.0))
    _say_capped_ranks(phases, int(w0.shape[0]))
    return Run(config, pde, data, loss, w0, phases, dtype, references)


def _say_capped_ranks(phases: list[Phase], p: int) -> None:
    """A sketch rank above the parameter count is used as p (a sketch cannot have more
    columns than the matrix): say so on the console rather than change it silently."""
    import sys

    for k, phase in enumerate(phases):
        rank = getattr(phase.optimizer, "rank", None)
        if isinstance(rank, int) and rank > p:
            print(f"jpinn: optimizer.phases[{k}].rank: {rank} is more than the {p} parameters; the sketch uses rank {p}",
                  file=sys.stderr)
