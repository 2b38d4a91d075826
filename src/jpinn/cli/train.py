"""Train a PINN: `python scripts/train.py pde=wave model.width=200 optimizer.learning_rate=1e-4`.

Hydra composes conf/config.yaml with one option of each group (pde/, model/, optimizer/,
data/); `-m` sweeps (`-m seed=123,234 optimizer.learning_rate=1e-3,1e-4`). Before Hydra
creates a run folder, every composed config (every combination of a sweep) is validated:
a bad value ends the command with a one-line error and exit status 2.

A run folder (every run writes a training checkpoint every ``checkpoint_every`` iterations
and at each phase end) continues from its last checkpoint with the same command plus
``resume=RUN_DIR``. A config that differs in anything that changes the numbers is refused,
but for larger budgets and later phases: the run then ends as one given them from the start
would have ("train longer", jpinn.run._resume).
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

from ._conf import CONF_DIR

PROG = "train.py"  # the name in messages: "jpinn train" under the jpinn command
MAX_PRECHECK = 5000  # sweeps larger than this are validated job by job instead


def _one_line(error: BaseException) -> str:
    """Hydra's multi-line composition errors as one line that names the field."""
    text = str(error)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    head = lines[0] if lines else type(error).__name__
    if "Available options in" in text:
        # the group's options are the tab-indented lines right after that header
        tail = text.split("Available options in", 1)[1].splitlines()[1:]
        options = []
        for line in tail:
            if not line.startswith("\t"):
                break
            options.append(line.strip())
        return f"{head.rstrip('.')}; allowed: {', '.join(options)}"
    cause = error.__cause__ or error.__context__
    if cause is not None and str(cause).strip():
        head = f"{head.rstrip('.')}: {str(cause).strip().splitlines()[0]}"
    return head


