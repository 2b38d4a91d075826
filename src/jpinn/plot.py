"""Figures of a run: prediction / exact / absolute error fields, loss curves."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
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
    switches = [a["iteration"] for a, r in zip(records, records[1:]) if r["phase_index"] != a["phase_index"]]
    for ax in (ax_loss, ax_grad):
        for s in switches:
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
        ax.loglog(n, np.abs(ratio), "o-", label=f"fitted exponent {sweep['exponent']:.2f}")
        ax.set_xlabel("number of residual points")
        ax.set_ylabel(f"lambda_1 / lambda_{sweep['index']}")
        ax.set_title("Hessian condition number (convection beta = 1, width 32)")
        ax.legend()
        paths.append(_save(plt, fig, out / "condition.png"))
    return paths
