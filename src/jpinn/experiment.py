"""A whole run from a plain config dict: validate, build, train, write the run outputs.

This is what ``scripts/train.py`` calls after Hydra composed the config; a notebook can
call it with a dict. The library never imports Hydra or OmegaConf.

Every field is checked before anything is compiled; a bad one raises ``ConfigError`` with
a one-line message naming the field and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import platform
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import io, rng
from ._registry import check_int
from .data import TEST_SETS, Collocation, check_rng, check_study_grid, reference_sets, sample_collocation, sample_points
from .derivatives import METHODS
from .loss import PINNLoss, build_loss, resolve_devices, shard_loss
from .metrics import field_errors
from .models import MODELS, make_model
from .models.mlp import n_parameters
from .optim import LBFGS, make_optimizer
from .problems import PROBLEMS, AbstractProblem, check_problem, make_problem
from .problems.domain import SAMPLERS
from .precision import DTYPES, MATMUL_PRECISION, set_precision
from .train import Phase, TrainResult, train

# the keys each section may hold (a key outside these is a mistake, not an extension)
TOP_KEYS = {
    "seed", "dtype", "derivatives", "log_every", "quiet", "plot",
    "pde", "model", "data", "loss", "optimizer", "budget_scale", "protocol",
    "checkpoint_every", "resume", "ensemble", "devices",
}
# fields that do not change a run's numbers: a resumed run may differ from its checkpoint here
RESUME_FREE = {"quiet", "plot", "resume", "checkpoint_every"}
DATA_KEYS = {  # per data.name: the study's grid sampler, or points sampled over each condition's region
    "study": {"name", "n_x", "n_t", "n_residual", "seed", "rng", "test_set"},
    "sampled": {"name", "sampler", "points", "seed", "test_points", "reference"},
}
MODEL_KEYS = {"name", "width", "depth", "input_scaling"}
LOSS_KEYS = {"mse_factor", "block_size", "weights"}
ENSEMBLE_KEYS = {"seeds", "params"}
MAX_MEMBERS = 4096
# the fields an ensemble's members may differ in (anything else shapes the compiled program)
ENSEMBLE_FIELDS = ("seed", "data.seed", "pde.", "optimizer.", "protocol.")


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


def _import_target(target: Any) -> type:
    """The class named by ``pde._target_`` (``module.Class``), imported with the current
    folder on the module path (a user's own module next to where the command runs)."""
    import importlib
    import os
    import sys

    if not isinstance(target, str) or "." not in target:
        raise ConfigError(f"pde._target_: must be module.Class, got {target!r}")
    module_name, _, class_name = target.rpartition(".")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # noqa: BLE001 - any import failure is the user's module's
        raise ConfigError(f"pde._target_: cannot import {module_name!r} ({type(error).__name__}: "
                          f"{str(error).splitlines()[0] if str(error) else ''})") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, AbstractProblem)):
        raise ConfigError(f"pde._target_: {target} is not a subclass of jpinn.problems.AbstractProblem")
    if not isinstance(getattr(cls, "name", None), str):
        raise ConfigError(f"pde._target_: {target} needs a class attribute name (a string, e.g. name: ClassVar[str] = 'heat')")
    return cls


def build_pde(pde_config: dict[str, Any]) -> AbstractProblem:
    """The problem of a config's ``pde`` section: ``name`` of a shipped problem
    (``jpinn.problems.PROBLEMS``), or ``_target_`` (``module.Class``, a subclass of
    ``AbstractProblem`` in the user's own module), plus its fields. Structure checks
    (``check_problem``) included; one-line ``ConfigError`` on any fault."""
    from ._registry import make_registered

    if not isinstance(pde_config, dict) or ("name" not in pde_config and "_target_" not in pde_config):
        raise ConfigError(f"pde.name: missing; allowed: {', '.join(PROBLEMS)} (or pde._target_=module.Class)")
    fields = {k: v for k, v in pde_config.items() if k not in ("name", "_target_")}
    try:
        if pde_config.get("_target_") is not None:
            cls = _import_target(pde_config["_target_"])
            problem = make_registered("pde.", "problem", {cls.name: cls}, cls.name, fields)
        else:
            problem = make_problem(pde_config["name"], **fields)
        for key, value in problem.coefficients().items():  # any problem's real fields: finite
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"pde.{key}: must be finite, got {value!r} ({problem.name})")
        check_problem(problem)
    except ConfigError:
        raise
    except Exception as error:  # noqa: BLE001 - a user's problem may fail in any way; one line
        raise _where("", error) from None
    return problem


