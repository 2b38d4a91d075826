"""Building a run's objects from its config, one section each: the problem (``pde``), the
phases (``optimizer``), the network (``model``), the training points (``data``) and the
test sets. Each builder checks its own section and lets the constructor it calls check
that constructor's fields (one-line ``ConfigError``s naming the field)."""

from __future__ import annotations

import inspect
import math
from typing import Any

from ..data import Collocation, reference_sets, resample_interior, sample_collocation, sample_points
from ..loss import build_loss
from ..models import MODELS, make_model
from ..optim import make_optimizer
from ..problems import PROBLEMS, AbstractProblem, check_problem, make_problem
from ..train import Phase, Resample
from ._fields import INT_MAX, ConfigError, _check_bool, _check_int, _check_keys, _check_scale, _where


def _keywords(function, without: tuple[str, ...] = ()) -> set[str]:
    """The keyword arguments of ``function`` (of a class: its constructor's), less ``without``."""
    return {p.name for p in inspect.signature(function).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in without}


# the keys each section may hold (a key outside these is a mistake, not an extension): what
# builds the section takes, less what the run supplies, plus the section's own choices
MODEL_KEYS = {"name"} | set().union(  # in_size, out_size: the problem's coordinates and fields
    *(_keywords(cls, ("in_size", "out_size", "key", "dtype")) for cls in MODELS.values()))
LOSS_KEYS = _keywords(build_loss, ("pde", "model", "data", "method"))  # method: the top-level derivatives
DATA_KEYS = {  # per data.name: the study's grid sampler, or points sampled over each condition's region
    "study": {"name", "test_set", "resample_every"} | _keywords(sample_collocation, ("pde", "dtype")),
    "sampled": {"name", "test_points", "reference", "resample_every"} | _keywords(sample_points, ("problem", "dtype")),
}


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
    from .._registry import make_registered

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


def scale_budget(iterations: int, budget_scale: float, where: str = "a phase") -> int:
    """A phase's iteration budget times ``budget_scale``, rounded; a ConfigError when that
    leaves less than one iteration (a scale too small would silently run one of each)."""
    scaled = iterations * budget_scale
    if not scaled <= INT_MAX:
        raise ConfigError(f"budget_scale: {budget_scale!r} x {iterations} iterations is too large; allowed: at most {INT_MAX}")
    if scaled < 1:
        raise ConfigError(f"budget_scale: {budget_scale!r} x {iterations} iterations of {where} is less than one"
                          f" iteration; allowed: at least {1 / iterations:.3g} for this budget")
    return int(round(scaled))


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
        phases.append(Phase(optimizer, scale_budget(iterations, budget_scale, f"{where} ({name})"), label,
                            phase_log_every))
    return phases


def build_model(config: dict[str, Any], key, dtype, problem: AbstractProblem | None = None):
    """The network of ``config["model"]`` with one input per coordinate and one output per
    field of ``problem`` (default: the config's own problem); ``model.input_scaling: true``
    maps the domain's box onto [-1, 1]^d."""
    model_config = dict(_check_keys("model", config["model"], MODEL_KEYS))
    problem = problem if problem is not None else build_pde(config["pde"])
    name = model_config.pop("name", "mlp")
    box = problem.domain()
    if _check_bool("model.input_scaling", model_config.pop("input_scaling", False)):
        model_config["input_scaling"] = (box.lower, box.upper)
    if "periodic" in model_config:  # coordinate names -> (index, period of the box)
        names = model_config.pop("periodic") or []
        if isinstance(names, str) or not isinstance(names, (list, tuple)):
            raise ConfigError(f"model.periodic: must be a list of coordinate names, got {names!r}")
        unknown = [n for n in names if n not in box.coordinates]
        if unknown:
            raise ConfigError(f"model.periodic: {', '.join(map(str, unknown))} not a coordinate of {problem.name};"
                              f" allowed: {', '.join(box.coordinates)}")
        model_config["periodic"] = tuple((box.coordinates.index(n), box.upper[box.coordinates.index(n)]
                                          - box.lower[box.coordinates.index(n)]) for n in names)
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


def build_resample(config: dict[str, Any], problem: AbstractProblem, data: Collocation, phases, dtype) -> Resample | None:
    """``data.resample_every``: fresh residual points in the first-order phases (Adam, optax)
    every so many iterations (``jpinn.train.Resample``), None when it is off."""
    from ..optim import Adam, Optax

    data_config = config["data"]
    every = data_config.get("resample_every")
    if every is None:
        return None
    seed = data_config.get("seed", config.get("seed", 0))
    study = data_config.get("name", "study") == "study"
    grid = (data_config.get("n_x", 257), data_config.get("n_t", 101)) if study else None
    sampler = None if study else data_config.get("sampler", "sobol")
    return Resample(every, lambda r: resample_interior(problem, data, r, seed=seed, sampler=sampler, grid=grid, dtype=dtype),
                    tuple(i for i, phase in enumerate(phases) if isinstance(phase.optimizer, (Adam, Optax))))


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
    """The test set a run's headline errors are on: ``data.test_set`` on the study's grid
    (where the problem has a closed form), else ``reference`` data if any, else the
    ``grid``; None when there is no reference."""
    if config["data"].get("name", "study") == "study" and config["data"].get("test_set", "full") in references:
        return config["data"].get("test_set", "full")
    for name in ("reference", "grid"):
        if name in references:
            return name
    return None
