"""Figures: a run's prediction / reference / absolute error fields and loss curves; the
study's comparison figures (curves of several runs, L2RE against loss, fields of several runs).

Fields are drawn for any problem (``jpinn.problems.AbstractProblem``): on the plane of a
2-coordinate box (a 1-D space x time box with time on the horizontal axis, the study's
look), as lines for one coordinate, and for more coordinates on the slice through the box
centre along the first two (the others at their midpoints)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

# the study's three loss components: plot_history's default when a run names none
STUDY_COMPONENTS = ("residual", "initial", "boundary")
# |value| below this fraction of a field's largest counts as 0 when choosing its colour map
SIGN_TOLERANCE = 1e-4
# record keys that are not loss components (jpinn.train's records)
_RECORD_KEYS = frozenset({"phase", "phase_index", "iteration", "phase_iteration", "step", "evaluations",
                          "loss",
                          "grad_norm", "status", "info", "time", "member"})


def _pyplot():
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and "MPLBACKEND" not in os.environ:
        matplotlib.use("Agg")  # files only; a notebook that imported pyplot keeps its backend
    import matplotlib.pyplot as plt

    return plt


def _dtype(model):
    """The dtype of a model's parameters (its first inexact array; float32 without any)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    leaves = jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))
    return leaves[0].dtype if leaves else jnp.float32


def _format_value(value) -> str:
    if isinstance(value, (bool, str, int)):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    array = np.asarray(value)
    if array.size == 1 and np.issubdtype(array.dtype, np.number):
        return f"{array.item():g}"
    return np.array2string(array, precision=3, separator=",", threshold=6)


def problem_title(problem) -> str:
    """``"name (k=v, ...)"``: the problem's name and coefficients (just the name without any)."""
    coefficients = problem.coefficients()
    if not coefficients:
        return str(problem.name)
    return f"{problem.name} ({', '.join(f'{k}={_format_value(v)}' for k, v in coefficients.items())})"


@dataclasses.dataclass(frozen=True)
class PlotGrid:
    """The points a field figure is drawn on: ``points`` ``(N, d)`` float64 in the problem's
    coordinate order, the ``ij`` mesh of the plotted axes flattened (``shape``: 1 or 2
    axes); ``horizontal`` / ``vertical``: the plotted coordinates' names and their mesh
    arrays (``vertical`` None for one coordinate); ``fixed``: "x3..x5 = 0.5" for a slice."""

    points: np.ndarray
    shape: tuple[int, ...]
    horizontal: tuple[str, np.ndarray]
    vertical: tuple[str, np.ndarray] | None
    fixed: str


def _fixed_label(names: Sequence[str], values: Sequence[float]) -> str:
    if not names:
        return ""
    text = [f"{v:g}" for v in values]
    if len(set(text)) == 1 and len(names) > 1:
        joined = f"{names[0]}..{names[-1]}" if len(names) > 2 else f"{names[0]}, {names[1]}"
        return f"{joined} = {text[0]}"
    return ", ".join(f"{n} = {v}" for n, v in zip(names, text))


def plot_grid(problem, *, n_x: int = 257, n_t: int = 101, n: int = 201) -> PlotGrid:
    """The grid ``plot_solution`` draws ``problem`` on: for a 1-D space x time box the
    space axis has ``n_x`` points and time ``n_t`` (time horizontal); any other box ``n``
    per plotted axis, one coordinate a line, more than two the slice through the box centre
    along the first two coordinates. Endpoints included."""
    box = problem.domain()
    names, lower, upper = tuple(box.coordinates), np.asarray(box.lower, float), np.asarray(box.upper, float)
    d = len(names)
    if d == 1:
        axis = np.linspace(lower[0], upper[0], n)
        return PlotGrid(axis[:, None], (n,), (names[0], axis), None, "")
    if d == 2 and box.time is not None:
        sizes = [n_t if c == box.time else n_x for c in names]
    else:
        sizes = [n, n]
    axes = [np.linspace(lower[i], upper[i], sizes[i]) for i in range(2)]
    mesh = np.meshgrid(*axes, indexing="ij")
    middle = (lower[2:] + upper[2:]) / 2
    points = np.empty((mesh[0].size, d))
    points[:, 0], points[:, 1] = mesh[0].ravel(), mesh[1].ravel()
    points[:, 2:] = middle
    h, v = (1, 0) if box.time is not None and names[1] == box.time else (0, 1)
    return PlotGrid(points, tuple(sizes), (names[h], mesh[h]), (names[v], mesh[v]),
                    _fixed_label(names[2:], middle))


def _evaluate(model, problem, grid: PlotGrid):
    """Prediction and reference (None without a closed form) at ``grid``, float64 NumPy ``(N, k)``."""
    import jax.numpy as jnp

    from .problems import exact_fields

    points = jnp.asarray(grid.points, dtype=_dtype(model))
    prediction = np.asarray(model.predict(points), dtype=np.float64).reshape(len(grid.points), -1)
    reference = exact_fields(problem, points) if problem.has_exact else None
    if reference is not None:
        reference = np.asarray(reference, dtype=np.float64).reshape(len(grid.points), -1)
    return prediction, reference


