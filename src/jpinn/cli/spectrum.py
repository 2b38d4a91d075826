"""Loss-landscape analysis of a trained run (PAPER.md section 5), in one command.

    python scripts/spectrum.py RUN_DIR [--analyses density top preconditioned direction condition]
                               [--components total residual initial boundary]
                               [--probes 10] [--steps 100] [--top 5] [--at lbfgs|final] [--out DIR]
    python scripts/spectrum.py --config pde=wave model.width=50 optimizer=adam_lbfgs_11k ... [--train-dir DIR]
    python scripts/spectrum.py --condition-sweep --out DIR [--protocol jpinn|study] [--n-residual 256 ... 8192]

RUN_DIR is a folder written by scripts/train.py. ``--config`` first trains a run from Hydra
overrides (as scripts/train.py would, into outputs/...) and then analyses it.
Analyses (by default every one the run supports):

- ``density``: the Hessian spectral density by stochastic Lanczos quadrature for the total
  loss and each component, with lambda_max, lambda_min, a condition estimate and the trace;
- ``top``: the largest Hessian eigenvalues by Lanczos;
- ``preconditioned``: the same density and top eigenvalues for Ht^T H Ht, Ht the factor of
  the L-BFGS inverse-Hessian approximation of the run's last L-BFGS phase;
- ``direction``: the loss along that phase's last direction, with the step sizes that pass
  Armijo and strong Wolfe marked;
- ``condition`` (only when asked for: it can take up to p Hessian-vector products per
  component): the magnitude condition number |lambda|_max / |lambda|_min by Lanczos run
  until the extreme Ritz values settle (``--condition-rtol``, at most
  ``--condition-steps``), with its residual bounds and whether it converged.

The analyses use the parameters where the last L-BFGS phase ended (``--at lbfgs``, the
study's point; saved as checkpoint/lbfgs.npz) or the final ones (``--at final``).
``--condition-sweep`` is the study's Figure 10: convection beta = 1, one hidden layer of
width 32 (p = 129), every Hessian eigenvalue by Lanczos for each number of residual points,
after training by a protocol: ``--protocol jpinn`` (the default; Adam lr 1e-3 for 1,000
iterations, L-BFGS for 1,000, seed 0, float64) or ``--protocol study`` (the study's: Adam lr
1e-4 for 11,000, 1,500 L-BFGS steps = 30,000 iterations, seed 345, float32); ``--adam-lr``,
``--train ADAM LBFGS``, ``--seed`` and ``--dtype`` override single values. The ratio is
|lambda_1 / lambda_129| with the eigenvalues ordered by magnitude, as the study's
(``--ordering algebraic``: largest over smallest, signs kept), and its growth exponent.

Writes OUT/spectrum.npz, OUT/spectrum.json and OUT/*.png (OUT: RUN_DIR/spectrum).
"""

from __future__ import annotations

PROG = "spectrum.py"  # the name in messages: "jpinn spectrum" under the jpinn command

import argparse
import json
import sys
import time
from pathlib import Path