def _check_scale(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < math.inf):
        raise ConfigError(f"budget_scale: must be a finite number > 0 (1: the study's budgets), got {value!r}")
    return float(value)


def scale_budget(iterations: int, budget_scale: float) -> int:
    """A phase's iteration budget times ``budget_scale``, rounded, at least 1."""
    scaled = iterations * budget_scale
    if not scaled <= INT_MAX:
        raise ConfigError(f"budget_scale: {budget_scale!r} x {iterations} iterations is too large; allowed: at most {INT_MAX}")
    return max(1, int(round(scaled)))


def build_phases(optimizer_config: dict[str, Any], budget_scale: float = 1.0) -> list[Phase]:
    """``optimizer.phases``: a list of ``{name, iterations, [label], [log_every], **hyperparameters}``.

    Each phase's ``iterations`` is multiplied by ``budget_scale`` (the top-level config field
    a reduced profile sets: every budget of a protocol shrinks by the same factor)."""
    budget_scale = _check_scale(budget_scale)
    if not isinstance(optimizer_config, dict):
        raise ConfigError(f"optimizer: must be a mapping, got {optimizer_config!r}")
    entries = optimizer_config.get("phases")
    if not isinstance(entries, list) or not entries:
        raise ConfigError("optimizer.phases: must be a non-empty list of {name, iterations, ...}")
    phases = []
    for i, entry in enumerate(entries):
        where = f"optimizer.phases[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: must be a mapping with name and iterations, got {entry!r}")
        entry = dict(entry)
        if "name" not in entry:
            raise ConfigError(f"{where}.name: missing")
        iterations = _check_int(f"{where}.iterations", entry.pop("iterations", None))
        name = entry.pop("name")
        label = entry.pop("label", None)
        phase_log_every = entry.pop("log_every", None)
        if phase_log_every is not None:
            _check_int(f"{where}.log_every", phase_log_every)
        try:
            optimizer = make_optimizer(name, **entry)
        except (ValueError, TypeError) as error:
            raise _where(f"{where}.", error) from None
        phases.append(Phase(optimizer, scale_budget(iterations, budget_scale), label, phase_log_every))
    return phases


def build_model(config: dict[str, Any], key, dtype, problem: AbstractProblem | None = None):
    """The network of ``config["model"]`` with one input per coordinate and one output per
    field of ``problem`` (default: the config's own problem); ``model.input_scaling: true``
    maps the domain's box onto [-1, 1]^d."""
    model_config = dict(_check_keys("model", config["model"], MODEL_KEYS))
    problem = problem if problem is not None else build_pde(config["pde"])
    name = model_config.pop("name", "mlp")
    box = problem.domain()
    if model_config.pop("input_scaling", False):
        model_config["input_scaling"] = (box.lower, box.upper)
    try:
        return make_model(name, key=key, dtype=dtype, in_size=len(box.coordinates), out_size=len(problem.fields),
                          **model_config)
    except (ValueError, TypeError) as error:
        raise _where("", error) from None


def build_data(config: dict[str, Any], problem: AbstractProblem, dtype) -> Collocation:
    """The training points of ``config["data"]``: the study's grid (``name: study``) or
    points sampled over each condition's region (``name: sampled``)."""
    data_config = config["data"]
    seed = data_config.get("seed", config.get("seed", 0))
    if data_config.get("name", "study") == "sampled":
        return sample_points(problem, sampler=data_config.get("sampler", "sobol"), points=data_config.get("points") or {},
                             seed=seed, dtype=dtype)
    return sample_collocation(
        problem,
        n_x=data_config.get("n_x", 257),
        n_t=data_config.get("n_t", 101),
        n_residual=data_config.get("n_residual", 10_000),
        seed=seed,
        rng=data_config["rng"],
        dtype=dtype,
    )


def build_references(config: dict[str, Any], problem: AbstractProblem, dtype) -> dict[str, tuple[Any, Any]]:
    """The test sets of a run (``jpinn.data.reference_sets``); a non-finite reference is a ConfigError."""
    data_config = config["data"]
    try:
        return reference_sets(problem, study_grid=data_config.get("name", "study") == "study",
                              n_test=data_config.get("test_points", 10_000), dtype=dtype,
                              reference_file=data_config.get("reference"))
    except ValueError as error:
        raise _where("", error) from None


