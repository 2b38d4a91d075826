"""The checks of a run config that span fields: ``validate``. Each section is checked by
what builds it (``jpinn.run._build``, and the constructors those call); here are the
top-level fields, the limits that must hold before any large array is allocated, and what
one section says about another (the data and loss weights against the problem, the
network's size against its inputs and outputs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..data import TEST_SETS, check_collocation, check_sampling
from ..derivatives import check_method
from ..loss import check_devices, check_mse_factor, resolve_block_size
from ..models.mlp import n_parameters
from ..cache import check_compile_cache
from ..loggers import check_loggers
from ..precision import check_dtype
from ..loss import check_learn
from ..problems import AbstractProblem, check_problem
from ._build import DATA_KEYS, LOSS_KEYS, build_model, build_pde, build_phases, build_references
from ._fields import (
    MAX_GRID_POINTS,
    MAX_PARAMETERS,
    TOP_KEYS,
    ConfigError,
    _check_bool,
    _check_int,
    _check_keys,
    _check_magnitudes,
    _where,
    ensemble_axes,
)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _validate_model(config: dict[str, Any], problem: AbstractProblem) -> None:
    """The parameter count within ``MAX_PARAMETERS`` (before anything is allocated), then the
    network built abstractly (``eqx.filter_eval_shape``: shapes only, no array), so that the
    builder and the model's constructor check their own fields (name, width, depth, ...)."""
    model = config["model"] if isinstance(config["model"], dict) else {}  # not a mapping: build_model says so
    width, depth = model.get("width", 50), model.get("depth", 3)
    sizes = len(problem.domain().coordinates), len(problem.fields)
    if model.get("name", "mlp") == "mlp" and _is_count(width) and _is_count(depth):
        if n_parameters(width, depth, *sizes) > MAX_PARAMETERS:
            raise ConfigError(
                f"model.width: width {width} and depth {depth} give {n_parameters(width, depth, *sizes):.3g} parameters;"
                f" allowed: at most {MAX_PARAMETERS:.0e}"
            )
    key = jax.ShapeDtypeStruct((2,), jnp.uint32)
    eqx.filter_eval_shape(lambda k: build_model(config, k, jnp.float32, problem), key)


def _validate_data(config: dict[str, Any], problem: AbstractProblem) -> None:
    """The ``data`` section for its sampler (``DATA_KEYS``; the sampler's own argument
    checks) and the problem, and the point counts within ``MAX_GRID_POINTS``."""
    data = config["data"]
    if not isinstance(data, dict):
        raise ConfigError(f"data: must be a mapping, got {data!r}")
    name = data.get("name", "study")
    if name not in DATA_KEYS:
        raise ConfigError(f"data.name: unknown sampler {name!r}; allowed: {', '.join(DATA_KEYS)}")
    _check_keys("data", data, DATA_KEYS[name])
    seed = data.get("seed", config.get("seed", 0))
    if data.get("resample_every") is not None:
        _check_int("data.resample_every", data["resample_every"])
        if name == "sampled" and data.get("sampler", "sobol") == "grid":
            raise ConfigError("data.resample_every: the grid sampler draws the same points every time; "
                              "allowed with uniform, sobol or halton")
        ensemble = config.get("ensemble") or {}
        if ensemble.get("seeds") or ensemble.get("params"):
            raise ConfigError("data.resample_every: resampling serves single runs, not ensembles")
        if config.get("devices", 1) != 1:
            raise ConfigError("data.resample_every: resampling serves runs on one device (devices: 1)")
    if name == "sampled":
        try:
            _, points = check_sampling(problem, sampler=data.get("sampler", "sobol"), points=data.get("points"), seed=seed)
        except ValueError as error:
            raise _where("", error) from None
        for key, value in points.items():
            if _check_int(f"data.points.{key}", value) > MAX_GRID_POINTS:
                raise ConfigError(f"data.points.{key}: {value} points; allowed: at most {MAX_GRID_POINTS:.0e}")
        if _check_int("data.test_points", data.get("test_points", 10_000)) > MAX_GRID_POINTS:
            raise ConfigError(f"data.test_points: allowed: at most {MAX_GRID_POINTS:.0e}")
        reference = data.get("reference")
        if reference is not None and (not isinstance(reference, str) or not Path(reference).is_file()):
            raise ConfigError(f"data.reference: must be the path of an npz file (points and values, or a grid), got {reference!r}")
        return
    try:
        n_x, n_t, _, _ = check_collocation(problem, n_x=data.get("n_x", 257), n_t=data.get("n_t", 101),
                                           n_residual=data.get("n_residual", 10_000), seed=seed, rng=data.get("rng", "jax"))
    except ValueError as error:
        raise _where("", error) from None
    if n_x * n_t > MAX_GRID_POINTS:
        raise ConfigError(f"data.n_x: the {n_x} x {n_t} grid has {n_x * n_t:.3g} points; allowed: at most {MAX_GRID_POINTS:.0e}")
    if data.get("test_set", "full") not in TEST_SETS:
        raise ConfigError(
            f"data.test_set: unknown test set {data.get('test_set')!r}; allowed: {', '.join(TEST_SETS)}"
        )