DEFAULT_ANALYSES = ("density", "top", "preconditioned", "direction")
ANALYSES = DEFAULT_ANALYSES + ("condition",)  # condition: only when asked for
COMPONENTS = ("total", "residual", "initial", "boundary")
# the condition sweep's training protocols: jpinn's quick one and the study's Figure 10 one
PROTOCOLS = {
    "jpinn": {"adam_lr": 1e-3, "train": [1000, 1000], "seed": 0, "dtype": "float64"},
    "study": {"adam_lr": 1e-4, "train": [11000, 30000], "seed": 345, "dtype": "float32"},
}


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def parse(argv):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", nargs="?", help="a run folder written by scripts/train.py")
    parser.add_argument("--config", nargs="+", metavar="OVERRIDE", help="train a run from these Hydra overrides first")
    parser.add_argument("--condition-sweep", action="store_true", help="the study's Figure 10 set-up instead")
    parser.add_argument("--analyses", nargs="+", choices=ANALYSES, default=None)
    parser.add_argument("--components", nargs="+", default=None, metavar="COMPONENT",
                        help="total and the run's condition names (default: all of them; the study's: "
                             + " ".join(COMPONENTS) + ")")
    parser.add_argument("--probes", type=_positive, default=10)
    parser.add_argument("--steps", type=_positive, default=100)
    parser.add_argument("--top", type=_positive, default=5, help="number of top eigenvalues")
    parser.add_argument("--seed", type=int, default=None,
                        help="probes and start vectors (default 0); condition sweep: model and data (the protocol's)")
    parser.add_argument("--at", choices=("lbfgs", "final"), default="lbfgs")
    parser.add_argument("--condition-rtol", type=float, default=1e-3,
                        help="condition: stop when the extreme Ritz values are certified and settled to this")
    parser.add_argument("--condition-steps", type=_positive, default=2000,
                        help="condition: at most this many Lanczos steps (memory: steps x p numbers)")
    parser.add_argument("--n-residual", nargs="+", type=_positive, default=[2**k for k in range(8, 14)])
    parser.add_argument("--protocol", choices=tuple(PROTOCOLS), default="jpinn",
                        help="condition sweep: the training protocol (jpinn: quick, float64; study: the study's)")
    parser.add_argument("--adam-lr", type=float, default=None, help="condition sweep: Adam's learning rate")
    parser.add_argument("--train", nargs=2, type=int, default=None, metavar=("ADAM", "LBFGS"),
                        help="condition sweep: Adam and L-BFGS iterations before the eigenvalues")
    parser.add_argument("--dtype", choices=("float32", "float64"), default=None, help="condition sweep: precision")
    parser.add_argument("--ordering", choices=("magnitude", "algebraic"), default="magnitude",
                        help="condition sweep: rank eigenvalues by magnitude (the study) or algebraically")
    parser.add_argument("--out", default=None)
    parser.add_argument("--train-dir", default=None, help="--config: where the run is trained "
                        "(default outputs/spectrum/<date>_<time>)")
    args = parser.parse_args(argv)
    sources = sum([args.run_dir is not None, args.config is not None, args.condition_sweep])
    if sources != 1:
        parser.error("give exactly one of RUN_DIR, --config OVERRIDES or --condition-sweep")
    if args.condition_sweep and args.out is None:
        parser.error("--condition-sweep needs --out DIR")
    if args.train is not None and any(a < 0 for a in args.train):
        parser.error("--train: iterations must be >= 0")
    if args.seed is not None and args.seed < 0:
        parser.error(f"--seed: must be an integer >= 0, got {args.seed}")
    if args.adam_lr is not None and not 0 < args.adam_lr < float("inf"):
        parser.error(f"--adam-lr: must be a finite number > 0, got {args.adam_lr}")
    if not 0 < args.condition_rtol < 1:
        parser.error(f"--condition-rtol: must be a number in (0, 1), got {args.condition_rtol}")
    if args.condition_sweep:  # the protocol's values, where not given one by one
        for key, value in PROTOCOLS[args.protocol].items():
            if getattr(args, key) is None:
                setattr(args, key, value)
    elif args.seed is None:
        args.seed = 0
    return parser, args


