"""A whole run from a plain config dict: validate, build, train, write the run outputs.

This is what ``scripts/train.py`` calls after Hydra composed the config; a notebook can
call it with a dict. The library never imports Hydra or OmegaConf.

Every field is checked before anything is compiled; a bad one raises ``ConfigError`` with
a one-line message naming the field and what is allowed. Each section is checked by what
builds it; ``validate`` adds the checks that span fields.

Private modules, each depending only on those above it: ``_fields`` (ConfigError, one-field
checks, limits, top-level keys, the ``ensemble`` section), ``_build`` (each section's
builder and keys), ``_config`` (``validate``), ``_run`` (``Run``, ``build``), ``_resume``
(``check_resume``), ``_outputs`` (``execute``, ``evaluate``, ``load_run``), ``_members``
(ensembles).
"""

from ._build import (
    DATA_KEYS as DATA_KEYS,
    LOSS_KEYS as LOSS_KEYS,
    MODEL_KEYS as MODEL_KEYS,
    build_data as build_data,
    build_model as build_model,
    build_pde as build_pde,
    build_phases as build_phases,
    build_references as build_references,
    default_test_set as default_test_set,
    scale_budget as scale_budget,
)
from ._config import validate as validate
from ._fields import (
    ENSEMBLE_FIELDS as ENSEMBLE_FIELDS,
    ENSEMBLE_KEYS as ENSEMBLE_KEYS,
    INT_MAX as INT_MAX,
    MAX_GRID_POINTS as MAX_GRID_POINTS,
    MAX_MEMBERS as MAX_MEMBERS,
    MAX_PARAMETERS as MAX_PARAMETERS,
    RESUME_FREE as RESUME_FREE,
    TOP_KEYS as TOP_KEYS,
    ConfigError as ConfigError,
    ensemble_axes as ensemble_axes,
    ensemble_members as ensemble_members,
)
from ._members import (
    ENSEMBLE_FILE as ENSEMBLE_FILE,
    EnsembleRun as EnsembleRun,
    build_ensemble as build_ensemble,
    check_ensemble as check_ensemble,
    check_ensemble_resume as check_ensemble_resume,
    execute_ensemble as execute_ensemble,
    member_folder as member_folder,
    validate_ensemble as validate_ensemble,
)
from ._outputs import XLA_ENV as XLA_ENV, LoadedRun as LoadedRun, evaluate as evaluate, execute as execute, load_run as load_run
from ._resume import check_resume as check_resume, config_difference as config_difference, predates_streams as predates_streams
from ._run import Run as Run, build as build

__all__ = [
    "ConfigError", "EnsembleRun", "LoadedRun", "Run", "build", "build_ensemble", "build_model", "build_pde", "build_phases",
    "check_ensemble", "check_ensemble_resume", "check_resume", "config_difference", "ensemble_axes", "ensemble_members",
    "evaluate", "execute", "execute_ensemble", "load_run", "member_folder", "predates_streams", "scale_budget", "validate",
    "validate_ensemble",
]