def _expand(overrides: list[str]) -> list[list[str]]:
    """Every job of a sweep, as Hydra's basic sweeper forms them: one list of choices per key
    (a later override of the same key replaces an earlier one), then their product."""
    from collections import OrderedDict

    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    choices: OrderedDict[str, list[str]] = OrderedDict()
    for override in parsed:
        key = override.get_key_element()
        if override.is_sweep_override():
            choices[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            choices[key] = [override.input_line]
    return [list(combo) for combo in itertools.islice(itertools.product(*choices.values()), MAX_PRECHECK)]


def _sweeper_params(overrides: list[str]) -> list[str]:
    """``hydra.sweeper.params`` of the config the command line selects (an experiment file
    may hold its sweep there), as overrides that go before the command line's own."""
    from hydra import compose
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    first = []  # one job's overrides: enough to select the experiment that holds the params
    for override in parsed:
        key = override.get_key_element()
        if override.is_sweep_override():
            first.append(f"{key}={next(iter(override.sweep_string_iterator()))}")
        else:
            first.append(override.input_line)
    cfg = compose(config_name="config", overrides=first, return_hydra_config=True)
    params = cfg.hydra.sweeper.get("params") or {}
    return [f"{key}={value}" for key, value in params.items()]


def _check_added_optimizer_keys(cfg, combo: list[str]) -> None:
    """An optimizer field added on the command line (``+optimizer.momentum=0.9``) must be one
    that a phase reads (through an interpolation); otherwise it would be silently ignored.
    (The other groups' keys are checked by ``validate``.)"""
    import re

    from omegaconf import OmegaConf

    from jpinn.experiment import ConfigError

    phases = json.dumps(OmegaConf.to_container(cfg.optimizer, resolve=False).get("phases", []))
    read = set(re.findall(r"optimizer\.([A-Za-z0-9_.]+)", phases))
    for argument in combo:
        if not argument.startswith("+"):
            continue
        key = argument.lstrip("+").split("=", 1)[0]
        if key.startswith("optimizer.") and not key.startswith("optimizer.phases"):
            field = key[len("optimizer."):]
            if not any(field == r or field.startswith(r + ".") for r in read):
                import difflib

                close = difflib.get_close_matches(field, sorted(read), n=2, cutoff=0.6)
                hint = f"; did you mean {' or '.join('optimizer.' + c for c in close)}?" if close else ""
                raise ConfigError(
                    f"{key}: unknown key; no phase of optimizer {cfg.optimizer.get('name')!r} reads it{hint}"
                    f" (its fields: {', '.join(sorted(read))})"
                )


def member_configs(cfg) -> tuple[list[dict], list[dict]]:
    """The resolved configs of an ensemble's members (``ensemble.seeds`` / ``ensemble.params``
    applied to the unresolved config, so interpolations such as NNCG's ``seed: ${seed}``
    follow) and each member's field values; ([], []) for a solo run."""
    import copy

    from omegaconf import OmegaConf, open_dict

    from jpinn.experiment import ConfigError, ensemble_members

    section = OmegaConf.to_container(cfg.ensemble, resolve=True) if "ensemble" in cfg else None
    members = ensemble_members(section)
    configs = []
    for values in members:
        member = copy.deepcopy(cfg)
        with open_dict(member):
            for field, value in values.items():
                if field != "seed" and field != "data.seed" and OmegaConf.select(member, field, default=_MISSING) is _MISSING:
                    raise ConfigError(f"ensemble.params.{field}: no such field in the config")
                OmegaConf.update(member, field, value, force_add=True)
            member.ensemble = {"seeds": None, "params": {}}  # each member's config is a solo run's
        configs.append(OmegaConf.to_container(member, resolve=True))
    return configs, members


_MISSING = object()


def _check_devices(config: dict) -> None:
    """``devices`` against the devices this machine has, before Hydra makes the run folder."""
    from jpinn.experiment import ConfigError
    from jpinn.loss import resolve_devices

    if config.get("devices", 1) not in (1, None):
        try:
            resolve_devices(config["devices"])
        except ValueError as error:
            raise ConfigError(str(error)) from None


def _parse_override(argument: str) -> tuple[str | None, str | None]:
    """(value, None) for an override Hydra's grammar accepts (its quotes removed), or
    (None, one line) for one it rejects (its own error is several lines)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        value = OverridesParser.create().parse_overrides([argument])[0].value()
    except Exception as error:  # OverrideParseException: the argument, a caret line, a link
        lines = str(error).splitlines()
        column = lines[1].find("^") if len(lines) > 1 else -1
        offending = argument[column - (len(lines[0]) - len(argument))] if 0 <= column < len(lines[0]) else None
        where = f" at {offending!r}" if offending and not offending.isascii() else ""
        return None, (f"{argument!r}: not a valid override{where}; quote a value with spaces or non-ASCII characters"
                      f" (KEY='VALUE'), see https://hydra.cc/docs/advanced/override_grammar/basic")
    return ("" if value is None else str(value)), None


def _check_output_folder(hydra_values: dict[str, str], multirun: bool, *, resume: bool) -> None:
    """The folder Hydra will write the run (or the sweep) into, checked before Hydra makes it:
    writable, not inside a file, and for a fresh run not one that already holds a run."""
    from jpinn import io
    from jpinn.experiment import ConfigError

    try:
        if multirun:
            if "hydra.sweep.dir" in hydra_values:
                io.check_run_folder(hydra_values["hydra.sweep.dir"], resume=True, field="hydra.sweep.dir")
        elif "hydra.run.dir" in hydra_values:
            io.check_run_folder(hydra_values["hydra.run.dir"], resume=resume)
        elif not resume:  # the default folder: outputs/DATE/TIME_PDE_OPTIMIZER under the working directory
            io.check_run_folder("outputs", resume=True, field="hydra.run.dir (default outputs/)")
    except io.RunFolderError as error:
        raise ConfigError(str(error)) from None


def register_resolvers() -> None:
    """Config arithmetic: ``${minus:a,b}`` (the L-BFGS share of an Adam+L-BFGS budget)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("minus"):
        OmegaConf.register_new_resolver("minus", lambda a, b: a - b)


def precheck(argv: list[str]) -> str | None:
    """Compose and validate the config(s) the command line asks for; an error line or None."""
    flags = {"-m", "--multirun"}
    if any(a.startswith("-") and a not in flags for a in argv):
        return None  # --help, --cfg, -cn ...: Hydra's own business
    overrides = [a for a in argv if a not in flags and not a.lstrip("+~").startswith("hydra")]
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from jpinn.experiment import ConfigError, check_ensemble_resume, check_resume, validate, validate_ensemble

    for argument in overrides:
        if argument.lstrip("+~").startswith("="):
            return f"{argument!r}: no field name; allowed: FIELD=VALUE (e.g. model.width=50)"
    hydra_values = {}
    for argument in (a for a in argv if a not in flags):
        value, message = _parse_override(argument)
        if message is not None:
            return message
        key, _, _ = argument.lstrip("+~").partition("=")
        if key.startswith("hydra."):
            hydra_values[key] = value
    register_resolvers()
    multirun = any(a in flags for a in argv)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        try:
            combos = _expand(_sweeper_params(overrides) + overrides) if multirun else [overrides]
        except ConfigError as error:
            return str(error)
        except Exception as error:  # a malformed override or an unknown experiment
            return _one_line(error)
        for combo in combos:
            try:
                cfg = compose(config_name="config", overrides=combo)
                config = OmegaConf.to_container(cfg, resolve=True)
                validate(config)
                _check_devices(config)
                _check_added_optimizer_keys(cfg, combo)
                configs, members = member_configs(cfg)
                if configs:
                    for argument in combo:  # a field the ensemble sets per member, also set for the job
                        key = argument.lstrip("+~").split("=", 1)[0]
                        if key in members[0]:
                            raise ConfigError(
                                f"{key}: set per member by the ensemble (ensemble.{'seeds' if key == 'seed' else 'params.' + key});"
                                f" give it in one place only"
                            )
                    validate_ensemble(configs, members)
                if config.get("resume") is not None:
                    if multirun:
                        raise ConfigError("resume: continues one run folder; not with -m")
                    if configs:  # an ensemble: each member's folder, and a checkpoint they all hold
                        check_ensemble_resume(config["resume"], configs)
                    else:
                        check_resume(config["resume"], config)
                if combo is combos[0]:  # one output folder per command, whatever the sweep's size
                    _check_output_folder(hydra_values, multirun, resume=config.get("resume") is not None)
            except ConfigError as error:
                return _in_user_terms(str(error), combo)
            except Exception as error:
                return _suggest(_one_line(error), combo)
    return None


def _in_user_terms(message: str, combo: list[str]) -> str:
    """A refusal of a derived field (``optimizer.phases[1].iterations``, an interpolation of
    the fields the user sets) restated with the fields it is made from and their values."""
    import re

    from hydra import compose
    from omegaconf import OmegaConf

    match = re.match(r"(optimizer\.phases\[(\d+)\]\.([A-Za-z_]+)): (.*)", message)
    if not match:
        return message
    field, index, key, reason = match.group(1), int(match.group(2)), match.group(3), match.group(4)
    try:
        cfg = compose(config_name="config", overrides=combo)
        phases = OmegaConf.to_container(cfg.optimizer, resolve=False).get("phases") or []
        expression = phases[index].get(key) if index < len(phases) and isinstance(phases[index], dict) else None
    except Exception:  # noqa: BLE001 - the plain message is still right
        return message
    if not isinstance(expression, str) or "${" not in expression:
        return message
    sources = list(dict.fromkeys(re.findall(r"\$\{((?:optimizer|pde|model|data)\.[A-Za-z0-9_.]+)\}", expression)))
    if not sources:
        return message
    values = ", ".join(f"{name}={OmegaConf.select(cfg, name)}" for name in sources)
    return f"{values}: make {field} = {expression} {reason.replace('must be', 'which must be', 1)}"


def _suggest(message: str, combo: list[str]) -> str:
    """Hydra's "Key 'widht' is not in struct" as one line naming the field and the closest keys."""
    import difflib
    import re

    from hydra import compose
    from omegaconf import OmegaConf

    match = re.search(r"Could not override '([^']+)'.*Key '([^']+)' is not in struct", message)
    if not match:
        return message
    path, wrong = match.group(1), match.group(2)
    parent = path[: -len(wrong) - 1] if path.endswith("." + wrong) else ""
    others = [a for a in combo if not a.lstrip("+~").startswith(path + "=")]
    try:
        cfg = compose(config_name="config", overrides=others)
        node = OmegaConf.select(cfg, parent) if parent else cfg
        keys = [str(k) for k in node.keys()]
    except Exception:  # noqa: BLE001 - the plain message is still right
        return message
    close = difflib.get_close_matches(wrong, keys, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join((parent + '.' if parent else '') + c for c in close)}?" if close else ""
    return f"{path}: unknown key{hint} (the fields of {parent or 'the config'}: {', '.join(sorted(keys))})"


def _main():
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig, OmegaConf

    register_resolvers()

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
    def main(cfg: DictConfig) -> float:
        import logging

        from jpinn.experiment import ConfigError, build, build_ensemble

        for noisy in ("jax", "matplotlib"):  # backend probing and font-cache notes
            logging.getLogger(noisy).setLevel(logging.WARNING)
        config = OmegaConf.to_container(cfg, resolve=True)
        run_dir = Path(HydraConfig.get().runtime.output_dir)
        print(f"jpinn: run folder {run_dir}", flush=True)
        try:
            configs, members = member_configs(cfg)
            ensemble = build_ensemble(configs, members) if configs else None
            run = None if configs else build(config)
        except ConfigError as error:
            print(f"{PROG}: error: {error}", file=sys.stderr)
            sys.exit(2)
        try:
            with _ends_in_one_line(run_dir):
                return _train(config, run, ensemble, members, run_dir)
        finally:  # a sweep's jobs share this process: each job's compiled programs are let go
            import jax

            jax.clear_caches()

    main()
    if _FAULTED:  # every phase of a run ended on a fault (the sweep's jobs all ran first)
        sys.exit(EXIT_FAULTED)


# exit codes (README, "Exit codes")
EXIT_ERROR, EXIT_REFUSED, EXIT_FAULTED, EXIT_INTERRUPTED = 1, 2, 3, 130
_FAULTED: list[str] = []  # the run folders whose phases all ended on a fault


def _resume_command(run_dir: Path) -> str:
    """The command line that continues ``run_dir``: this one, with resume= in place of its folder."""
    import shlex

    kept = [a for a in sys.argv[1:] if not a.startswith(("resume=", "hydra.run.dir=")) and a not in ("-m", "--multirun")]
    command = PROG.split() if PROG.startswith("jpinn") else ["python", shlex.quote(sys.argv[0])]
    return " ".join([*command, *map(shlex.quote, kept), shlex.quote(f"resume={run_dir}")])


class _ends_in_one_line:
    """A run stopped by Ctrl-C, or by a file it could not write (a full disk), ends in one line
    that names what happened and how to continue, and the exit codes above."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        from jpinn import io
        from jpinn.experiment import ConfigError
        from jpinn.train import Interrupted

        if error is None:
            return False
        checkpoint = (self.run_dir / io.CHECKPOINT_DIR / io.TRAIN_FILE).is_file() or any(
            self.run_dir.glob(f"member-*/{io.CHECKPOINT_DIR}/{io.TRAIN_FILE}"))
        if isinstance(error, Interrupted):
            where = f"in phase {error.phase} at iteration {error.iteration}"
            if error.checkpointed:
                print(f"{PROG}: interrupted {where}; checkpoint written; continue with: {_resume_command(self.run_dir)}",
                      file=sys.stderr)
            else:
                print(f"{PROG}: interrupted {where} (this run writes no checkpoints)", file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)
        if isinstance(error, KeyboardInterrupt):  # a second Ctrl-C, or one outside the training loop
            tail = f"; continue from the last checkpoint with: {_resume_command(self.run_dir)}" if checkpoint else ""
            print(f"{PROG}: interrupted{tail}", file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)
        if isinstance(error, (ConfigError, io.RunFolderError)):
            print(f"{PROG}: error: {error}", file=sys.stderr)
            sys.exit(EXIT_REFUSED)
        if isinstance(error, OSError):
            name = error.filename or self.run_dir
            tail = (f"; the last checkpoint is intact: free space, then continue with: {_resume_command(self.run_dir)}"
                    if checkpoint else "; no checkpoint was written yet")
            print(f"{PROG}: error: cannot write {name}: {error.strerror or error}{tail}", file=sys.stderr)
            sys.exit(EXIT_ERROR)
        return False


def _train(config, run, ensemble, members, run_dir: Path) -> float:
    """Train the run (or the ensemble) built from ``config`` into ``run_dir``; print its results."""
    from jpinn.experiment import execute, execute_ensemble, member_folder

    if ensemble is not None:
        summaries = execute_ensemble(ensemble, run_dir)
        for k, (summary, values) in enumerate(zip(summaries, members)):
            print(
                f"{run_dir / member_folder(k)} ({', '.join(f'{f}={v}' for f, v in values.items())}):"
                f" loss {summary['loss']:.3e}  L2RE {summary['l2re']:.3e} ({summary['test_set']})"
                f"  {summary['iterations']} iterations"
            )
        print(f"{run_dir}: {len(summaries)} members trained together in {summaries[0]['seconds']:.1f} s"
              f" (+{summaries[0]['compile_seconds']:.1f} s compile)")
        for k, summary in enumerate(summaries):
            _note_faults(summary, run_dir / member_folder(k))
        return min(s["loss"] for s in summaries)
    summary = execute(run, run_dir)
    for phase in summary["phases"]:
        print(
            f"  {phase['name']:>6}: {phase['iterations']:>6} iterations ({phase['steps']} steps,"
            f" {phase['evaluations']} evaluations) in {phase['seconds']:.1f} s, loss {phase['loss']:.3e},"
            f" stopped: {phase['stop_reason']}"
        )
    print(
        f"{run_dir}: loss {summary['loss']:.3e}  L2RE {summary['l2re']:.3e} ({summary['test_set']})"
        f"  {summary['iterations']} iterations in {summary['seconds']:.1f} s"
        f" (+{summary['compile_seconds']:.1f} s compile)"
    )
    for name, entry in summary.get("learned", {}).items():
        known = (f" (true {entry['true']:.6g}, relative error {entry['relative_error']:.2e})"
                 if "true" in entry else "")
        print(f"  learned {name} = {entry['value']:.6g} from {entry['initial']:.6g}{known}")
    _note_faults(summary, run_dir)
    return summary["loss"]


def _note_faults(summary: dict, folder: Path) -> None:
    """A run (or member) whose phases all ended on a fault: said on stderr, and the command
    exits with EXIT_FAULTED once every job has run."""
    from jpinn.optim import FAULTS

    if all(phase["stop_code"] in FAULTS for phase in summary["phases"]):
        _FAULTED.append(str(folder))
        print(f"{PROG}: {folder}: every phase ended on a fault ({summary['phases'][-1]['stop_reason']});"
              f" exit status {EXIT_FAULTED}", file=sys.stderr)


def _group_fields() -> list[str]:
    """The fields of each group's default option, with their values (the composed default
    config): what ``model.width=...`` and the like may set."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    register_resolvers()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="config", return_hydra_config=False)
    except Exception:  # noqa: BLE001 - the help still lists the top-level fields
        return []
    lines = []
    choices = {"pde": cfg.pde.get("name"), "model": cfg.model.get("name"), "data": cfg.data.get("name"),
               "optimizer": cfg.optimizer.get("name")}
    for group, option in choices.items():
        node = OmegaConf.to_container(cfg[group], resolve=False)
        fields = []
        for key, value in node.items():
            if key in ("phases", "name", "_target_"):
                continue
            if isinstance(value, dict):
                value = "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}" if value else "{}"
            fields.append(f"{group}.{key}={value}")
        lines += ["", f"fields of {group}={option}, the default option (another's: {group}=NAME --cfg job):"]
        lines += [f"  {field}" for field in fields]
    return lines


