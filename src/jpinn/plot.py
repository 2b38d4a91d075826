"""Figures: a run's prediction / exact / absolute error fields and loss curves; the study's
comparison figures (curves of several runs, L2RE against loss, fields of several runs)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np


def _pyplot():
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and "MPLBACKEND" not in os.environ:
        matplotlib.use("Agg")  # files only; a notebook that imported pyplot keeps its backend
    import matplotlib.pyplot as plt

    return plt


def plot_solution(model, pde, path: str | os.PathLike, *, n_x: int = 257, n_t: int = 101) -> float:
    """Save prediction, exact solution and |error| on the n_x x n_t grid; return the L2RE."""
    import jax.numpy as jnp

    from .data import grid_axes

    plt = _pyplot()
    x, t = grid_axes(pde, n_x, n_t)
    xx, tt = np.meshgrid(x, t, indexing="ij")
    points = jnp.asarray(np.stack([xx.ravel(), tt.ravel()], 1), dtype=model.layers[0].weight.dtype)
    pred = np.asarray(model.predict(points)).reshape(xx.shape)
    exact = np.asarray(pde.exact(points[:, 0], points[:, 1])).reshape(xx.shape)
    error = np.abs(pred - exact)
    l2re = float(np.linalg.norm(pred - exact) / np.linalg.norm(exact))
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), constrained_layout=True)
    vmin, vmax = float(exact.min()), float(exact.max())
    for ax, field, title, kw in (
        (axes[0], pred, "prediction", {"vmin": vmin, "vmax": vmax, "cmap": "RdBu_r"}),
        (axes[1], exact, "exact", {"vmin": vmin, "vmax": vmax, "cmap": "RdBu_r"}),
        (axes[2], error, f"|error|  (L2RE {l2re:.2e})", {"cmap": "viridis"}),
    ):
        mesh = ax.pcolormesh(tt, xx, field, shading="auto", **kw)
        ax.set_xlabel("t")
        ax.set_ylabel("x")
        ax.set_title(title)
        fig.colorbar(mesh, ax=ax)
    fig.suptitle(f"{pde.name} {pde.coefficients()}")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return l2re


def plot_history(records: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
    """Loss, its components and the gradient norm against iterations; phase switches dashed."""
    plt = _pyplot()
    it = np.array([r["iteration"] for r in records])
    fig, (ax_loss, ax_grad) = plt.subplots(1, 2, figsize=(12, 4), constrained_layout=True)
    ax_loss.semilogy(it, [r["loss"] for r in records], label="loss", lw=2)
    for name in ("residual", "initial", "boundary"):
        ax_loss.semilogy(it, [r[name] for r in records], label=name, lw=1)
    ax_grad.semilogy(it, [r["grad_norm"] for r in records], color="k")
    for ax in (ax_loss, ax_grad):
        for s in _phase_switches(records):
            ax.axvline(s, ls="--", color="gray", lw=1)
        ax.set_xlabel("iteration")
    ax_loss.set_title("loss")
    ax_loss.legend()
    ax_grad.set_title("gradient norm")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _density_panel(ax, grid, values, label, **kw):
    ax.plot(grid, np.maximum(values, 1e-12), label=label, **kw)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_yscale("log")
    ax.set_ylim(bottom=max(1e-8, float(np.max(values)) * 1e-8) if np.max(values) > 0 else 1e-8)
    ax.set_xlabel("eigenvalue")


def _save(plt, fig, path):
    """Save and close ``fig``; with ``path`` None return it open (a notebook shows it)."""
    if path is None:
        return fig
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_spectrum_figures(arrays: dict[str, np.ndarray], summary: dict[str, Any], out) -> list:
    """The study's figures from ``scripts/spectrum.py``'s arrays: spectral densities per
    component (symlog eigenvalue axis), before / after L-BFGS preconditioning, the loss along
    the last L-BFGS direction, the condition number against n_res. Returns the paths."""
    from pathlib import Path

    plt = _pyplot()
    out = Path(out)
    paths = []
    components = [c for c in ("total", "residual", "initial", "boundary") if f"density/{c}/grid" in arrays
                  or f"preconditioned/{c}/grid" in arrays]
    if components:
        have_pre = any(f"preconditioned/{c}/grid" in arrays for c in components)
        fig, axes = plt.subplots(1, len(components), figsize=(4.2 * len(components), 3.6),
                                 constrained_layout=True, squeeze=False)
        for ax, c in zip(axes[0], components):
            if f"density/{c}/grid" in arrays:
                _density_panel(ax, arrays[f"density/{c}/grid"], arrays[f"density/{c}/values"], "H", color="C0")
            if f"preconditioned/{c}/grid" in arrays:
                _density_panel(ax, arrays[f"preconditioned/{c}/grid"], arrays[f"preconditioned/{c}/values"],
                               "L-BFGS preconditioned", color="C3")
            ax.set_title(c)
            ax.set_ylabel("density")
            if have_pre:
                ax.legend(fontsize=8)
        title = f"Hessian spectral density ({summary.get('pde', '')}, at {summary.get('at', '')})"
        fig.suptitle(title)
        paths.append(_save(plt, fig, out / "density.png"))
    if "direction/steps" in arrays:
        steps, loss = arrays["direction/steps"], arrays["direction/loss"]
        info = summary["direction"]
        fig, ax = plt.subplots(figsize=(6.5, 4), constrained_layout=True)
        ax.loglog(steps, loss, color="k", lw=1, label="loss along the direction")
        ax.axhline(info["loss0"], color="gray", ls="--", lw=1, label="loss at t = 0")
        armijo, wolfe = arrays["direction/armijo"].astype(bool), arrays["direction/wolfe"].astype(bool)
        ax.scatter(steps[armijo & ~wolfe], loss[armijo & ~wolfe], s=12, color="C0", label="Armijo only")
        ax.scatter(steps[wolfe], loss[wolfe], s=18, color="C3", marker="s", label="strong Wolfe")
        ax.set_xlabel("step size t")
        ax.set_ylabel("loss(w + t d)")
        ax.set_title("loss along the last L-BFGS direction")
        ax.legend(fontsize=8)
        paths.append(_save(plt, fig, out / "direction.png"))
    if "condition/n_residual" in arrays:
        n, ratio = arrays["condition/n_residual"], arrays["condition/ratio"]
        sweep = summary["condition_sweep"]
        fig, ax = plt.subplots(figsize=(5.5, 4), constrained_layout=True)
        ordering = sweep.get("ordering", "magnitude")
        positive = ratio > 0  # algebraic ordering: a negative ratio has no place on a log axis
        ax.loglog(n[positive], ratio[positive], "o-", label=f"fitted exponent {sweep['exponent']:.2f}")
        ax.set_xticks(n[positive], [str(int(v)) for v in n[positive]])  # the sweep's own n, no crowded minor labels
        ax.minorticks_off()
        ax.set_xlabel("number of residual points")
        ax.set_ylabel(f"|lambda_1 / lambda_{sweep['index']}| (by magnitude)" if ordering == "magnitude"
                      else f"lambda_1 / lambda_{sweep['index']} (algebraic)")
        protocol = sweep.get("protocol")
        ax.set_title("Hessian condition number (convection beta = 1, width 32)"
                     + (f"\n{protocol} protocol, {sweep.get('dtype')}" if protocol else ""), fontsize=10)
        ax.legend()
        paths.append(_save(plt, fig, out / "condition.png"))
    return paths


def _phase_switches(records: Sequence[dict[str, Any]]) -> list[int]:
    return [a["iteration"] for a, r in zip(records, records[1:]) if r["phase_index"] != a["phase_index"]]


def plot_curves(curves: Sequence[tuple[str, Sequence[dict[str, Any]]]], path: str | os.PathLike | None = None,
                title: str = "", *, last_phase: bool = False):
    """Loss and gradient norm against iterations, one line per run (``(label, records)``,
    records as in metrics.jsonl); each run's phase switches are dotted in its colour.
    ``last_phase``: only each run's last phase, against its own iterations, from the point
    where the phase before it ended (Table 2's view of NNCG and GD). Returns the path, or
    the open figure when ``path`` is None."""
    plt = _pyplot()
    fig, (ax_loss, ax_grad) = plt.subplots(1, 2, figsize=(12, 4.2), constrained_layout=True)
    for k, (label, records) in enumerate(curves):
        color = f"C{k % 10}"
        if last_phase:
            last = records[-1]["phase_index"]
            start = [r for r in records if r["phase_index"] < last][-1:]
            records = [dict(r, iteration=0) for r in start] + [
                dict(r, iteration=r["phase_iteration"]) for r in records if r["phase_index"] == last]
        it = np.array([r["iteration"] for r in records])
        ax_loss.semilogy(it, [r["loss"] for r in records], color=color, lw=1.5, label=label)
        ax_grad.semilogy(it, [r["grad_norm"] for r in records], color=color, lw=1.2)
        for s in [] if last_phase else _phase_switches(records):
            for ax in (ax_loss, ax_grad):
                ax.axvline(s, ls=":", color=color, lw=1)
    for ax, name in ((ax_loss, "loss"), (ax_grad, "gradient norm")):
        ax.set_xlabel("iteration of the last phase" if last_phase else "iteration")
        ax.set_title(name)
    ax_loss.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(plt, fig, path)


def plot_error_vs_loss(points: Sequence[tuple[str, str, float, float]], path: str | os.PathLike | None = None):
    """Test L2RE against final loss, one panel per problem, one colour per method:
    ``points`` = (problem, method label, loss, l2re) per run; non-finite points are left out."""
    plt = _pyplot()
    problems = sorted({p for p, *_ in points})
    methods = sorted({m for _, m, *_ in points}, key=lambda m: (m.count("+"), m))
    fig, axes = plt.subplots(1, max(1, len(problems)), figsize=(4.6 * max(1, len(problems)), 4),
                             constrained_layout=True, squeeze=False)
    for ax, problem in zip(axes[0], problems):
        for k, method in enumerate(methods):
            xy = np.array([(loss, err) for p, m, loss, err in points if p == problem and m == method
                           and np.isfinite(loss) and np.isfinite(err) and loss > 0], dtype=float).reshape(-1, 2)
            if len(xy):
                ax.scatter(xy[:, 0], xy[:, 1], s=18, color=f"C{k % 10}", label=method, alpha=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("final loss")
        ax.set_ylabel("test L2RE")
        ax.set_title(problem)
        ax.legend(fontsize=7)
    return _save(plt, fig, path)


def plot_fields(models: Sequence[tuple[str, Any]], pde, path: str | os.PathLike | None = None, *,
                n_x: int = 257, n_t: int = 101):
    """Exact solution, then each model's prediction (top row) and |error| (bottom row) on
    the n_x x n_t grid: ``models`` = (label, model) pairs solving the same ``pde``."""
    import jax.numpy as jnp

    from .data import grid_axes

    plt = _pyplot()
    x, t = grid_axes(pde, n_x, n_t)
    xx, tt = np.meshgrid(x, t, indexing="ij")
    grid = np.stack([xx.ravel(), tt.ravel()], 1)
    exact = np.asarray(pde.exact(jnp.asarray(grid[:, 0]), jnp.asarray(grid[:, 1]))).reshape(xx.shape)
    n = len(models) + 1
    fig, axes = plt.subplots(2, n, figsize=(3.6 * n, 6.4), constrained_layout=True, squeeze=False)
    vmin, vmax = float(exact.min()), float(exact.max())
    mesh = axes[0, 0].pcolormesh(tt, xx, exact, shading="auto", cmap="RdBu_r", vmin=vmin, vmax=vmax)
    axes[0, 0].set_title("exact")
    fig.colorbar(mesh, ax=axes[0, 0])
    axes[1, 0].axis("off")
    for k, (label, model) in enumerate(models, start=1):
        points = jnp.asarray(grid, dtype=model.layers[0].weight.dtype)
        pred = np.asarray(model.predict(points)).reshape(xx.shape)
        error = np.abs(pred - exact)
        l2re = float(np.linalg.norm(pred - exact) / np.linalg.norm(exact))
        mesh = axes[0, k].pcolormesh(tt, xx, pred, shading="auto", cmap="RdBu_r", vmin=vmin, vmax=vmax)
        axes[0, k].set_title(label, fontsize=9)
        fig.colorbar(mesh, ax=axes[0, k])
        mesh = axes[1, k].pcolormesh(tt, xx, error, shading="auto", cmap="viridis")
        axes[1, k].set_title(f"|error| (L2RE {l2re:.2e})", fontsize=9)
        fig.colorbar(mesh, ax=axes[1, k])
    for ax in axes.ravel():
        ax.set_xlabel("t")
        ax.set_ylabel("x")
    fig.suptitle(f"{pde.name} {pde.coefficients()}")
    return _save(plt, fig, path)


def plot_density(densities: dict[str, Any], path: str | os.PathLike | None = None, title: str = ""):
    """Spectral densities (``jpinn.analysis.SpectralDensity``, by label) on one symlog axis,
    the study's style. Returns the path, or the open figure when ``path`` is None."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4), constrained_layout=True)
    for k, (label, density) in enumerate(densities.items()):
        grid, values = density.density()
        _density_panel(ax, grid, values, f"{label} (lambda_max {density.lambda_max:.3g})", color=f"C{k % 10}")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return _save(plt, fig, path)
