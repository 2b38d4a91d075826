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
