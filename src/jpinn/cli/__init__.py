"""The ``jpinn`` command: ``jpinn train|spectrum|aggregate|plot|predict ...``.

Each subcommand is a module of this package with ``PROG`` (its name in messages) and
``main(argv) -> int``; ``scripts/*.py`` are thin wrappers around the same modules, so
``python scripts/train.py ...`` and ``jpinn train ...`` are one program.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "train": "train a run (Hydra: GROUP=OPTION and FIELD=VALUE overrides, -m sweeps, resume=RUN)",
    "spectrum": "loss-landscape analysis of a run folder (Hessian spectrum, densities, conditioning)",
    "aggregate": "tables and figures of many run folders (the study's tables)",
    "plot": "figures of chosen run folders side by side",
    "predict": "a run's predictions on given points or a grid, to .npz or .csv",
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: jpinn COMMAND [ARGS ...]", "",
             "Physics-informed neural networks in JAX: train, analyse and compare runs.", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()]
    lines += ["", "jpinn COMMAND --help lists a command's fields and options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # ``jpinn train --help | head``: the reader left; say nothing more, exit as a
        # shell pipeline does, and keep Python from complaining when it flushes stdout.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from importlib.metadata import version

        print(f"jpinn {version('jpinn')}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        import difflib

        close = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f"; did you mean {close[0]}?" if close else ";"
        print(f"jpinn: error: unknown command {name!r}{hint} allowed: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"{__name__}.{name}")
    module.PROG = f"jpinn {name}"
    sys.argv = [f"{sys.argv[0]} {name}", *rest]
    return module.main(rest)
