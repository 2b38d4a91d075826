"""NNCG's time to accuracy: loss and L2RE against wall seconds, for several CG and sketch settings.

    python benchmarks/time_to_accuracy.py [--pdes convection wave] [--width 50] [--seconds 150]
                                          [--adam 5000] [--lbfgs 5000] [--n-residual 10000]
                                          [--set pde.beta=35 ...] [--out FILE]

For each PDE (the study's data: 10,000 residual points, its seed per PDE; depth 3, float32)
one Adam -> L-BFGS run gives the start point (``--adam`` + ``--lbfgs`` iterations, the
study's learning rates). From that one point, each variant then trains for ``--seconds`` of
wall time (compilation excluded, and so is the evaluation of the error, which is taken
outside the clock after every step):

- ``study``: the study's NNCG (rank 60, refresh 20, CG tolerance 1e-16 and at most 1,000
  CG iterations: in float32 the tolerance is never met, so every step runs 1,000);
- ``rtol 1e-2``: inexact CG, stopped at ||r|| <= 1e-2 ||g|| (``cg_rtol``);
- ``sqrt forcing``: ||r|| <= min(0.5, sqrt(||g||)) ||g|| (``cg_forcing=sqrt_grad``);
- ``rtol 1e-2, rank 20``: a smaller sketch;
- ``rtol 1e-2, refresh 100``: the preconditioner rebuilt 5x less often;
- ``L-BFGS``: the start point's L-BFGS continued (fresh memory), for comparison.

Each variant's curve (every logged step: seconds, loss, L2RE) is printed as a table of the
loss and L2RE reached by 10, 30, 60 and 150 s (those within the budget), and saved whole
next to the table, benchmarks/results/time-to-accuracy-<machine>.json, and drawn in the .png
beside it (``--replot JSON`` redraws a saved one). mu is the study's per PDE
(1e-2 convection and reaction, 1e-1 wave).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, save_report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

import jax.numpy as jnp  # noqa: E402

import jpinn  # noqa: E402
from jpinn.optim import LBFGS, NNCG  # noqa: E402
from jpinn.train import Phase  # noqa: E402

STUDY = {  # conf/experiment/nncg_*.yaml: seed, Adam's learning rate, NNCG's mu
    "convection": dict(seed=345, learning_rate=1e-4, mu=1e-2),
    "reaction": dict(seed=456, learning_rate=1e-3, mu=1e-2),
    "wave": dict(seed=234, learning_rate=1e-4, mu=1e-1),
}
VARIANTS = {
    "study": dict(),
    "rtol 1e-2": dict(cg_rtol=1e-2),
    "sqrt forcing": dict(cg_rtol=0.5, cg_forcing="sqrt_grad"),
    "rtol 1e-2, rank 20": dict(cg_rtol=1e-2, rank=20),
    "rtol 1e-2, refresh 100": dict(cg_rtol=1e-2, refresh=100),
    "L-BFGS": None,
}


class _OutOfTime(Exception):
    pass


def _compose(overrides: list[str]) -> dict:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf
    from train import register_resolvers

    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return OmegaConf.to_container(compose(config_name="config", overrides=overrides), resolve=True)


def _curve(run, w0, phase: Phase, seconds: float) -> list[dict]:
    """Train ``phase`` from ``w0`` for ``seconds`` of wall time (from its first chunk on):
    [{seconds, loss, l2re, iterations, evaluations}] at every log point, errors outside the clock."""
    points, state = [], {"t0": None, "outside": 0.0, "record": None, "hvps": 0}
    # the run's own test set: the study's full grid where there is one, else the first
    test_set = run.references.get("full") or next(iter(run.references.values()))

    def on_record(record):
        state["record"] = record
        state["hvps"] += int(record["info"].get("hvps", 0))
        if state["t0"] is None:  # iteration 0: logged right after the first chunk compiled
            state["t0"] = time.perf_counter()

    def on_checkpoint(checkpoint):
        t = time.perf_counter()
        if state["t0"] is None or state["record"] is None or checkpoint.state is None:
            return
        elapsed = t - state["t0"] - state["outside"]
        record = state["record"]
        errors = jpinn.evaluate(run.loss.model(jnp.asarray(checkpoint.w)), run.pde, test_set, run.dtype)
        points.append(dict(seconds=elapsed, loss=record["loss"], l2re=float(errors["l2re"]),
                           iterations=record["phase_iteration"], evaluations=record["evaluations"],
                           hvps=state["hvps"], info=record["info"]))
        state["outside"] += time.perf_counter() - t
        if elapsed > seconds:
            raise _OutOfTime

    # a zero-step start record: the driver logs iteration 0 of the first phase after compiling
    errors = jpinn.evaluate(run.loss.model(w0), run.pde, test_set, run.dtype)
    start_loss = float(run.loss(w0)[0])
    try:
        jpinn.train(run.loss, w0, [phase], log_every=phase.log_every or 1, callback=on_record, progress=False,
                    checkpoint=on_checkpoint, checkpoint_every=1, divergence=None)
    except _OutOfTime:
        pass
    return [dict(seconds=0.0, loss=start_loss, l2re=float(errors["l2re"]), iterations=0, evaluations=0, hvps=0, info={}),
            *points]


def plot(curves: dict, path: Path) -> None:
    """loss and L2RE against wall seconds, one row per PDE, one line per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pdes = list(curves)
    fig, axes = plt.subplots(len(pdes), 2, figsize=(11, 3.6 * len(pdes)), squeeze=False)
    for row, pde in zip(axes, pdes):
        for name, curve in curves[pde].items():
            if name == "start":
                continue
            seconds = [p["seconds"] for p in curve]
            row[0].plot(seconds, [p["loss"] for p in curve], label=name, drawstyle="steps-post")
            row[1].plot(seconds, [p["l2re"] for p in curve], label=name, drawstyle="steps-post")
        for ax, quantity in zip(row, ("loss", "L2RE (full grid)")):
            ax.set_yscale("log")
            ax.set_xlabel("wall seconds from the start point (compilation excluded)")
            ax.set_ylabel(quantity)
            ax.set_title(f"{pde}: {quantity}")
            ax.grid(True, which="both", alpha=0.3)
        row[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"figure saved {path}")


