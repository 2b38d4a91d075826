#!/usr/bin/env python
"""Train a PINN: `python scripts/train.py pde=wave model.width=200 optimizer.learning_rate=1e-4`.

Hydra composes conf/config.yaml with one option of each group (pde/, model/, optimizer/,
data/); `-m` sweeps (`-m seed=123,234 optimizer.learning_rate=1e-3,1e-4`). Before Hydra
creates a run folder, every composed config (every combination of a sweep) is validated:
a bad value ends the command with a one-line error and exit status 2.

A run folder (every run writes a training checkpoint every ``checkpoint_every`` iterations
and at each phase end) continues from its last checkpoint with the same command plus
``resume=RUN_DIR``; a config that differs in anything that changes the numbers is refused.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
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
                raise ConfigError(
                    f"{key}: unknown key; no phase of optimizer {cfg.optimizer.get('name')!r} reads it"
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
            except ConfigError as error:
                return str(error)
            except Exception as error:
                return _one_line(error)
    return None


def _main():
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig, OmegaConf

    register_resolvers()

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
    def main(cfg: DictConfig) -> float:
        import logging

        from jpinn.experiment import ConfigError, build, build_ensemble, execute, execute_ensemble, member_folder

        for noisy in ("jax", "matplotlib"):  # backend probing and font-cache notes
            logging.getLogger(noisy).setLevel(logging.WARNING)
        config = OmegaConf.to_container(cfg, resolve=True)
        run_dir = Path(HydraConfig.get().runtime.output_dir)
        try:
            configs, members = member_configs(cfg)
            ensemble = build_ensemble(configs, members) if configs else None
            run = None if configs else build(config)
        except ConfigError as error:
            print(f"train.py: error: {error}", file=sys.stderr)
            sys.exit(2)
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
        return summary["loss"]

    main()


def _resume_into_its_folder(argv: list[str]) -> list[str]:
    """``resume=RUN_DIR`` writes into RUN_DIR: Hydra's run folder is set to it."""
    folders = [a.split("=", 1)[1] for a in argv if a.startswith("resume=")]
    if folders and folders[-1] not in ("null", "") and not any(a.startswith("hydra.run.dir=") for a in argv):
        return argv + [f"hydra.run.dir={folders[-1]}"]
    return argv


if __name__ == "__main__":
    message = precheck(sys.argv[1:])
    if message is not None:
        print(f"train.py: error: {message}", file=sys.stderr)
        sys.exit(2)
    sys.argv = [sys.argv[0]] + _resume_into_its_folder(sys.argv[1:])
    _main()
