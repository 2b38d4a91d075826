"""Compile time of whole runs: cold, with the persistent compilation cache filled, and off.

For each job (the README's main job; ``main-short``, the same with 30 NNCG steps instead of
300, which compiles the same programs; a tiny Adam -> L-BFGS -> NNCG run) this runs
``scripts/train.py`` as a user would, several times in fresh processes:

- ``cold``: the cache switched on in an empty folder (what a first run does);
- ``warm``: the same folder again (every later run of the same config);
- ``off``: ``compile_cache=false``;
- ``warm-noahead``: ``warm`` with ``compile_ahead=false`` (every phase compiles when it
  starts, in the foreground; otherwise the later phases compile in the background while the
  first one trains, and ``run compile_seconds`` is the time the run waited for them).

Each row gives the command's wall seconds, the seconds from the process start until the
first training chunk was compiled (the time a user waits before training starts), XLA's
compilations (``/jax/core/compile/backend_compile_duration`` events: one per program,
compiled or read back) with their total seconds, the cache hits and misses, the seconds of
tracing and lowering, and the run's own ``compile_seconds`` (the chunks' compiles, from
summary.json). Medians over ``--repeats`` (each ``cold`` repeat starts from an empty folder).

    python benchmarks/compile.py [--jobs main main-short tiny] [--modes cold warm warm-noahead off] [--repeats 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import markdown_table, save_report

ROOT = Path(__file__).resolve().parent.parent
MODES = ["cold", "warm", "warm-noahead", "off"]
JOBS = {
    "main": ["experiment=main", "quiet=true", "plot=false"],
    # the same programs as main (its chunks do not depend on the NNCG budget), 4x shorter
    "main-short": ["experiment=main", "optimizer.nncg.iterations=30", "quiet=true", "plot=false"],
    "tiny": ["optimizer=adam_lbfgs_nncg", "optimizer.iterations=60", "optimizer.switch=40",
             "optimizer.nncg.iterations=5", "model.width=16", "model.depth=2", "data.n_x=65", "data.n_t=33",
             "data.n_residual=500", "log_every=10", "quiet=true", "plot=false"],
}

# runs scripts/train.py in this process with listeners on JAX's compile events
WRAPPER = r"""
import json, runpy, sys, time
start = time.perf_counter()
import jax.monitoring as monitoring
stats = {"programs": 0, "backend_s": 0.0, "trace_s": 0.0, "lower_s": 0.0, "hits": 0, "misses": 0,
         "first_chunk_s": None}
def duration(event, seconds, **_):
    if event == "/jax/core/compile/backend_compile_duration":
        stats["programs"] += 1; stats["backend_s"] += seconds
    elif event == "/jax/core/compile/jaxpr_trace_duration":
        stats["trace_s"] += seconds
    elif event == "/jax/core/compile/jaxpr_to_mlir_module_duration":
        stats["lower_s"] += seconds
def event(name, **_):
    if name == "/jax/compilation_cache/cache_hits":
        stats["hits"] += 1
    elif name == "/jax/compilation_cache/cache_misses":
        stats["misses"] += 1
monitoring.register_event_duration_secs_listener(duration)
monitoring.register_event_listener(event)
import importlib
driver = importlib.import_module("jpinn.train")  # the module (jpinn.train is also the function)
compile_chunk = driver._Solo.compile
def timed_compile(self, *args, **kwargs):
    out = compile_chunk(self, *args, **kwargs)
    if stats["first_chunk_s"] is None:
        stats["first_chunk_s"] = time.perf_counter() - start
    return out
driver._Solo.compile = timed_compile
out_file = sys.argv[1]
sys.argv = [sys.argv[2], *sys.argv[3:]]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    stats["wall_s"] = time.perf_counter() - start
    with open(out_file, "w") as handle:
        json.dump(stats, handle)
"""


def once(job: str, mode: str, cache: Path, folder: Path) -> dict:
    import os

    args = [*JOBS[job], f"hydra.run.dir={folder}"]
    if mode == "off":
        args.append("compile_cache=false")
    if mode == "warm-noahead":
        args.append("compile_ahead=false")
    env = {**os.environ, "JPINN_CACHE_DIR": str(cache)}
    wrapper = folder.parent / "wrapper.py"
    wrapper.write_text(WRAPPER)
    stats_file = folder.parent / f"{folder.name}.json"
    done = subprocess.run([sys.executable, str(wrapper), str(stats_file), str(ROOT / "scripts" / "train.py"), *args],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{job} ({mode}): train.py failed: {done.stderr.strip().splitlines()[-1:]}")
    stats = json.loads(stats_file.read_text())
    summary = json.loads((folder / "summary.json").read_text())
    stats.update(run_compile_s=summary["compile_seconds"], loss=summary["loss"], l2re=summary["l2re"])
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", nargs="+", choices=list(JOBS), default=["main", "tiny"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=MODES,
                        help="warm needs cold before it (it reuses its folder)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if any(m.startswith("warm") for m in args.modes) and "cold" not in args.modes:
        parser.error("--modes: warm needs cold (it runs on the folder cold filled)")
    rows, losses = [], {}
    keys = ("wall_s", "first_chunk_s", "programs", "backend_s", "hits", "misses", "trace_s", "lower_s", "run_compile_s")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for job in args.jobs:
            results = {mode: [] for mode in args.modes}
            for k in range(args.repeats):
                cache = tmp / f"cache-{job}-{k}"  # empty: this repeat's cold run fills it
                for mode in args.modes:
                    result = once(job, mode, cache, tmp / f"{job}-{mode}-{k}")
                    results[mode].append(result)
                    losses.setdefault(job, set()).add((result["loss"], result["l2re"]))
                    print(job, mode, k, {key: result[key] for key in keys}, flush=True)
            for mode, runs in results.items():
                med = {key: statistics.median(r[key] for r in runs) for key in keys}
                rows.append([job, mode, f"{med['wall_s']:.1f}", f"{med['first_chunk_s']:.1f}", f"{med['programs']:.0f}",
                             f"{med['backend_s']:.1f}", f"{med['hits']:.0f}", f"{med['misses']:.0f}",
                             f"{med['trace_s'] + med['lower_s']:.1f}", f"{med['run_compile_s']:.1f}"])
    notes = [f"medians of {args.repeats} runs per mode; cold: the cache on in an empty folder, warm: the same folder "
             f"again, warm-noahead: the same with compile_ahead=false, off: compile_cache=false",
             "jobs: " + "; ".join(f"{job}: `{' '.join(JOBS[job])}`" for job in args.jobs),
             "same numbers in every mode: " + ", ".join(f"{job} {'yes' if len(v) == 1 else 'NO: ' + str(v)}"
                                                      for job, v in losses.items())]
    table = markdown_table(["job", "cache", "wall s", "s to first chunk", "XLA programs", "XLA s", "cache hits",
                            "cache misses", "trace+lower s", "run compile_seconds"], rows)
    save_report("compile", "Compile time: cold, warm cache, cache off", notes, table, args.out)


if __name__ == "__main__":
    main()
