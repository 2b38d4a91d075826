"""Reference solutions cached as npz files in the user's cache folder.

``cached(name, params, compute)`` returns the arrays ``compute()`` gives for the solver
``name`` with the settings ``params``, reading them from ``cache_dir()/references`` when an
earlier call computed them (the file's name is a digest of ``name``, ``params`` and
``SOLVER_VERSION``), and writing them there atomically otherwise. ``refresh=True`` (or the
environment variable ``JPINN_REFRESH_REFERENCES=1``) recomputes and overwrites. An
unreadable or mismatched file is recomputed; a folder that cannot be written is reported in
one line and the arrays are returned uncached. Delete the folder to clear the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..cache import cache_dir
from ..io import save_arrays

FOLDER = "references"
REFRESH_ENV = "JPINN_REFRESH_REFERENCES"
SOLVER_VERSION = 1  # raise it when a solver's output changes: older files are then not read
_PARAMS_KEY = "_params"


def reference_path(name: str, params: dict) -> Path:
    """Where the reference ``name`` with settings ``params`` is cached."""
    text = json.dumps({"name": name, "params": params, "version": SOLVER_VERSION}, sort_keys=True)
    return cache_dir() / FOLDER / f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:16]}.npz"


def _read(path: Path, params: dict) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path) as data:
            arrays = {k: np.asarray(data[k]) for k in data.files}
    except (OSError, ValueError, EOFError):  # absent, truncated or not an npz
        return None
    stored = arrays.pop(_PARAMS_KEY, None)
    if stored is None or json.loads(str(stored)) != json.loads(json.dumps(params, sort_keys=True)):
        return None
    return arrays


def cached(name: str, params: dict, compute: Callable[[], dict[str, np.ndarray]], *,
           refresh: bool = False) -> dict[str, np.ndarray]:
    """``compute()``'s arrays for ``name`` / ``params``, from the cache when it has them
    (module docstring)."""
    path = reference_path(name, params)
    refresh = refresh or os.environ.get(REFRESH_ENV, "") not in ("", "0")
    if not refresh:
        arrays = _read(path, params)
        if arrays is not None:
            return arrays
    arrays = {k: np.asarray(v) for k, v in compute().items()}
    try:
        save_arrays(path, {**arrays, _PARAMS_KEY: np.asarray(json.dumps(params, sort_keys=True))})
    except OSError as error:
        print(f"jpinn: reference {name}: cannot cache it in {path.parent} ({error.strerror or error}); "
              f"using it uncached", file=sys.stderr)
    return arrays


def cached_grid(name: str, params: dict, solve: Callable[..., dict[str, np.ndarray]], axes: tuple[str, ...] = ("x", "t")):
    """The ``Reference`` of a solver that returns its grid axes and ``u`` on their mesh:
    ``solve(**params)``, through the cache."""
    from ..problems import Reference

    data = cached(name, params, lambda: solve(**params))
    return Reference.from_grid([data[a] for a in axes], [data["u"]])


__all__ = ["FOLDER", "REFRESH_ENV", "SOLVER_VERSION", "cached", "cached_grid", "reference_path"]
