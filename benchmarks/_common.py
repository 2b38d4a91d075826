"""Shared helpers of the benchmarks: machine description and matmul calibration."""

from __future__ import annotations

import datetime
import importlib.metadata as metadata
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = "?"
    try:
        with open("/proc/meminfo") as handle:
            kib = int(handle.readline().split()[1])
            memory = f"{kib / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    device = jax.devices()[0]
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "device": f"{device.platform} ({getattr(device, 'device_kind', '?')})",
        "jax": metadata.version("jax"),
        "jaxlib": metadata.version("jaxlib"),
    }


def timed(fn, *args, repeats: int = 5) -> tuple[float, float, float]:
    """Median, min and max seconds of ``fn(*args)`` (already compiled) over ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times)


def matmul_gflops(n: int = 2048, m: int | None = None, k: int | None = None, dtype=jnp.float32) -> float:
    """GFLOP/s of an (n x k) @ (k x m) product in XLA: the machine's reference rate."""
    m = m or n
    k = k or n
    a = jnp.ones((n, k), dtype)
    b = jnp.ones((k, m), dtype)
    product = jax.jit(lambda a, b: a @ b)
    jax.block_until_ready(product(a, b))
    median, _, _ = timed(product, a, b, repeats=7)
    return 2.0 * n * m * k / median / 1e9


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def report_path(name: str, out: str | None = None) -> Path:
    """Where save_report writes: ``out``, or benchmarks/results/<name>-<machine>.md."""
    return Path(out) if out else Path(__file__).resolve().parent / "results" / f"{name}-{platform.node() or 'machine'}.md"


def save_report(name: str, title: str, notes: list[str], table: str, out: str | None = None) -> Path:
    """Print and save a result file: title, the exact command, the machine, notes, the table.

    Saved to ``out`` or to benchmarks/results/<name>-<machine>.md.
    """
    command = " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    lines = [f"# {title}", "", f"`{command}`", ""]
    lines += [f"- {k}: {v}" for k, v in machine().items()]
    lines += [f"- {note}" for note in notes]
    text = "\n".join(lines) + "\n\n" + table + "\n"
    print(text)
    path = report_path(name, out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"saved {path}")
    return path