def _at(curve: list[dict], t: float) -> dict:
    """The last point logged by ``t`` seconds."""
    return [p for p in curve if p["seconds"] <= t][-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pdes", nargs="+", choices=list(STUDY), default=["convection", "wave"])
    parser.add_argument("--width", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--adam", type=int, default=5000)
    parser.add_argument("--lbfgs", type=int, default=5000)
    parser.add_argument("--n-residual", type=int, default=10000)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="more config overrides for the start run, e.g. pde.beta=35 (the main job's)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--replot", default=None, metavar="JSON", help="only redraw the figure of saved curves")
    args = parser.parse_args()
    if args.replot:
        plot(json.loads(Path(args.replot).read_text()), Path(args.replot).with_suffix(".png"))
        return
    marks = [t for t in (10, 30, 60, 150, 300, 600) if t <= args.seconds]
    curves, rows = {}, []
    for pde in args.pdes:
        setting = STUDY[pde]
        overrides = {"pde": pde, "optimizer": "adam_lbfgs", "model.width": args.width,
                     "data.n_residual": args.n_residual, "seed": setting["seed"],
                     "optimizer.iterations": args.adam + args.lbfgs, "optimizer.switch": args.adam,
                     "optimizer.learning_rate": setting["learning_rate"], "compile_cache": "false"}
        overrides.update(item.split("=", 1) for item in args.set)  # --set replaces a default above
        config = _compose([f"{key}={value}" for key, value in overrides.items()])
        run = jpinn.run.build(config)
        t = time.perf_counter()
        start = jpinn.train(run.loss, run.w0, run.phases, log_every=1000, progress=False)
        start_seconds = time.perf_counter() - t
        w0 = start.w
        print(f"{pde}: start point after {args.adam} Adam + {start.phases[-1].iterations} L-BFGS iterations "
              f"({start_seconds:.0f} s): loss {start.phases[-1].loss:.3e}", flush=True)
        curves[pde] = {"start": dict(adam=args.adam, lbfgs=start.phases[-1].iterations, seconds=start_seconds,
                                     loss=start.phases[-1].loss)}
        for name in args.variants:
            options = VARIANTS[name]
            if options is None:
                phase = Phase(LBFGS(), iterations=10**7, log_every=20)
            else:
                phase = Phase(NNCG(mu=setting["mu"], seed=123, **options), iterations=10**6, log_every=1)
            curve = _curve(run, w0, phase, args.seconds)
            curves[pde][name] = curve
            last = curve[-1]
            cells = [pde, name]
            for mark in marks:
                point = _at(curve, mark)
                cells.append(f"{point['loss']:.2e} / {point['l2re']:.2e}")
            best = min(p["l2re"] for p in curve)
            cells += [f"{last['seconds']:.0f}", str(last["iterations"]), str(last["evaluations"]), str(last["hvps"]),
                      f"{best:.2e}"]
            rows.append(cells)
            print(" | ".join(cells), flush=True)
    notes = [f"width {args.width}, depth 3, {args.n_residual} residual points (the study's grid sampler), float32; "
             f"start point per PDE: {args.adam} Adam + at most {args.lbfgs} L-BFGS iterations"
             + (f"; overrides {' '.join(args.set)}" if args.set else ""),
             "cells: loss / L2RE (full grid) reached by that many wall seconds (compilation and error evaluation "
             "excluded); steps: optimizer iterations (NNCG steps, L-BFGS inner iterations); evaluations: "
             "loss-and-gradient evaluations; HVPs: Hessian-vector products (CG's and the sketches')",
             "start points: " + "; ".join(f"{pde} {c['start']['adam']} + {c['start']['lbfgs']} iterations in "
                                          f"{c['start']['seconds']:.0f} s, loss {c['start']['loss']:.3e}"
                                          for pde, c in curves.items())]
    headers = ["pde", "variant", *[f"by {m} s" for m in marks], "s run", "steps", "evaluations", "HVPs", "best L2RE"]
    table = markdown_table(headers, rows)
    report = save_report("time-to-accuracy", "NNCG's time to accuracy from one Adam -> L-BFGS point", notes, table,
                         args.out)
    path = report.with_suffix(".json")
    path.write_text(json.dumps(curves, indent=1))
    print(f"curves saved {path}")
    plot(curves, path.with_suffix(".png"))


if __name__ == "__main__":
    main()
