"""jpinn's folder in the user's cache, and XLA's persistent compilation cache in it.

``cache_dir()`` is where jpinn keeps what it can rebuild: ``$JPINN_CACHE_DIR`` if set, else
``$XDG_CACHE_HOME/jpinn``, else ``~/.cache/jpinn``.

``use_compilation_cache(folder)`` turns JAX's persistent compilation cache on (in
``cache_dir() / "xla"`` for ``"auto"``, or in ``folder``) or off (``None`` / ``False``).
A program compiled once is then read back from disk by the next run that compiles the same
program (same shapes, dtypes, jax version, XLA flags and device): a second run of the same
config skips XLA's compilation, not the tracing. Every program is cached, however quickly it
compiled (JAX's default skips programs under one second, which are most of a run's).
Training runs switch it with the config field ``compile_cache`` (default ``auto``).

The cache is trusted input: a folder others can write to lets them run code in your
process (JAX's warning). Delete the folder to clear it; it is rebuilt on demand.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import jax

CACHE_ENV = "JPINN_CACHE_DIR"
XLA_FOLDER = "xla"


def cache_dir() -> Path:
    """jpinn's cache folder (not created): $JPINN_CACHE_DIR, $XDG_CACHE_HOME/jpinn or ~/.cache/jpinn."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "jpinn"


def check_compile_cache(value) -> None:
    """A one-line ValueError unless ``value`` is a ``compile_cache`` setting."""
    if value is None or value is False or value is True or value == "auto":
        return
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"compile_cache: must be auto, false or a folder, got {value!r}")


def compilation_cache_folder(value="auto") -> Path | None:
    """The folder a ``compile_cache`` setting names (None: off)."""
    check_compile_cache(value)
    if value is None or value is False:
        return None
    if value is True or value == "auto":
        return cache_dir() / XLA_FOLDER
    return Path(value).expanduser()


def use_compilation_cache(value="auto") -> Path | None:
    """Switch JAX's persistent compilation cache to the folder ``value`` names, or off.

    Returns the folder in use (None: off). A folder that cannot be created or written is
    reported in one line on stderr and the run goes on uncached: a cache is an
    optimisation, never a reason to fail."""
    folder = compilation_cache_folder(value)
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if not os.access(folder, os.W_OK | os.X_OK):
                raise PermissionError("not writable")
        except OSError as error:
            print(f"jpinn: compile_cache: {folder}: cannot use it ({error.strerror or error}); "
                  f"compiling without the cache", file=sys.stderr)
            folder = None
    current = jax.config.jax_compilation_cache_dir
    enabled = jax.config.jax_enable_compilation_cache
    wanted = str(folder) if folder is not None else None
    if current == wanted and (enabled == (folder is not None)):
        return folder
    jax.config.update("jax_compilation_cache_dir", wanted)
    jax.config.update("jax_enable_compilation_cache", folder is not None)
    if folder is not None:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    _reset()
    return folder


def _reset() -> None:
    """Make JAX look at the cache settings again (it reads them once, at the first compile)."""
    try:
        from jax._src import compilation_cache
    except ImportError:  # a jax without the module: the settings apply from the next process on
        return
    compilation_cache.reset_cache()
