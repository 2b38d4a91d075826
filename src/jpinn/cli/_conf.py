"""Where the Hydra configs are: ``JPINN_CONF`` if set, else the package's ``jpinn/conf``
(in a source tree a link to the repository's ``conf/``; in an installed wheel a copy)."""

from __future__ import annotations

import os
from pathlib import Path


def _conf_dir() -> Path:
    if os.environ.get("JPINN_CONF"):
        return Path(os.environ["JPINN_CONF"]).resolve()
    return (Path(__file__).resolve().parent.parent / "conf").resolve()


CONF_DIR = _conf_dir()