def _train_from_config(overrides: list[str], run_dir: str | None = None) -> Path:
    """Compose conf/ with the overrides (as scripts/train.py), train, return the run folder."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from jpinn.experiment import build, execute

    from . import train as train_script
    from ._conf import CONF_DIR

    train_script.register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        try:
            cfg = compose(config_name="config", overrides=overrides)
        except Exception as error:  # an unknown group or key: Hydra's message, one line
            raise ValueError(train_script._one_line(error)) from None
    config = OmegaConf.to_container(cfg, resolve=True)
    config.pop("hydra", None)
    run = build(config)  # validates first: a bad override fails before any training
    run_dir = Path(run_dir) if run_dir else Path("outputs") / "spectrum" / time.strftime("%Y-%m-%d_%H-%M-%S")
    execute(run, run_dir)
    print(f"trained {run_dir}")
    return run_dir


def analyse_run(run_dir: Path, args) -> tuple[dict, dict]:
    import jax.numpy as jnp
    import numpy as np

    import jpinn
    from jpinn import analysis
    from jpinn.experiment import build, predates_streams

    loaded = jpinn.load_run(run_dir)  # refuses a folder that is not a jpinn run
    lbfgs = jpinn.io.load_lbfgs(run_dir)
    config = loaded.config
    if predates_streams(config):
        raise jpinn.io.RunFolderError(
            f"{run_dir}: trained before jpinn's named random streams (no data.rng in its config): its collocation"
            f" points cannot be rebuilt; train it again")
    wanted = list(args.analyses or DEFAULT_ANALYSES)
    needs_lbfgs = [a for a in wanted if a in ("preconditioned", "direction")]
    if lbfgs is None and args.analyses and needs_lbfgs:
        raise jpinn.io.RunFolderError(
            f"{run_dir}: --analyses {' '.join(needs_lbfgs)} needs a run with an L-BFGS phase (checkpoint/lbfgs.npz)")
    if lbfgs is None:
        wanted = [a for a in wanted if a not in ("preconditioned", "direction")]
    if lbfgs is not None and lbfgs["s"].shape[0] == 0:
        wanted = [a for a in wanted if a != "preconditioned"]

    dtype = loaded.w.dtype
    run = build(config)  # the run's own problem, data and loss (its model's weights replaced below)
    pde, f = run.pde, run.loss
    at_lbfgs = args.at == "lbfgs" and lbfgs is not None
    w = jnp.asarray(lbfgs["w"] if at_lbfgs else loaded.w, dtype)
    summary = {"run_dir": str(run_dir), "at": "lbfgs" if at_lbfgs else "final", "n_parameters": int(w.shape[0]),
               "pde": pde.name, "settings": {"probes": args.probes, "steps": args.steps, "seed": args.seed}}
    arrays: dict[str, np.ndarray] = {}
    slq = {"probes": args.probes, "steps": args.steps, "seed": args.seed}
    factor = analysis.LBFGSFactor(*(jnp.asarray(lbfgs[k], dtype) for k in ("s", "y", "rho", "gamma"))) \
        if "preconditioned" in wanted else None
    if factor is not None:
        summary["lbfgs_pairs"] = int(factor.s.shape[0])
    allowed = analysis.components_of(f)
    components = args.components or list(allowed)
    for component in components:
        if component not in allowed:
            raise jpinn.io.RunFolderError(f"--components: {run_dir} has no component {component!r}; allowed: {', '.join(allowed)}")

    for component in components:
        t0 = time.perf_counter()
        if "density" in wanted:
            density = analysis.hessian_density(f, w, component, **slq)
            grid, values = density.density()
            summary.setdefault("density", {})[component] = density.to_dict()
            arrays.update({f"density/{component}/{k}": v for k, v in
                           (("grid", grid), ("values", values), ("nodes", density.nodes), ("weights", density.weights))})
        if "top" in wanted:
            top = analysis.hessian_eigenvalues(f, w, component=component, k=args.top, steps=args.steps,
                                               seed=args.seed)
            summary.setdefault("top", {})[component] = top.tolist()
            arrays[f"top/{component}"] = top
        if factor is not None:
            pre = analysis.preconditioned_density(f, w, factor, component, **slq)
            grid, values = pre.density()
            top = analysis.preconditioned_top_eigenvalues(f, w, factor, component, args.top, steps=args.steps,
                                                          seed=args.seed)
            summary.setdefault("preconditioned", {})[component] = {**pre.to_dict(), "top": top.tolist()}
            arrays.update({f"preconditioned/{component}/{k}": v for k, v in
                           (("grid", grid), ("values", values), ("nodes", pre.nodes), ("weights", pre.weights),
                            ("top", top))})
        print(f"{component}: {time.perf_counter() - t0:.1f} s", flush=True)
    if "condition" in wanted:
        for component in components:
            t0 = time.perf_counter()
            estimate = analysis.hessian_condition(f, w, component, rtol=args.condition_rtol,
                                                  max_steps=args.condition_steps, seed=args.seed)
            summary.setdefault("condition", {})[component] = estimate.to_dict()
            print(f"condition {component}: {estimate.ratio:.3e} after {estimate.steps} steps"
                  f" ({'converged' if estimate.converged else 'not converged'}"
                  f"{'; smallest below the rounding floor' if estimate.below_rounding else ''}),"
                  f" {time.perf_counter() - t0:.1f} s",
                  flush=True)
    if "direction" in wanted:
        scan = analysis.line_scan(f, w, jnp.asarray(lbfgs["direction"], dtype),
                                  c1=float(lbfgs["c1"]), c2=float(lbfgs["c2"]))
        summary["direction"] = scan.to_dict()
        arrays.update({"direction/steps": scan.steps, "direction/loss": scan.loss, "direction/slope": scan.slope,
                       "direction/armijo": scan.armijo, "direction/wolfe": scan.wolfe})
    summary["analyses"] = wanted
    return summary, arrays


def condition_sweep(args) -> tuple[dict, dict]:
    import numpy as np

    import jpinn
    from jpinn import analysis
    from jpinn.optim import LBFGS, Adam

    dtype = jpinn.set_precision(args.dtype)
    pde = jpinn.pdes.make_pde("convection", beta=1.0)
    model = jpinn.models.MLP(width=32, depth=1, key=jpinn.rng.key(args.seed, "model"), dtype=dtype)

    def build(n):
        data = jpinn.sample_collocation(pde, n_residual=n, seed=args.seed, dtype=dtype)
        return jpinn.build_loss(pde, model, data)

    def train(f, w):
        phases = [jpinn.Phase(Adam(args.adam_lr), args.train[0])] if args.train[0] else []
        phases += [jpinn.Phase(LBFGS(), args.train[1])] if args.train[1] else []
        return jpinn.train(f, w, phases, log_every=500, progress=False).w if phases else w

    sweep = analysis.condition_sweep(build, args.n_residual, train=train, ordering=args.ordering)
    summary = {"condition_sweep": {**sweep.to_dict(), "pde": "convection beta=1", "width": 32, "depth": 1,
                                   "protocol": args.protocol, "dtype": args.dtype, "seed": args.seed,
                                   "train": {"adam": args.train[0], "adam_lr": args.adam_lr, "lbfgs": args.train[1]}}}
    arrays = {"condition/n_residual": np.asarray(sweep.n_residual), "condition/ratio": sweep.ratio,
              **{f"condition/eigenvalues/{n}": e for n, e in zip(sweep.n_residual, sweep.eigenvalues)}}
    print(f"ratio |lambda_1 / lambda_{sweep.index}| ({args.ordering}): " + ", ".join(
        f"n={n}: {r:.3e}" for n, r in zip(sweep.n_residual, sweep.ratio)) + f"; exponent {sweep.exponent:.2f}")
    return summary, arrays


def main(argv=None) -> int:
    parser, args = parse(argv)
    from jpinn import io
    from jpinn.experiment import ConfigError

    try:
        if args.condition_sweep:
            out = io.check_run_folder(args.out, resume=True, field="--out")
            summary, arrays = condition_sweep(args)
        else:
            if not args.config:  # the output folder is checked before the (long) analysis
                out = io.check_run_folder(args.out or Path(args.run_dir) / "spectrum", resume=True,
                                          field="--out" if args.out else "--out (default RUN_DIR/spectrum)")
            run_dir = _train_from_config(args.config, args.train_dir) if args.config else Path(args.run_dir)
            if args.config:
                out = io.check_run_folder(args.out or run_dir / "spectrum", resume=True, field="--out")
            summary, arrays = analyse_run(run_dir, args)
    except (io.RunFolderError, ConfigError, ValueError) as error:
        print(f"{PROG}: error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    io.save_arrays(out / "spectrum.npz", arrays)
    io.write_json(out / "spectrum.json", summary)
    from jpinn.plot import plot_spectrum_figures

    figures = plot_spectrum_figures(arrays, summary, out)
    print(json.dumps({k: v for k, v in summary.items() if k not in ("settings",)}, indent=1, default=str)[:4000])
    print("wrote " + ", ".join(str(p) for p in [out / "spectrum.npz", out / "spectrum.json", *figures]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