def _relative(error: np.ndarray, reference: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.linalg.norm(error) / np.linalg.norm(reference))


def _field_colors(values: np.ndarray) -> dict[str, Any]:
    """pcolormesh keywords: a diverging map centred on 0 (symmetric range) when ``values``
    take both signs, a sequential one over their range otherwise. Values within
    ``SIGN_TOLERANCE`` of the largest magnitude count as 0 (sin(pi) is -9e-8 in float32)."""
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    tol = SIGN_TOLERANCE * max(abs(lo), abs(hi))
    if lo < -tol and hi > tol:
        m = max(-lo, hi)
        return {"cmap": "RdBu_r", "vmin": -m, "vmax": m}
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return {"cmap": "plasma", "vmin": lo, "vmax": hi}


def _titled(text: str, grid: PlotGrid) -> str:
    return f"{text} ({grid.fixed})" if grid.fixed else text


def _mesh(fig, ax, grid: PlotGrid, values: np.ndarray, title: str, label: str, *, colorbar=True, **kw):
    (h_name, h), (v_name, v) = grid.horizontal, grid.vertical
    mesh = ax.pcolormesh(h, v, values.reshape(grid.shape), shading="auto", **kw)
    ax.set_xlabel(h_name)
    ax.set_ylabel(v_name)
    ax.set_title(_titled(title, grid), fontsize=10)
    if colorbar:
        fig.colorbar(mesh, ax=ax, label=label)
    return mesh


def plot_solution(model, pde, path: str | os.PathLike, *, n_x: int = 257, n_t: int = 101,
                  n: int = 201) -> float:
    """Save, one row per field, the prediction, the reference (closed form) and |error| on
    ``plot_grid(pde, n_x=, n_t=, n=)``: prediction and reference share the reference's colour
    range, |error| has its own. A problem without a closed form gets the prediction only.
    Returns the L2RE over all fields on that grid (nan without a reference)."""
    plt = _pyplot()
    grid = plot_grid(pde, n_x=n_x, n_t=n_t, n=n)
    prediction, reference = _evaluate(model, pde, grid)
    fields = tuple(pde.fields)
    has_reference = reference is not None
    columns = 3 if has_reference else 1
    fig, axes = plt.subplots(len(fields), columns, figsize=(14 if has_reference else 5.6, 3.8 * len(fields)),
                             constrained_layout=True, squeeze=False)
    for k, name in enumerate(fields):
        pred = prediction[:, k]
        row = axes[k]
        if grid.vertical is None:  # one coordinate: lines
            h_name, h = grid.horizontal
            row[0].plot(h, pred, color="C0", label="prediction")
            if has_reference:
                row[0].plot(h, reference[:, k], color="k", ls="--", lw=1, label="reference")
                row[0].legend(fontsize=8)
                row[1].plot(h, reference[:, k], color="k")
                row[1].set_title(f"{name}: reference", fontsize=10)
                error = np.abs(pred - reference[:, k])
                row[2].plot(h, error, color="C3")
                row[2].set_title(f"{name}: |error|  (L2RE {_relative(error, reference[:, k]):.2e})",
                                 fontsize=10)
                row[2].set_ylabel("|error|")
                row[1].set_ylabel(name)
            row[0].set_title(f"{name}: prediction", fontsize=10)
            row[0].set_ylabel(name)
            for ax in row:
                ax.set_xlabel(h_name)
            continue
        colors = _field_colors(reference[:, k] if has_reference else pred)
        _mesh(fig, row[0], grid, pred, f"{name}: prediction", name, **colors)
        if has_reference:
            _mesh(fig, row[1], grid, reference[:, k], f"{name}: reference", name, **colors)
            error = np.abs(pred - reference[:, k])
            _mesh(fig, row[2], grid, error,
                  f"{name}: |error|  (L2RE {_relative(error, reference[:, k]):.2e})",
                  "|error|", cmap="viridis")
    l2re = _relative(prediction - reference, reference) if has_reference else float("nan")
    title = problem_title(pde)
    if has_reference and len(fields) > 1:
        title += f"  (L2RE over all fields {l2re:.2e})"
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return l2re


def history_components(records: Sequence[dict[str, Any]]) -> list[str]:
    """The loss components of ``records`` when a run names none: the study's three that the
    first record has, else every numeric key of it that is not bookkeeping."""
    if not records:
        return []
    first = records[0]
    study = [c for c in STUDY_COMPONENTS if c in first]
    if study:
        return study
    return [k for k, v in first.items() if k not in _RECORD_KEYS and isinstance(v, (int, float))
            and not isinstance(v, bool)]