def default_test_set(config: dict[str, Any], references: dict[str, Any]) -> str | None:
    """The test set a run's headline errors are on: ``data.test_set`` on the study's grid,
    else ``reference`` data if any, else the ``grid``; None when there is no reference."""
    if config["data"].get("name", "study") == "study":
        return config["data"].get("test_set", "full") if references else None
    for name in ("reference", "grid"):
        if name in references:
            return name
    return None


INT_MAX = 2**31 - 1       # counters, sizes and seeds live in int32 arrays
MAX_PARAMETERS = 10**9     # a network larger than this does not fit any one device's memory
MAX_GRID_POINTS = 10**8    # the n_x x n_t grid (test set, collocation pool)


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


def _validate_data(config: dict[str, Any], problem: AbstractProblem) -> None:
    """The ``data`` section for its sampler (``DATA_KEYS``) and the problem."""
    data = config["data"]
    if not isinstance(data, dict):
        raise ConfigError(f"data: must be a mapping, got {data!r}")
    name = data.get("name", "study")
    if name not in DATA_KEYS:
        raise ConfigError(f"data.name: unknown sampler {name!r}; allowed: {', '.join(DATA_KEYS)}")
    _check_keys("data", data, DATA_KEYS[name])
    _check_int("data.seed", data.get("seed", config.get("seed", 0)), minimum=0)
    if name == "sampled":
        if data.get("sampler", "sobol") not in SAMPLERS:
            raise ConfigError(f"data.sampler: unknown sampler {data.get('sampler')!r}; allowed: {', '.join(SAMPLERS)}")
        points = data.get("points") or {}
        if not isinstance(points, dict):
            raise ConfigError(f"data.points: must be a mapping condition -> number of points, got {points!r}")
        names = [c.name for c in problem.conditions()]
        for key, value in points.items():
            if key not in names:
                raise ConfigError(f"data.points.{key}: not a condition of {problem.name}; allowed: {', '.join(names)}")
            if _check_int(f"data.points.{key}", value) > MAX_GRID_POINTS:
                raise ConfigError(f"data.points.{key}: {value} points; allowed: at most {MAX_GRID_POINTS:.0e}")
        if _check_int("data.test_points", data.get("test_points", 10_000)) > MAX_GRID_POINTS:
            raise ConfigError(f"data.test_points: allowed: at most {MAX_GRID_POINTS:.0e}")
        reference = data.get("reference")
        if reference is not None and (not isinstance(reference, str) or not Path(reference).is_file()):
            raise ConfigError(f"data.reference: must be the path of an npz file (points and values, or a grid), got {reference!r}")
        return
    try:
        check_study_grid(problem)
    except ValueError as error:
        raise _where("", error) from None
    n_x = _check_int("data.n_x", data.get("n_x", 257), minimum=3)
    n_t = _check_int("data.n_t", data.get("n_t", 101), minimum=2)
    if n_x * n_t > MAX_GRID_POINTS:
        raise ConfigError(f"data.n_x: the {n_x} x {n_t} grid has {n_x * n_t:.3g} points; allowed: at most {MAX_GRID_POINTS:.0e}")
    n_res = _check_int("data.n_residual", data.get("n_residual", 10_000))
    if n_res > (n_x - 2) * (n_t - 1):
        raise ConfigError(
            f"data.n_residual: the {n_x} x {n_t} grid interior holds {(n_x - 2) * (n_t - 1)} "
            f"points, got {n_res}; allowed: 1..{(n_x - 2) * (n_t - 1)}"
        )
    try:
        check_rng(data.get("rng", "jax"))
    except ValueError as error:
        raise _where("", error) from None
    if data.get("test_set", "full") not in TEST_SETS:
        raise ConfigError(
            f"data.test_set: unknown test set {data.get('test_set')!r}; allowed: {', '.join(TEST_SETS)}"
        )