def usage() -> str:
    """``--help``: the command, the config groups and their options, and every top-level field
    with its default and meaning (the comments of conf/config.yaml)."""
    import re

    lines = [
        f"usage: {'jpinn train' if PROG.startswith('jpinn') else 'python scripts/train.py'} [GROUP=OPTION ...]"
        " [FIELD=VALUE ...] [-m]",
        "",
        "Train a PINN. A config is composed from conf/config.yaml, one option of each group, and",
        "the command line; -m sweeps comma-separated values (seed=1,2,3). Every refusal is one line",
        "and exit status 2, before any folder is made.",
        "",
        "groups (GROUP=OPTION; the fields of each option: GROUP.FIELD=VALUE):",
    ]
    for group in ("pde", "model", "optimizer", "data", "experiment", "launcher", "logger"):
        options = sorted(f.stem for f in (CONF_DIR / group).glob("*.yaml"))
        lines.append(f"  {group:<11} {', '.join(options)}")
    lines += ["", "fields (FIELD=VALUE; default, then meaning):"]
    text = (CONF_DIR / "config.yaml").read_text()
    body = text.split("\nhydra:", 1)[0]
    section = None
    for line in body.splitlines():
        match = re.match(r"^(\s*)([A-Za-z_]+):\s*([^#]*?)\s*(?:#\s*(.*))?$", line)
        if not match or line.lstrip().startswith("-") or match.group(2) == "defaults":
            continue
        indent, key, value, comment = match.groups()
        if not indent:
            section = key if not value else None
            name = key
        elif section is not None:
            name = f"{section}.{key}"
        else:
            continue
        if not value and not comment:
            continue
        lines.append(f"  {name + '=' + value if value else name:<28} {comment or ''}".rstrip())
    lines += _group_fields()
    lines += [
        "",
        "exit status: 0 trained; 1 a file could not be written (the last checkpoint is kept, resume=);",
        "2 refused input; 3 every phase of a run ended on a fault (non-finite, diverged, failed solve);",
        "130 interrupted by Ctrl-C (a checkpoint at the last chunk, resume= continues).",
        "Hydra's own options: --hydra-help. The README has the rest.",
    ]
    return "\n".join(lines)


def _resume_into_its_folder(argv: list[str]) -> list[str]:
    """``resume=RUN_DIR`` writes into RUN_DIR: Hydra's run folder is set to it."""
    folders = [a.split("=", 1)[1] for a in argv if a.startswith("resume=")]
    if folders and folders[-1] not in ("null", "") and not any(a.startswith("hydra.run.dir=") for a in argv):
        return argv + [f"hydra.run.dir={folders[-1]}"]
    return argv


def main(argv: list[str] | None = None) -> int:
    """The command: ``--help``, the precheck (a refusal: one line, status 2), then Hydra's app
    on the same arguments (it reads them from ``sys.argv``). Returns 0, or exits with the run's
    status (EXIT_*)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a in ("--help", "-h") for a in argv):
        print(usage())
        return 0
    message = precheck(argv)
    if message is not None:
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return EXIT_REFUSED
    sys.argv = [sys.argv[0]] + _resume_into_its_folder(argv)
    _main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