def plot_history(records: Sequence[dict[str, Any]], path: str | os.PathLike,
                 components: Sequence[str] | None = None) -> None:
    """Loss, its components (``components``, by name; default ``history_components``) and the
    gradient norm against iterations; phase switches dashed. A component absent from a
    record is a gap in its line."""
    plt = _pyplot()
    components = history_components(records) if components is None else list(components)
    it = np.array([r["iteration"] for r in records])
    fig, (ax_loss, ax_grad) = plt.subplots(1, 2, figsize=(12, 4), constrained_layout=True)
    ax_loss.semilogy(it, [r["loss"] for r in records], label="loss", lw=2)
    for name in components:
        ax_loss.semilogy(it, [float(r.get(name, np.nan)) for r in records], label=name, lw=1)
    ax_grad.semilogy(it, [r["grad_norm"] for r in records], color="k")
    for ax in (ax_loss, ax_grad):
        for s in _phase_switches(records):
            ax.axvline(s, ls="--", color="gray", lw=1)
        ax.set_xlabel("iteration")
    ax_loss.set_title("loss")
    ax_loss.legend(fontsize=8 if len(components) > 4 else 10)
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
                n_x: int = 257, n_t: int = 101, n: int = 201):
    """The reference (closed form), then each model's prediction (top row) and |error|
    (bottom row) of the problem's first field on ``plot_grid(pde, n_x=, n_t=, n=)``:
    ``models`` = (label, model) pairs solving the same ``pde``. Predictions share the
    reference's colour range and the errors one common scale across the runs; without a
    closed form, the predictions only. Returns the path, or the open figure when ``path``
    is None."""
    from matplotlib.colors import Normalize

    plt = _pyplot()
    grid = plot_grid(pde, n_x=n_x, n_t=n_t, n=n)
    field = pde.fields[0]
    runs = []
    reference = None
    for label, model in models:
        prediction, exact = _evaluate(model, pde, grid)
        reference = exact[:, 0] if exact is not None else None
        runs.append((label, prediction[:, 0]))
    has_reference = reference is not None
    errors = [np.abs(pred - reference) for _, pred in runs] if has_reference else []
    n_cols = len(runs) + (1 if has_reference else 0)
    n_rows = 2 if has_reference else 1
    fig, axes = plt.subplots(n_rows, max(1, n_cols), figsize=(3.6 * max(1, n_cols) + 0.8, 3.2 * n_rows),
                             constrained_layout=True, squeeze=False)
    first = 1 if has_reference else 0
    peak = max([float(np.nanmax(e)) for e in errors if e.size] + [0.0])
    error_norm = Normalize(vmin=0.0, vmax=peak if peak > 0 else 1.0)
    if grid.vertical is None:  # one coordinate: lines
        h_name, h = grid.horizontal
        if has_reference:
            axes[0, 0].plot(h, reference, color="k")
            axes[0, 0].set_title(f"{field}: reference", fontsize=9)
            axes[1, 0].axis("off")
        for k, (label, pred) in enumerate(runs, start=first):
            axes[0, k].plot(h, pred, color="C0", label="prediction")
            if has_reference:
                axes[0, k].plot(h, reference, color="k", ls="--", lw=1, label="reference")
                axes[1, k].plot(h, errors[k - first], color="C3")
                axes[1, k].set_ylim(0, error_norm.vmax * 1.05)
                axes[1, k].set_title(f"|error| (L2RE {_relative(errors[k - first], reference):.2e})",
                                     fontsize=9)
                axes[1, k].set_xlabel(h_name)
                axes[1, k].set_ylabel("|error|")
            axes[0, k].set_title(label, fontsize=9)
        for ax in axes[0]:
            ax.set_xlabel(h_name)
            ax.set_ylabel(field)
    else:
        colors = _field_colors(reference if has_reference else np.concatenate([p for _, p in runs]))
        mesh = None
        if has_reference:
            mesh = _mesh(fig, axes[0, 0], grid, reference, f"{field}: reference", field, colorbar=False,
                         **colors)
            axes[1, 0].axis("off")
        error_mesh = None
        for k, (label, pred) in enumerate(runs, start=first):
            mesh = _mesh(fig, axes[0, k], grid, pred, label, field, colorbar=False, **colors)
            if has_reference:
                error_mesh = _mesh(fig, axes[1, k], grid, errors[k - first],
                                   f"|error| (L2RE {_relative(errors[k - first], reference):.2e})", "|error|",
                                   colorbar=False, cmap="viridis", norm=error_norm)
        if mesh is not None:
            fig.colorbar(mesh, ax=list(axes[0]), label=field)
        if error_mesh is not None:
            fig.colorbar(error_mesh, ax=list(axes[1, first:]), label="|error|")
    fig.suptitle(problem_title(pde) + (f": {field}" if len(pde.fields) > 1 else ""))
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