def validate(config: dict[str, Any]) -> dict[str, Any]:
    """Check every field of a run config; return it unchanged. No array is created."""
    _check_keys("", config, TOP_KEYS)
    for key in ("pde", "model", "data", "optimizer"):
        if key not in config:
            raise ConfigError(f"{key}: missing config group")
    _check_int("seed", config.get("seed", 0), minimum=0)
    if config.get("dtype", "float32") not in DTYPES:
        raise ConfigError(f"dtype: unknown dtype {config.get('dtype')!r}; allowed: {', '.join(DTYPES)}")
    _check_magnitudes({k: v for k, v in config.items() if k != "protocol"},
                      float(np.finfo(config.get("dtype", "float32")).max))
    if config.get("derivatives", "auto") not in METHODS:
        raise ConfigError(
            f"derivatives: unknown method {config.get('derivatives')!r}; allowed: {', '.join(METHODS)}"
        )
    _check_int("log_every", config.get("log_every", 100))
    devices = config.get("devices", 1)
    if devices != "all" and (isinstance(devices, bool) or not isinstance(devices, int) or devices < 1):
        raise ConfigError(f"devices: must be an integer >= 1 or all, got {devices!r}")
    _check_bool("quiet", config.get("quiet", False))
    _check_bool("plot", config.get("plot", True))
    if config.get("checkpoint_every", 1000) is not None:
        _check_int("checkpoint_every", config.get("checkpoint_every", 1000))
    resume = config.get("resume")
    if resume is not None and (not isinstance(resume, str) or not resume.strip()):
        raise ConfigError(f"resume: must be the path of a run folder, got {resume!r}")
    problem = build_pde(config["pde"])
    model = _check_keys("model", config["model"], MODEL_KEYS)
    if model.get("name", "mlp") not in MODELS:
        raise ConfigError(f"model.name: unknown model {model.get('name')!r}; allowed: {', '.join(MODELS)}")
    width, depth = _check_int("model.width", model.get("width", 50)), _check_int("model.depth", model.get("depth", 3))
    _check_bool("model.input_scaling", model.get("input_scaling", False))
    sizes = len(problem.domain().coordinates), len(problem.fields)
    if model.get("name", "mlp") == "mlp" and n_parameters(width, depth, *sizes) > MAX_PARAMETERS:
        raise ConfigError(
            f"model.width: width {width} and depth {depth} give {n_parameters(width, depth, *sizes):.3g} parameters;"
            f" allowed: at most {MAX_PARAMETERS:.0e}"
        )
    _validate_data(config, problem)
    loss = _check_keys("loss", config.get("loss", {}), LOSS_KEYS)
    factor = loss.get("mse_factor", 1.0)
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not (0 < factor < math.inf):
        raise ConfigError(f"loss.mse_factor: must be a finite number > 0 (1 code, 0.5 paper), got {factor!r}")
    block = loss.get("block_size", "auto")
    if block != "auto" and block is not None and (isinstance(block, bool) or not isinstance(block, int) or block < 1):
        raise ConfigError(f"loss.block_size: must be an integer >= 1, null or auto, got {block!r}")
    try:
        check_problem(problem, loss.get("weights") or None)
    except ValueError as error:
        raise _where("", error) from None
    build_references(config, problem, jnp.float32)  # a non-finite or malformed reference: refused here
    protocol = config.get("protocol", {})
    if protocol is not None and not isinstance(protocol, dict):
        raise ConfigError(f"protocol: must be a mapping (values an experiment's interpolations read), got {protocol!r}")
    build_phases(config["optimizer"], config.get("budget_scale", 1.0))
    ensemble_axes(config.get("ensemble"))
    return config


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


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


