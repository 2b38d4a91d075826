"""The former home of ``jpinn.run``: every name it held, re-exported so that scripts,
notebooks and tests that import ``jpinn.experiment`` keep working. New code imports
``jpinn.run``."""

from .run import *  # noqa: F403
from .run import __all__ as __all__
from .run._build import (  # noqa: F401 - the names experiment.py held besides its __all__
    DATA_KEYS,
    LOSS_KEYS,
    MODEL_KEYS,
    _import_target,
    build_data,
    build_references,
    default_test_set,
)
from .run._config import _validate_data  # noqa: F401
from .run._fields import (  # noqa: F401
    ENSEMBLE_FIELDS,
    ENSEMBLE_KEYS,
    INT_MAX,
    MAX_GRID_POINTS,
    MAX_MEMBERS,
    MAX_PARAMETERS,
    RESUME_FREE,
    TOP_KEYS,
    _allowed_in_ensemble,
    _check_bool,
    _check_int,
    _check_keys,
    _check_magnitudes,
    _check_scale,
    _flatten,
    _where,
)
from .run._members import ENSEMBLE_FILE  # noqa: F401
from .run._outputs import XLA_ENV, _device_description, _finish  # noqa: F401
