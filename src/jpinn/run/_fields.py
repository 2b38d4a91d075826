"""The vocabulary of a run config: ``ConfigError``, the one-field checks every section
uses, the limits, the top-level key sets, and the ``ensemble`` section (its axes and
members). Nothing here builds a problem, a model or an array."""

from __future__ import annotations

import math
from typing import Any

from .._registry import check_int

# the top-level keys of a run config (a key outside these is a mistake, not an extension);
# each section's own keys come from what builds it (jpinn.run._build)
TOP_KEYS = {
    "seed", "dtype", "derivatives", "log_every", "quiet", "plot",
    "pde", "model", "data", "loss", "optimizer", "budget_scale", "protocol",
    "checkpoint_every", "resume", "ensemble", "devices", "compile_cache", "compile_ahead", "logger",
}
# fields that do not change a run's numbers: a resumed run may differ from its checkpoint here
RESUME_FREE = {"quiet", "plot", "resume", "checkpoint_every", "compile_cache", "compile_ahead", "logger"}
ENSEMBLE_KEYS = {"seeds", "params"}
MAX_MEMBERS = 4096
# the fields an ensemble's members may differ in (anything else shapes the compiled program)
ENSEMBLE_FIELDS = ("seed", "data.seed", "pde.", "optimizer.", "protocol.")
INT_MAX = 2**31 - 1       # counters, sizes and seeds live in int32 arrays
MAX_PARAMETERS = 10**9     # a network larger than this does not fit any one device's memory
MAX_GRID_POINTS = 10**8    # the n_x x n_t grid (test set, collocation pool)


class ConfigError(ValueError):
    """A config field with a value that is not allowed; the message is one line."""


def _where(prefix: str, error: Exception) -> ConfigError:
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    return ConfigError(f"{prefix}{message}" if prefix else message)


def _check_keys(section: str, value: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{section}: must be a mapping, got {value!r}")
    for key in value:
        if key not in allowed:
            field = f"{section}.{key}" if section else str(key)
            raise ConfigError(f"{field}: unknown key; allowed: {', '.join(sorted(allowed))}")
    return value


def _check_int(field: str, value: Any, minimum: int = 1) -> int:
    return check_int(field, value, minimum, error=ConfigError)


def _check_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{field}: must be true or false, got {value!r}")
    return value


def _check_scale(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < math.inf):
        raise ConfigError(f"budget_scale: must be a finite number > 0 (1: the study's budgets), got {value!r}")
    return float(value)


def _check_magnitudes(tree: Any, max_float: float, path: str = "") -> None:
    """Every integer within int32 and every real number finite in the run's dtype, at any
    depth (pde coefficients and optimizer hyperparameters included): a value that overflows
    would otherwise surface as an inf loss or a wrapped counter long after the start."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            _check_magnitudes(value, max_float, f"{path}.{key}" if path else str(key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            _check_magnitudes(value, max_float, f"{path}[{i}]")
    elif isinstance(tree, bool):
        return
    elif isinstance(tree, int) and abs(tree) > INT_MAX:
        raise ConfigError(f"{path}: {tree} is too large; allowed: integers of magnitude <= {INT_MAX}")
    elif isinstance(tree, float) and math.isfinite(tree) and abs(tree) > max_float:
        raise ConfigError(f"{path}: {tree!r} overflows the run's dtype; allowed: magnitude <= {max_float:.3g}")


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def _allowed_in_ensemble(field: str) -> bool:
    exact = tuple(f for f in ENSEMBLE_FIELDS if not f.endswith("."))
    prefixes = tuple(f for f in ENSEMBLE_FIELDS if f.endswith("."))
    return field in exact or (
        field.startswith(prefixes) and field != "pde.name" and not field.startswith("optimizer.phases")
    )


def ensemble_axes(section: Any) -> list[tuple[str, list[Any]]]:
    """The ``ensemble`` config section as ``(field, values)`` axes, seeds first, then
    ``params`` in order (nested mappings as dotted fields); [] for a solo run.

    ``ensemble.seeds: [123, 234]`` trains one member per seed; ``ensemble.params:
    {optimizer.learning_rate: [1e-3, 1e-2]}`` one per value; several axes form their
    product, as a sweep would. Members may differ in seeds, PDE coefficients, optimizer
    settings and protocol values (``ENSEMBLE_FIELDS``), not in anything that changes shapes.
    """
    if section is None:
        return []
    section = _check_keys("ensemble", section, ENSEMBLE_KEYS)
    axes: list[tuple[str, list[Any]]] = []
    seeds = section.get("seeds")
    if seeds is not None:
        if not isinstance(seeds, list) or not seeds:
            raise ConfigError(f"ensemble.seeds: must be a non-empty list of integers >= 0 or null, got {seeds!r}")
        for i, seed in enumerate(seeds):
            _check_int(f"ensemble.seeds[{i}]", seed, minimum=0)
        axes.append(("seed", list(seeds)))
    params = section.get("params") or {}
    if not isinstance(params, dict):
        raise ConfigError(f"ensemble.params: must be a mapping FIELD: [values], got {params!r}")
    for field, values in _flatten(params).items():
        where = f"ensemble.params.{field}"
        if not _allowed_in_ensemble(field):
            raise ConfigError(
                f"{where}: members cannot differ in {field}; allowed: seed, data.seed, pde.<coefficient>,"
                f" optimizer.<setting>, protocol.<value> (a sweep varies the rest)"
            )
        if field == "seed" and seeds is not None:
            raise ConfigError(f"{where}: the seeds are already ensemble.seeds")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: must be a non-empty list of values, got {values!r}")
        for i, value in enumerate(values):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{where}[{i}]: must be a number, got {value!r}")
        axes.append((field, list(values)))
    size = math.prod(len(values) for _, values in axes)
    if size > MAX_MEMBERS:
        raise ConfigError(f"ensemble: {size} members; allowed: at most {MAX_MEMBERS} (split it with a sweep)")
    return axes


def ensemble_members(section: Any) -> list[dict[str, Any]]:
    """Every member's field values (``{field: value}``), in product order; [] for a solo run."""
    import itertools

    axes = ensemble_axes(section)
    if not axes:
        return []
    fields = [field for field, _ in axes]
    return [dict(zip(fields, combo)) for combo in itertools.product(*(values for _, values in axes))]