def check_ensemble(configs: list[dict[str, Any]]) -> None:
    """The resolved member configs of one ensemble may differ only in ``ENSEMBLE_FIELDS``,
    and their phases only in what ``jpinn.ensemble.stack_members`` can stack (real values,
    seeds); a one-line ``ConfigError`` otherwise. Builds no array."""
    from .ensemble import EnsembleError, check_members, stack_members

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
    )
    try:
        devices = resolve_devices(config.get("devices", 1))
    except ValueError as error:
        raise _where("", error) from None
    loss, w0 = shard_loss(loss, w0, devices)  # data parallelism over several devices
    phases = build_phases(config["optimizer"], config.get("budget_scale", 1.0))
    return Run(config, pde, data, loss, w0, phases, dtype, references)


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

    from .loss import flatten_model

    w, config = io.load_checkpoint(run_dir)
    dtype = set_precision(config.get("dtype", "float32"))
    try:
        pde = build_pde(config["pde"])
        model = build_model(config, jax.random.PRNGKey(0), dtype, pde)
    except (ConfigError, KeyError, TypeError) as error:
        raise io.RunFolderError(f"{run_dir}: its config does not build ({str(error).splitlines()[0]})") from None
    w0, unravel, static = flatten_model(model)
    if w0.shape != w.shape:
        raise io.RunFolderError(
            f"{run_dir}: checkpoint has {w.shape[0]} parameters, its config's model has {w0.shape[0]}"
        )
    w = jnp.asarray(w, dtype=dtype)
    model = eqx.combine(unravel(w), static)
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
    run_dir.mkdir(parents=True, exist_ok=True)
    config = run.config
    if progress is None:
        progress = not config.get("quiet", False)
    start = time.perf_counter()
    resume, records = None, []
    if config.get("resume") is not None:  # continue run_dir from its checkpoint
        check_resume(run_dir, config)
        resume, _ = io.load_train_checkpoint(run_dir, run.loss, run.w0, run.phases)
        records = io.truncate_metrics(run_dir, resume.n_records)  # later lines: work to redo
    else:
        io.write_json(run_dir / io.CHECKPOINT_DIR / io.CONFIG_FILE, config)
    with io.MetricsWriter(run_dir / io.METRICS_FILE) as writer:
        result: TrainResult = train(
            run.loss, run.w0, run.phases, log_every=config.get("log_every", 100),
            callback=writer, progress=progress,
            checkpoint=lambda ck: io.save_train_checkpoint(run_dir, ck, config),
            checkpoint_every=config.get("checkpoint_every", 1000), resume=resume, records=records,
        )

    return _finish(run, run_dir, result, start)


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
        from .plot import plot_history, plot_solution

        figures = run_dir / "figures"
        figures.mkdir(exist_ok=True)
        if test_set in TEST_SETS:
            plot_solution(model, run.pde, figures / "solution.png", n_x=TEST_SETS[test_set][0])
        else:
            plot_solution(model, run.pde, figures / "solution.png")
        plot_history(result.records, figures / "loss.png", components=list(components))
    io.write_json(run_dir / io.SUMMARY_FILE, summary)
    return summary


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


def check_ensemble_resume(run_dir: str | Path, configs: list[dict[str, Any]]) -> dict[str, str]:
    """Whether ``configs`` may resume the ensemble in ``run_dir``: each member folder's
    checkpoint was trained with its member's config and one snapshot is held by all. Returns
    each member folder's checkpoint file to load (``io.common_snapshot``); ``ConfigError``
    naming ``resume`` otherwise."""
    run_dir = Path(run_dir)
    if not (run_dir / ENSEMBLE_FILE).is_file():
        raise ConfigError(f"resume: {run_dir} is not an ensemble run folder (no {ENSEMBLE_FILE})")
    folders = [run_dir / member_folder(k) for k in range(len(configs))]
    for folder, config in zip(folders, configs):
        check_resume(folder, config)
    try:
        return io.common_snapshot(folders)
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

    from .ensemble import train_ensemble

    run_dir = Path(run_dir)
    runs = ensemble.members
    config = runs[0].config
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
        files = check_ensemble_resume(run_dir, [run.config for run in runs])
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

    with ExitStack() as stack:
        writers = [stack.enter_context(io.MetricsWriter(folder / io.METRICS_FILE)) for folder in folders]
        results = train_ensemble(
            [run.loss for run in runs], [run.w0 for run in runs], [run.phases for run in runs],
            log_every=config.get("log_every", 100), callbacks=writers, progress=progress,
            checkpoints=[saver(k) for k in range(len(runs))], checkpoint_every=config.get("checkpoint_every", 1000),
            resumes=resumes, records=records,
        )
    summaries = []
    for k, (run, folder, result) in enumerate(zip(runs, folders, results)):
        extra = {"ensemble": {"size": len(runs), "index": k, "overrides": ensemble.overrides[k]}}
        summaries.append(_finish(run, folder, result, start, extra))
    io.write_json(run_dir / ENSEMBLE_FILE, {**listing, "wall_seconds": time.perf_counter() - start})
    return summaries


__all__ = [
    "ConfigError", "EnsembleRun", "Run", "build", "build_ensemble", "build_model", "build_pde", "build_phases",
    "check_ensemble", "check_ensemble_resume", "check_resume", "config_difference", "ensemble_axes", "ensemble_members", "evaluate", "execute",
    "execute_ensemble", "LoadedRun", "load_run", "member_folder", "scale_budget", "validate", "validate_ensemble",
]