def _validate_loss(config: dict[str, Any], problem: AbstractProblem) -> None:
    loss = _check_keys("loss", config.get("loss", {}), LOSS_KEYS)
    try:
        check_mse_factor(loss.get("mse_factor", 1.0))
        if loss.get("block_size", "auto") != "auto":  # "auto" needs the network: build_loss resolves it
            resolve_block_size(loss.get("block_size"))
        check_problem(problem, loss.get("weights") or None)
        check_learn(problem, loss.get("learn"))
    except ValueError as error:
        raise _where("", error) from None


def validate(config: dict[str, Any]) -> dict[str, Any]:
    """Check every field of a run config; return it unchanged. No array is created."""
    _check_keys("", config, TOP_KEYS)
    for key in ("pde", "model", "data", "optimizer"):
        if key not in config:
            raise ConfigError(f"{key}: missing config group")
    _check_int("seed", config.get("seed", 0), minimum=0)
    try:
        check_dtype(config.get("dtype", "float32"))
    except ValueError as error:
        raise _where("", error) from None
    _check_magnitudes({k: v for k, v in config.items() if k != "protocol"},
                      float(np.finfo(config.get("dtype", "float32")).max))
    try:
        check_method(config.get("derivatives", "auto"))
        check_compile_cache(config.get("compile_cache", "auto"))
        check_loggers(config.get("logger"))
        if config.get("devices", 1) != "all":
            check_devices(config.get("devices", 1))
    except ValueError as error:
        raise _where("", error) from None
    _check_int("log_every", config.get("log_every", 100))
    _check_bool("quiet", config.get("quiet", False))
    _check_bool("plot", config.get("plot", True))
    _check_bool("compile_ahead", config.get("compile_ahead", True))
    if config.get("checkpoint_every", 1000) is not None:
        _check_int("checkpoint_every", config.get("checkpoint_every", 1000))
    resume = config.get("resume")
    if resume is not None and (not isinstance(resume, str) or not resume.strip()):
        raise ConfigError(f"resume: must be the path of a run folder, got {resume!r}")
    problem = build_pde(config["pde"])
    _validate_model(config, problem)
    _validate_data(config, problem)
    _validate_loss(config, problem)
    build_references(config, problem, jnp.float32)  # a non-finite or malformed reference: refused here
    protocol = config.get("protocol", {})
    if protocol is not None and not isinstance(protocol, dict):
        raise ConfigError(f"protocol: must be a mapping (values an experiment's interpolations read), got {protocol!r}")
    build_phases(config["optimizer"], config.get("budget_scale", 1.0))
    ensemble_axes(config.get("ensemble"))
    return config
