"""Figures: a run's prediction / exact solution / absolute error fields and loss curves; the
study's comparison figures (curves of several runs, L2RE against loss, fields of several runs).

Fields are drawn for any problem (``jpinn.problems.AbstractProblem``): on the plane of a
2-coordinate box (a 1-D space x time box with time on the horizontal axis, the study's
look), as lines for one coordinate, and for more coordinates on the slice through the box
centre along the first two (the others at their midpoints).

Conventions every figure follows (issue 21, item 6):

- titles are words: a problem is ``problem_title`` / ``title_words`` ("Convection, β = 40"),
  never a dict repr; optimizer phases by their names ("Adam", "L-BFGS", "NNCG");
- colour: a signed field (values of both signs) gets the diverging ``SIGNED_CMAP`` with limits
  symmetric about 0, so its white is 0; a field of one sign the sequential ``FIELD_CMAP``;
  |error| (nonnegative) the sequential ``ERROR_CMAP`` from 0; compared runs share one
  colour scale for the solution and one for the error; every colour bar names its quantity
  ("u", "|u − u*|", u* the exact solution);
- axes are labelled with the problem's coordinate names (with units where the problem has a
  ``units`` mapping, coordinate -> unit), log axes carry decade ticks only (an axis spanning
  less than a decade is widened to whole decades, so no crowded minor labels);
- loss curves take ``x="phase"`` (the default: each optimizer phase gets an equal share of
  the horizontal axis, with its own iteration ticks, so a 40-iteration NNCG phase after
  11,000 Adam iterations is as wide as Adam), ``x="iteration"`` (the whole run's
  iteration count) or ``x="time"`` (wall-clock seconds since the run started, compilation
  included); phase switches are dotted lines labelled with the name of the phase they start.

Every figure function can return its open ``matplotlib.figure.Figure`` (``return_figure=True``;
the ones taking ``path=None`` return it when no path is given), for a notebook or a test."""

from __future__ import annotations

import ast
import dataclasses
import math
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from .report import OPTIMIZER_LABELS

# the study's three loss components: plot_history's default when a run names none
STUDY_COMPONENTS = ("residual", "initial", "boundary")
# |value| below this fraction of a field's largest counts as 0 when choosing its colour map
SIGN_TOLERANCE = 1e-4
# record keys that are not loss components (jpinn.train's records)
_RECORD_KEYS = frozenset({"phase", "phase_index", "iteration", "phase_iteration", "step", "evaluations",
                          "loss",
                          "grad_norm", "status", "info", "time", "member"})
# the horizontal axes of loss curves (plot_history, plot_curves); the first is the default
X_AXES = ("phase", "iteration", "time")
SIGNED_CMAP = "RdBu_r"   # diverging, white at the centre: only with limits symmetric about 0
FIELD_CMAP = "viridis"   # sequential: a field of one sign
ERROR_CMAP = "magma_r"   # sequential, light at 0: |error|
DPI = 150
BOX_ASPECT = 0.75  # height / width of plot_fields' panels
MINUS = "\u2212"

# words for the problems' registered names (others: underscores as spaces, first letter upper case)
PROBLEM_WORDS = {
    "convection": "Convection", "reaction": "Reaction", "wave": "Wave", "heat": "Heat", "poisson": "Poisson",
    "helmholtz": "Helmholtz", "kovasznay": "Kovasznay flow", "burgers": "Burgers",
    "burgers_inverse": "Burgers (inverse)", "allen_cahn": "Allen\u2013Cahn", "kdv": "Korteweg\u2013de Vries",
    "reaction_diffusion": "Reaction\u2013diffusion", "heat2d_source": "Heat with a source (2-D)",
}
# coefficient names as symbols
SYMBOLS = {
    "alpha": "\u03b1", "beta": "\u03b2", "gamma": "\u03b3", "delta": "\u03b4", "epsilon": "\u03b5",
    "eps": "\u03b5", "eta": "\u03b7", "kappa": "\u03ba", "lambda": "\u03bb", "lam": "\u03bb", "mu": "\u03bc",
    "nu": "\u03bd", "rho": "\u03c1", "sigma": "\u03c3", "tau": "\u03c4", "omega": "\u03c9", "theta": "\u03b8",
    "c2": "c\u00b2",
}
# optimizer phases by name: the tables' labels, with typeset dashes
PHASE_WORDS = {**OPTIMIZER_LABELS, "gauss_newton": "Gauss\u2013Newton"}
_COMPONENT_WORDS = {"total": "total loss", "residual": "residual loss", "initial": "initial-condition loss",
                    "boundary": "boundary-condition loss"}


def _pyplot():
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and "MPLBACKEND" not in os.environ:
        matplotlib.use("Agg")  # files only; a notebook that imported pyplot keeps its backend
    import matplotlib.pyplot as plt

    return plt


def _finish(plt, fig, path, return_figure: bool):
    """Save ``fig`` to ``path`` (unless None); return it open when asked for (or without a
    path), else close it and return ``path``."""
    if path is not None:
        fig.savefig(path, dpi=DPI)
    if return_figure or path is None:
        return fig
    plt.close(fig)
    return path


def _dtype(model):
    """The dtype of a model's parameters (its first inexact array; float32 without any)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    leaves = jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))
    return leaves[0].dtype if leaves else jnp.float32


# ---------------------------------------------------------------------------------------------
# words


def _number(value: float) -> str:
    return f"{value:.4g}".replace("-", MINUS)


def _format_value(value) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        try:
            return _number(float(value))
        except ValueError:
            return value.replace("_", " ")
    if isinstance(value, int):
        return str(value).replace("-", MINUS)
    if isinstance(value, float):
        return _number(value)
    array = np.asarray(value)
    if array.size == 1 and np.issubdtype(array.dtype, np.number):
        return _number(float(array.item()))
    return np.array2string(array, precision=3, separator=", ", threshold=6).replace("-", MINUS)


def _coefficient_name(name: str) -> str:
    if name in SYMBOLS:
        return SYMBOLS[name]
    return " ".join(SYMBOLS.get(part, part) for part in name.split("_") if part)


def coefficient_words(coefficients: dict[str, Any]) -> str:
    """``{"beta": 40.0, "c2": 4}`` -> ``"β = 40, c² = 4"``; ``dim`` reads ``"2-D"``."""
    items = []
    for key, value in coefficients.items():
        if key == "dim" and isinstance(value, (int, float, np.integer)) and float(value).is_integer():
            items.append(f"{int(value)}-D")
        else:
            items.append(f"{_coefficient_name(str(key))} = {_format_value(value)}")
    return ", ".join(items)


def problem_words(name: str, coefficients: dict[str, Any] | None = None) -> str:
    """A problem's name and coefficients in words: ``("convection", {"beta": 40.0})`` ->
    ``"Convection, β = 40"``."""
    label = PROBLEM_WORDS.get(name)
    if label is None:
        spaced = str(name).replace("_", " ").strip()
        label = spaced[:1].upper() + spaced[1:]
    words = coefficient_words(coefficients or {})
    return f"{label}, {words}" if words else label


def problem_title(problem) -> str:
    """``"Convection, β = 40"``: the problem's name and coefficients in words (the name alone
    without coefficients)."""
    return problem_words(problem.name, problem.coefficients())


def phase_words(label: str) -> str:
    """An optimizer phase's label in words: ``"lbfgs"`` -> ``"L-BFGS"`` (others unchanged)."""
    return "+".join(PHASE_WORDS.get(part, part) for part in str(label).split("+"))


_DICT = re.compile(r"\{[^{}]*\}")
_LEAD = re.compile(
    r"^\s*(?P<name>[A-Za-z][A-Za-z0-9_]*)(?=$|[\s({:,])"
    r"(?:\s*\((?P<paren>[^()]*)\)|\s*(?P<dict>\{[^{}]*\})"
    r"|(?P<eq>(?:,?\s+[A-Za-z_][A-Za-z0-9_]*\s*=\s*[^\s,:()]+)+))?")
_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=\s*|\s+)(\S(?:.*\S)?)")


def _literal_dict(text: str) -> dict | None:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _pairs(text: str) -> dict | None:
    """``"beta 40, c2 4"`` / ``"beta=40"`` -> a dict of strings (None unless every item is one)."""
    items = [s.strip() for s in text.split(",") if s.strip()]
    out = {}
    for item in items:
        match = _PAIR.fullmatch(item)
        if match is None:
            return None
        out[match[1]] = match[2]
    return out or None


def _known_problem(name: str) -> bool:
    from .problems import PROBLEMS

    return name in PROBLEM_WORDS or name in PROBLEMS


def _dict_words(text: str) -> str:
    """Every dict repr in ``text`` as ``k = v`` words."""
    def words(match):
        value = _literal_dict(match.group())
        return coefficient_words(value) if value is not None else match.group()

    return _DICT.sub(words, str(text))


def title_words(text: str) -> str:
    """A title in words: a leading problem label (``convection {'beta': 40.0}``,
    ``convection (beta 40)``, ``convection (beta=40)``, ``convection beta=40``) becomes
    ``Convection, β = 40``, and any other dict repr ``k = v`` words; the rest is kept."""
    text = str(text)
    match = _LEAD.match(text)
    if match is not None:
        name = match["name"]
        coefficients = None
        if match["dict"] is not None:
            coefficients = _literal_dict(match["dict"])
        elif match["paren"] is not None:
            coefficients = _pairs(match["paren"])
        elif match["eq"] is not None:
            coefficients = _pairs(match["eq"].strip().lstrip(",").replace(" ", ""))
        if _known_problem(name) or (match["dict"] is not None and coefficients is not None):
            if coefficients is None and match.end() > match.end("name"):  # what follows is no coefficient list
                text = problem_words(name) + text[match.end("name"):]
            else:
                text = problem_words(name, coefficients) + text[match.end():]
    return _dict_words(text)


# ---------------------------------------------------------------------------------------------
# grids and fields


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


def _coordinate_labels(problem) -> dict[str, str]:
    """Axis labels by coordinate: its name, with its unit where ``problem.units`` (a mapping
    coordinate -> unit, optional) gives one."""
    names = tuple(problem.domain().coordinates)
    units = getattr(problem, "units", None)
    if callable(units):
        units = units()
    units = units if isinstance(units, dict) else {}
    return {c: f"{c} ({units[c]})" if units.get(c) else c for c in names}


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
    """Colour map and limits: the diverging ``SIGNED_CMAP`` with limits symmetric about 0
    (white = 0) when ``values`` take both signs, the sequential ``FIELD_CMAP`` over their
    range otherwise. Values within ``SIGN_TOLERANCE`` of the largest magnitude count as 0
    (sin(pi) is -9e-8 in float32)."""
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    tol = SIGN_TOLERANCE * max(abs(lo), abs(hi))
    if lo < -tol and hi > tol:
        m = max(-lo, hi)
        return {"cmap": SIGNED_CMAP, "vmin": -m, "vmax": m}
    if abs(lo) <= tol:
        lo = 0.0 if hi > 0 else lo
    if abs(hi) <= tol and lo < 0:
        hi = 0.0
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return {"cmap": FIELD_CMAP, "vmin": lo, "vmax": hi}


def _field_norm(values: np.ndarray):
    """``(cmap, Normalize)`` by ``_field_colors``."""
    from matplotlib.colors import Normalize

    colors = _field_colors(values)
    return colors["cmap"], Normalize(vmin=colors["vmin"], vmax=colors["vmax"])


def _error_norm(errors: Sequence[np.ndarray], scale: str = "linear"):
    """One norm for every |error| array: linear from 0 to the largest, or (``"log"``) from
    the largest over 1e4 (or the smallest positive, if larger) to the largest."""
    from matplotlib.colors import LogNorm, Normalize

    finite = [e[np.isfinite(e)] for e in errors]
    peak = max([float(e.max()) for e in finite if e.size] + [0.0])
    if scale == "linear":
        return Normalize(vmin=0.0, vmax=peak if peak > 0 else 1.0)
    if scale != "log":
        raise ValueError(f"error_scale: 'linear' or 'log', got {scale!r}")
    positive = [float(e[e > 0].min()) for e in finite if np.any(e > 0)]
    peak = peak if peak > 0 else 1.0
    low = max(min(positive) if positive else peak * 1e-4, peak * 1e-4)
    return LogNorm(vmin=min(low, peak / 10), vmax=peak)


def _extend(values: np.ndarray, norm) -> str:
    """A colour bar's ``extend``: which ends ``values`` pass beyond ``norm``'s limits."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return "neither"
    span = float(norm.vmax - norm.vmin)
    below = float(finite.min()) < norm.vmin - 1e-3 * span
    above = float(finite.max()) > norm.vmax + 1e-3 * span
    return {(False, False): "neither", (True, False): "min", (False, True): "max", (True, True): "both"}[(below, above)]


def _mesh(ax, grid: PlotGrid, values: np.ndarray, title: str, labels: dict[str, str], **kw):
    (h_name, h), (v_name, v) = grid.horizontal, grid.vertical
    mesh = ax.pcolormesh(h, v, values.reshape(grid.shape), shading="auto", rasterized=True, **kw)
    ax.set_xlabel(labels.get(h_name, h_name))
    ax.set_ylabel(labels.get(v_name, v_name))
    ax.set_title(title, fontsize=10)
    return mesh


def _error_name(field: str) -> str:
    return f"|{field} {MINUS} {field}*|"


def _slice_words(grid: PlotGrid) -> str:
    return f" (slice {grid.fixed})" if grid.fixed else ""


def plot_solution(model, pde, path: str | os.PathLike | None, *, n_x: int = 257, n_t: int = 101,
                  n: int = 201, return_figure: bool = False):
    """Save, one row per field ``u``, the prediction ``u``, the exact solution ``u*`` (closed
    form) and ``|u − u*|`` on ``plot_grid(pde, n_x=, n_t=, n=)``. Prediction and exact share
    one colour scale and colour bar (the exact solution's: diverging about 0 for a signed
    field, sequential otherwise; the bar's arrows mark predictions beyond it); |error| has its
    own sequential scale from 0. One coordinate: prediction and exact as lines on one panel,
    |error| beside it. A problem without a closed form gets the prediction only.
    Returns the L2RE over all fields on that grid (nan without a reference), or with
    ``return_figure`` the open figure (saved first when ``path`` is given)."""
    from matplotlib.colors import Normalize

    plt = _pyplot()
    grid = plot_grid(pde, n_x=n_x, n_t=n_t, n=n)
    labels = _coordinate_labels(pde)
    prediction, reference = _evaluate(model, pde, grid)
    fields = tuple(pde.fields)
    has_reference = reference is not None
    lines = grid.vertical is None
    columns = (2 if lines else 3) if has_reference else 1
    fig, axes = plt.subplots(len(fields), columns, figsize=(4.6 * columns + 0.8, 3.6 * len(fields)),
                             constrained_layout=True, squeeze=False)
    for k, name in enumerate(fields):
        pred = prediction[:, k]
        row = axes[k]
        exact = reference[:, k] if has_reference else None
        error = np.abs(pred - exact) if has_reference else None
        error_title = (f"{_error_name(name)}  (L2RE {_relative(error, exact):.2e})" if has_reference else "")
        if lines:
            h_name, h = grid.horizontal
            row[0].plot(h, pred, color="C0", label=f"prediction {name}")
            if has_reference:
                row[0].plot(h, exact, color="k", ls="--", lw=1, label=f"exact {name}*")
                row[1].plot(h, error, color="C3")
                row[1].set_ylim(0, max(float(np.nanmax(error)), 1e-30) * 1.05)
                row[1].set_title(error_title, fontsize=10)
                row[1].set_ylabel(_error_name(name))
            row[0].legend(fontsize=8)
            row[0].set_title(f"prediction and exact {name}" if has_reference else f"prediction {name}", fontsize=10)
            row[0].set_ylabel(name)
            for ax in row:
                ax.set_xlabel(labels.get(h_name, h_name))
            continue
        cmap, norm = _field_norm(exact if has_reference else pred)
        mesh = _mesh(row[0], grid, pred, f"prediction {name}", labels, cmap=cmap, norm=norm)
        shown = pred
        if has_reference:
            _mesh(row[1], grid, exact, f"exact {name}*", labels, cmap=cmap, norm=norm)
            shown = np.concatenate([pred, exact])
        fig.colorbar(mesh, ax=list(row[:2]) if has_reference else row[0], label=name, extend=_extend(shown, norm))
        if has_reference:
            peak = float(np.nanmax(error)) if np.isfinite(error).any() else 0.0
            e = _mesh(row[2], grid, error, error_title, labels, cmap=ERROR_CMAP,
                      norm=Normalize(vmin=0.0, vmax=peak if peak > 0 else 1.0))
            fig.colorbar(e, ax=row[2], label=_error_name(name))
    l2re = _relative(prediction - reference, reference) if has_reference else float("nan")
    title = problem_title(pde) + _slice_words(grid)
    if has_reference and len(fields) > 1:
        title += f": L2RE over all fields {l2re:.2e}"
    fig.suptitle(title)
    figure = _finish(plt, fig, path, return_figure)
    return figure if return_figure else l2re


# ---------------------------------------------------------------------------------------------
# loss curves


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


def _with_phase_iterations(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records with ``phase_index`` / ``phase`` / ``phase_iteration`` filled in where an
    older metrics file lacks them (one phase; iterations counted from the phase's first)."""
    out, first = [], {}
    for r in records:
        index = r.get("phase_index", 0)
        first.setdefault(index, r.get("iteration", 0))
        if "phase_iteration" not in r or "phase_index" not in r or "phase" not in r:
            r = {"phase": "", **r, "phase_index": index,
                 "phase_iteration": r.get("phase_iteration", r.get("iteration", 0) - first[index])}
        out.append(r)
    return out


def _count(value: float) -> str:
    value = int(round(value))
    if abs(value) >= 10_000 and value % 1000 == 0:
        return f"{value // 1000}k"
    return str(value)


class _XAxis:
    """The horizontal axis of loss curves for ``runs`` (lists of records): ``"phase"``,
    ``"iteration"`` or ``"time"`` (see the module docstring)."""

    LABELS = {"phase": "iteration within each phase", "iteration": "iteration",
              "time": "wall-clock time since the start (s)"}

    def __init__(self, runs: Sequence[Sequence[dict[str, Any]]], mode: str):
        self.mode = _check_x(mode)
        indices = sorted({r["phase_index"] for records in runs for r in records})
        self.position = {p: j for j, p in enumerate(indices)}
        self.length = {p: max([1] + [r["phase_iteration"] for records in runs for r in records
                                      if r["phase_index"] == p]) for p in indices}
        self.names = {p: " / ".join(dict.fromkeys(phase_words(r["phase"]) for records in runs for r in records
                                                 if r["phase_index"] == p and r["phase"] != "")) for p in indices}

    def label(self) -> str:
        return self.LABELS[self.mode]

    def _x(self, r) -> float:
        if self.mode == "phase":
            p = r["phase_index"]
            return self.position[p] + min(r["phase_iteration"], self.length[p]) / self.length[p]
        if self.mode == "time":
            return float(r.get("time", np.nan))
        return float(r["iteration"])

    def series(self, records, keys: Sequence[str]):
        """x and, per key, y (float, nan where absent). On the phase axis each phase after
        the first starts at its segment's left edge from the previous record's values, and
        the line breaks (nan) where a run's phase ended short of its segment's end."""
        xs, ys = [], {k: [] for k in keys}

        def add(x, r):
            xs.append(x)
            for k in keys:
                value = r.get(k, np.nan)
                ys[k].append(float(value) if isinstance(value, (int, float)) and not isinstance(value, bool)
                             else np.nan)

        previous = None
        for r in records:
            if self.mode == "phase" and previous is not None and r["phase_index"] != previous["phase_index"]:
                start = float(self.position[r["phase_index"]])
                if xs and xs[-1] < start - 1e-9:
                    add(np.nan, {})
                if r["phase_iteration"] > 0:
                    add(start, previous)
            add(self._x(r), r)
            previous = r
        return np.asarray(xs, float), {k: np.asarray(v, float) for k, v in ys.items()}

    def switches(self, records) -> list[tuple[float, str]]:
        """Where ``records``' phases start after the first: (x, the new phase's name)."""
        out = []
        for a, r in zip(records, records[1:]):
            if r["phase_index"] == a["phase_index"]:
                continue
            if self.mode == "phase":
                x = float(self.position[r["phase_index"]])
            elif self.mode == "time":
                x = float(a.get("time", np.nan))
            else:
                x = float(r["iteration"] - r["phase_iteration"])
            out.append((x, phase_words(r["phase"])))
        return out

    def decorate(self, axes, runs: Sequence[Sequence[dict[str, Any]]], colors: Sequence[str]) -> None:
        """Phase switches (dotted lines, each labelled with the phase it starts), the first
        phase's name at the left, the x label, and on the phase axis each phase's own ticks."""
        from matplotlib.transforms import blended_transform_factory

        for ax in axes:
            ax.set_xlabel(self.label())
            blend = blended_transform_factory(ax.transData, ax.transAxes)
            if self.mode == "phase":
                n = len(self.position)
                if n == 0:  # no records
                    continue
                for p, j in self.position.items():
                    if j > 0:
                        ax.axvline(j, ls=":", color="0.35", lw=1.2)
                    ax.text(j + 0.015 * n, 0.97, self.names[p], transform=blend, ha="left", va="top", fontsize=8,
                            color="0.2")
                ax.set_xlim(0, n)
                ticks, labels = [], []
                nbins = max(3, min(5, 10 // n))
                from matplotlib.ticker import MaxNLocator

                for p, j in self.position.items():
                    length = self.length[p]
                    values = MaxNLocator(nbins=nbins, integer=True).tick_values(0, length)
                    last = j == n - 1
                    for v in values:
                        if 0 <= v <= length and (last or v <= 0.8 * length):
                            ticks.append(j + v / length)
                            labels.append(_count(v))
                ax.set_xticks(ticks, labels)
                ax.xaxis.set_minor_locator(_null_locator())
                continue
            labels = {}  # (x, name) -> the colours of the runs whose phase switches there
            firsts = {}  # the first phase's name -> its leftmost start
            for records, color in zip(runs, colors):
                if records:
                    x0, name0 = self._x(records[0]), phase_words(records[0]["phase"])
                    if name0:
                        firsts[name0] = min(firsts.get(name0, x0), x0)
                for x, name in self.switches(records):
                    ax.axvline(x, ls=":", color=color, lw=1.2)
                    labels.setdefault((round(x, 9), name), []).append(color)
            lo, hi = ax.get_xlim()
            span = (hi - lo) or 1.0
            items = [((x - lo) / span, len(name) * 0.0125, " " + name, {"ha": "left"}) for name, x in firsts.items()]
            for (x, name), line_colors in labels.items():
                color = line_colors[0] if len(set(line_colors)) == 1 and len(runs) > 1 else "0.2"
                items.append(((x - lo) / span - 0.022, 0.022, name + " ",
                              {"ha": "right", "rotation": 90, "color": color}))
            placed: list[tuple[int, float, float]] = []
            for start, width, text, kw in sorted(items, key=lambda item: item[0]):
                level = 0  # the highest free level: labels that would overlap are stacked downwards
                while any(lv == level and start < end and begin < start + width for lv, begin, end in placed):
                    level += 1
                placed.append((level, start, start + width))
                x = lo + (start + (width if kw.get("ha") == "right" else 0.0)) * span
                ax.text(x, 0.97 - 0.2 * level, text, transform=blend, va="top", fontsize=8,
                        **{"color": "0.2", **kw})


def _null_locator():
    from matplotlib.ticker import NullLocator

    return NullLocator()


def _decades(ax, which: str = "y") -> None:
    """A log axis with decade ticks only: one that would show fewer than two powers of ten
    is widened to the whole decades around it; minor ticks unlabelled."""
    from matplotlib.ticker import LogLocator, NullFormatter

    axis = ax.yaxis if which == "y" else ax.xaxis
    get, set_ = (ax.get_ylim, ax.set_ylim) if which == "y" else (ax.get_xlim, ax.set_xlim)
    lo, hi = get()
    if not (lo > 0 and hi > 0 and np.isfinite(lo) and np.isfinite(hi)):
        return
    a, b = math.log10(min(lo, hi)), math.log10(max(lo, hi))
    if math.floor(b + 1e-9) - math.ceil(a - 1e-9) + 1 < 2:  # fewer than two decades labelled
        low, high = math.floor(a + 1e-9), math.ceil(b - 1e-9)
        if high <= low:
            high = low + 1
        set_(10.0 ** low, 10.0 ** high)
    axis.set_major_locator(LogLocator(base=10.0, numticks=7))
    axis.set_minor_locator(LogLocator(base=10.0, subs=tuple(range(2, 10)), numticks=12))
    axis.set_minor_formatter(NullFormatter())


def _check_x(x: str) -> str:
    if x not in X_AXES:
        raise ValueError(f"x: one of {', '.join(X_AXES)}, got {x!r}")
    return x


def plot_history(records: Sequence[dict[str, Any]], path: str | os.PathLike | None,
                 components: Sequence[str] | None = None, *, x: str = "phase", return_figure: bool = False):
    """Loss, its components (``components``, by name; default ``history_components``) and the
    gradient norm. ``x``: ``"phase"`` (default; each phase an equal share of the axis with its
    own iteration ticks, so a short last phase is as visible as a long first one),
    ``"iteration"`` (the run's iteration count) or ``"time"`` (wall-clock seconds); phase
    switches are dotted lines labelled with the phase they start. A component absent from a
    record is a gap in its line. Returns None, or the open figure with ``return_figure``."""
    plt = _pyplot()
    records = _with_phase_iterations(records)
    components = history_components(records) if components is None else list(components)
    axis = _XAxis([records], x)
    fig, (ax_loss, ax_grad) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    xs, ys = axis.series(records, ["loss", "grad_norm", *components])
    ax_loss.semilogy(xs, ys["loss"], label="total loss", lw=2, color="k")
    for k, name in enumerate(components):
        ax_loss.semilogy(xs, ys[name], label=name.replace("_", " "), lw=1, color=f"C{k % 10}")
    ax_grad.semilogy(xs, ys["grad_norm"], color="k", lw=1.2)
    axis.decorate((ax_loss, ax_grad), [records], ["0.35"])
    ax_loss.set_ylabel("loss")
    ax_grad.set_ylabel("gradient norm \u2016\u2207L\u2016")
    for ax in (ax_loss, ax_grad):
        _decades(ax)
    ax_loss.legend(fontsize=7 if len(components) > 4 else 8, loc="best")
    fig.suptitle("Training loss and gradient norm")
    figure = _finish(plt, fig, path, return_figure)
    return figure if return_figure else None


def plot_curves(curves: Sequence[tuple[str, Sequence[dict[str, Any]]]], path: str | os.PathLike | None = None,
                title: str = "", *, last_phase: bool = False, x: str = "phase", return_figure: bool = False):
    """Loss and gradient norm, one line per run (``(label, records)``, records as in
    metrics.jsonl), against ``x``: ``"phase"`` (default; phase k of every run in the k-th
    equal share of the axis, ticked with iterations within that phase, so a short last phase
    is as wide as a long first one), ``"iteration"`` (the whole run's) or ``"time"``
    (wall-clock seconds since the start). Phase switches are dotted lines (on the phase axis
    one per switch, otherwise in each run's colour) labelled with the phase they start.
    ``last_phase``: only each run's last phase, against its own iterations, from the point
    where the phase before it ended (Table 2's view of NNCG and GD; ``x`` is then ignored).
    ``title`` is put in words (``title_words``). Returns the path, or the open figure when
    ``path`` is None or ``return_figure``."""
    plt = _pyplot()
    _check_x(x)
    runs = []
    for label, records in curves:
        records = _with_phase_iterations(records)
        if last_phase and records:
            last = records[-1]["phase_index"]
            start = [r for r in records if r["phase_index"] < last][-1:]
            records = [dict(r, iteration=0, phase_index=last, phase_iteration=0) for r in start] + [
                dict(r, iteration=r["phase_iteration"]) for r in records if r["phase_index"] == last]
        runs.append((label, records))
    axis = _XAxis([r for _, r in runs], "iteration" if last_phase else x)
    fig, (ax_loss, ax_grad) = plt.subplots(1, 2, figsize=(11.5, 4.2), constrained_layout=True)
    colors = [f"C{k % 10}" for k in range(len(runs))]
    for (label, records), color in zip(runs, colors):
        xs, ys = axis.series(records, ("loss", "grad_norm"))
        ax_loss.semilogy(xs, ys["loss"], color=color, lw=1.5, label=title_words(label))
        ax_grad.semilogy(xs, ys["grad_norm"], color=color, lw=1.2)
    if last_phase:
        for ax in (ax_loss, ax_grad):
            ax.set_xlabel("iteration of the last phase")
    else:
        axis.decorate((ax_loss, ax_grad), [r for _, r in runs], colors)
    ax_loss.set_ylabel("loss")
    ax_grad.set_ylabel("gradient norm \u2016\u2207L\u2016")
    for ax in (ax_loss, ax_grad):
        _decades(ax)
    if runs:
        ax_loss.legend(fontsize=8, loc="best")
    fig.suptitle(title_words(title) if title else "Loss and gradient norm")
    return _finish(plt, fig, path, return_figure)


def plot_error_vs_loss(points: Sequence[tuple[str, str, float, float]], path: str | os.PathLike | None = None, *,
                       return_figure: bool = False):
    """Test L2RE against final loss, one panel per problem (titled in words), one colour and
    marker per method (one legend for the figure): ``points`` = (problem, method label, loss,
    l2re) per run; non-finite points are left out. Log axes with decade ticks only."""
    plt = _pyplot()
    problems = sorted({p for p, *_ in points})
    methods = sorted({m for _, m, *_ in points}, key=lambda m: (m.count("+"), m))
    markers = "osD^v<>ph*"
    n = max(1, len(problems))
    fig, axes = plt.subplots(1, n, figsize=(4.0 * n + 1.9, 3.8), constrained_layout=True, squeeze=False)
    handles = {}
    for ax, problem in zip(axes[0], problems):
        any_point = False
        for k, method in enumerate(methods):
            xy = np.array([(loss, err) for p, m, loss, err in points if p == problem and m == method
                           and np.isfinite(loss) and np.isfinite(err) and loss > 0 and err > 0],
                          dtype=float).reshape(-1, 2)
            if len(xy):
                any_point = True
                handles[method] = ax.scatter(xy[:, 0], xy[:, 1], s=22, color=f"C{k % 10}",
                                             marker=markers[k % len(markers)], label=method, alpha=0.8)
        ax.set_xlabel("final training loss")
        ax.set_ylabel("test L2RE")
        ax.set_title(title_words(problem), fontsize=10)
        if any_point:
            ax.set_xscale("log")
            ax.set_yscale("log")
            _decades(ax, "x")
            _decades(ax, "y")
        else:
            ax.text(0.5, 0.5, "no finite runs", transform=ax.transAxes, ha="center", va="center")
    for ax in axes[0][len(problems):]:
        ax.set_xlabel("final training loss")
        ax.set_ylabel("test L2RE")
        ax.set_title("no runs", fontsize=10)
    if handles:
        ordered = [m for m in methods if m in handles]
        fig.legend([handles[m] for m in ordered], ordered, loc="outside right upper", fontsize=8, title="method")
    fig.suptitle("Test error against final loss")
    return _finish(plt, fig, path, return_figure)


# ---------------------------------------------------------------------------------------------
# fields of several runs


def plot_fields(models: Sequence[tuple[str, Any]], pde, path: str | os.PathLike | None = None, *,
                n_x: int = 257, n_t: int = 101, n: int = 201, error_scale: str = "linear",
                return_figure: bool = False):
    """The problem's first field ``u`` on ``plot_grid(pde, n_x=, n_t=, n=)`` for
    ``models`` = (label, model) pairs solving the same ``pde``: the exact solution ``u*``
    (closed form) and each model's prediction in the top row (one shared colour scale, the
    exact solution's: diverging about 0 for a signed field, sequential otherwise; colour-bar
    arrows mark predictions beyond it), each model's ``|u − u*|`` under its prediction (one
    shared sequential scale from 0 for all runs; ``error_scale="log"`` for a logarithmic one,
    from the largest error over 1e4). Several runs: the exact solution's panel spans the two
    rows' height on the left, centred (every panel the same size, no empty one); one run: a
    single row exact | prediction | error. One coordinate: lines, the exact solution dashed
    on each run's panel (no panel of its own), one y range per row. Without a closed form,
    the predictions only. Returns the path, or the open figure when ``path`` is None or
    ``return_figure``."""
    plt = _pyplot()
    grid = plot_grid(pde, n_x=n_x, n_t=n_t, n=n)
    labels = _coordinate_labels(pde)
    field = pde.fields[0]
    runs = []
    reference = None
    for label, model in models:
        prediction, exact = _evaluate(model, pde, grid)
        reference = exact[:, 0] if exact is not None else None
        runs.append((title_words(label), prediction[:, 0]))
    has_reference = reference is not None
    errors = [np.abs(pred - reference) for _, pred in runs] if has_reference else []
    error_norm = _error_norm(errors, error_scale) if has_reference else None
    count = len(runs)
    title = problem_title(pde) + (f": {field}" if len(pde.fields) > 1 else "") + _slice_words(grid)
    if grid.vertical is None:  # one coordinate: lines, exact dashed on every panel
        h_name, h = grid.horizontal
        rows = 2 if has_reference else 1
        fig, axes = plt.subplots(rows, max(1, count), figsize=(3.8 * max(1, count) + 0.6, 3.2 * rows),
                                 constrained_layout=True, squeeze=False)
        for k, (label, pred) in enumerate(runs):
            top = axes[0, k]
            top.plot(h, pred, color="C0", label=f"prediction {field}")
            if has_reference:
                top.plot(h, reference, color="k", ls="--", lw=1, label=f"exact {field}*")
                bottom = axes[1, k]
                bottom.plot(h, errors[k], color="C3")
                bottom.set_ylim(error_norm.vmin if error_scale == "log" else 0.0, error_norm.vmax * 1.05)
                if error_scale == "log":
                    bottom.set_yscale("log")
                bottom.set_title(f"{_error_name(field)}  (L2RE {_relative(errors[k], reference):.2e})", fontsize=9)
                bottom.set_xlabel(labels.get(h_name, h_name))
                bottom.set_ylabel(_error_name(field))
            top.set_title(label, fontsize=9)
            top.set_xlabel(labels.get(h_name, h_name))
            top.set_ylabel(field)
        if count:
            axes[0, 0].legend(fontsize=8)
            values = np.concatenate([p for _, p in runs] + ([reference] if has_reference else []))
            lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
            pad = 0.05 * (hi - lo) if hi > lo else 0.5
            for ax in axes[0]:  # one scale for the exact solution and every prediction
                ax.set_ylim(lo - pad, hi + pad)
        fig.suptitle(title)
        return _finish(plt, fig, path, return_figure)
    cmap, norm = _field_norm(reference if has_reference else np.concatenate([p for _, p in runs]))
    if has_reference and count == 1:
        layout = [["exact", "p0", "e0"]]
    elif has_reference:
        layout = [["exact"] + [f"p{k}" for k in range(count)], ["exact"] + [f"e{k}" for k in range(count)]]
    else:
        layout = [[f"p{k}" for k in range(max(1, count))]]
    rows, columns = len(layout), len(layout[0])
    fig, panels = plt.subplot_mosaic(layout, figsize=(3.7 * columns + 1.4, 3.1 * rows + 0.4),
                                     constrained_layout=True)
    for ax in panels.values():
        ax.set_box_aspect(BOX_ASPECT)  # equal panels; the exact one, spanning both rows, centred between them
    field_axes, error_axes = [], []
    if has_reference:
        _mesh(panels["exact"], grid, reference, f"exact {field}*", labels, cmap=cmap, norm=norm)
        field_axes.append(panels["exact"])
    mesh = error_mesh = None
    for k, (label, pred) in enumerate(runs):
        mesh = _mesh(panels[f"p{k}"], grid, pred, label, labels, cmap=cmap, norm=norm)
        field_axes.append(panels[f"p{k}"])
        if has_reference:
            shown = np.maximum(errors[k], error_norm.vmin) if error_scale == "log" else errors[k]
            error_mesh = _mesh(panels[f"e{k}"], grid, shown,
                               f"{_error_name(field)}  (L2RE {_relative(errors[k], reference):.2e})", labels,
                               cmap=ERROR_CMAP, norm=error_norm)
            error_axes.append(panels[f"e{k}"])
    if mesh is not None:
        shown = np.concatenate([p for _, p in runs] + ([reference] if has_reference else []))
        bar_axes = field_axes if rows == 1 else field_axes[1:]  # two rows: beside the predictions' row
        fig.colorbar(mesh, ax=bar_axes, label=field,
                     extend=_extend(shown, norm))
    if error_mesh is not None:
        fig.colorbar(error_mesh, ax=error_axes, label=_error_name(field))
    fig.suptitle(title)
    return _finish(plt, fig, path, return_figure)


# ---------------------------------------------------------------------------------------------
# spectra


def _thin_symlog(ax) -> None:
    """Ticks of a symlog eigenvalue axis: 0 and powers of ten of either sign, thinned so
    neighbouring labels keep at least a seventh of the axis between them."""
    lo, hi = ax.get_xlim()
    transform = ax.xaxis.get_transform()
    candidates = [0.0]
    for sign, bound in ((1.0, hi), (-1.0, lo)):
        if sign * bound >= 1:
            candidates += [sign * 10.0 ** k for k in range(0, int(math.floor(math.log10(sign * bound))) + 1)]
    candidates = [c for c in candidates if lo <= c <= hi]

    def scaled(values):
        return [float(v) for v in np.ravel(transform.transform(np.asarray(values, float).reshape(-1, 1)))]

    t = dict(zip(candidates, scaled(candidates)))
    t_lo, t_hi = scaled([lo, hi])
    gap = abs(t_hi - t_lo) / 7
    kept = [0.0] if 0.0 in t else []
    for side in (sorted(c for c in candidates if c > 0), sorted((c for c in candidates if c < 0), reverse=True)):
        last = t[0.0] if kept else None
        picked = []
        for c in side:
            if last is None or abs(t[c] - last) >= gap:
                picked.append(c)
                last = t[c]
        kept += picked
    ax.set_xticks(sorted(kept))
    ax.xaxis.set_minor_locator(_null_locator())


def _density_panel(ax, grid, values, label, **kw):
    ax.plot(grid, np.maximum(values, 1e-12), label=label, **kw)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_yscale("log")
    ax.set_ylim(bottom=max(1e-8, float(np.max(values)) * 1e-8) if np.max(values) > 0 else 1e-8)
    ax.set_xlabel("eigenvalue \u03bb")
    ax.set_ylabel("spectral density")


def _at_words(at) -> str:
    return {"lbfgs": "where L-BFGS ended", "final": "at the final parameters"}.get(str(at), str(at))


def plot_spectrum_figures(arrays: dict[str, np.ndarray], summary: dict[str, Any], out, *,
                          return_figure: bool = False) -> list:
    """The study's figures from ``scripts/spectrum.py``'s arrays: spectral densities per
    component (symlog eigenvalue axis), before / after L-BFGS preconditioning, the loss along
    the last L-BFGS direction, the condition number against n_res. Returns the paths (with
    ``return_figure`` the open figures, saved first)."""
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
                _density_panel(ax, arrays[f"density/{c}/grid"], arrays[f"density/{c}/values"], "Hessian H",
                               color="C0")
            if f"preconditioned/{c}/grid" in arrays:
                _density_panel(ax, arrays[f"preconditioned/{c}/grid"], arrays[f"preconditioned/{c}/values"],
                               "L-BFGS preconditioned", color="C3")
            _thin_symlog(ax)
            _decades(ax)
            ax.set_title(_COMPONENT_WORDS.get(c, c), fontsize=10)
            if have_pre:
                ax.legend(fontsize=8)
        problem = summary.get("pde", "")
        problem = problem_words(problem.get("name", ""), {k: v for k, v in problem.items() if k != "name"}) \
            if isinstance(problem, dict) else title_words(problem)
        fig.suptitle(f"Hessian spectral density: {problem}, {_at_words(summary.get('at', ''))}".replace(": ,", ":"))
        paths.append(_finish(plt, fig, out / "density.png", return_figure))
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
        ax.set_ylabel("loss L(w + t d)")
        _decades(ax, "x")
        _decades(ax, "y")
        ax.set_title("Loss along the last L-BFGS direction d")
        ax.legend(fontsize=8)
        paths.append(_finish(plt, fig, out / "direction.png", return_figure))
    if "condition/n_residual" in arrays:
        n, ratio = arrays["condition/n_residual"], arrays["condition/ratio"]
        sweep = summary["condition_sweep"]
        fig, ax = plt.subplots(figsize=(5.5, 4), constrained_layout=True)
        ordering = sweep.get("ordering", "magnitude")
        positive = ratio > 0  # algebraic ordering: a negative ratio has no place on a log axis
        ax.loglog(n[positive], ratio[positive], "o-", label=f"fitted exponent {sweep['exponent']:.2f}")
        ax.set_xticks(n[positive], [str(int(v)) for v in n[positive]])  # the sweep's own n, no crowded minor labels
        ax.minorticks_off()
        if len(n[positive]) > 6:
            for k, label in enumerate(ax.get_xticklabels()):
                label.set_visible(k % 2 == 0)
        _decades(ax, "y")
        ax.set_xlabel("number of residual points")
        index = sweep["index"]
        ax.set_ylabel(rf"$|\lambda_1 / \lambda_{{{index}}}|$ (by magnitude)" if ordering == "magnitude"
                      else rf"$\lambda_1 / \lambda_{{{index}}}$ (algebraic)")
        protocol = sweep.get("protocol")
        problem = title_words(sweep.get("pde", "convection beta=1"))
        ax.set_title(f"Hessian condition number: {problem}, width {sweep.get('width', 32)}"
                     + (f"\n{protocol} protocol, {sweep.get('dtype')}" if protocol else ""), fontsize=10)
        ax.legend()
        paths.append(_finish(plt, fig, out / "condition.png", return_figure))
    return paths


def plot_density(densities: dict[str, Any], path: str | os.PathLike | None = None, title: str = "", *,
                 return_figure: bool = False):
    """Spectral densities (``jpinn.analysis.SpectralDensity``, by label) on one symlog axis,
    the study's style; ``title`` in words. Returns the path, or the open figure when
    ``path`` is None or ``return_figure``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4), constrained_layout=True)
    for k, (label, density) in enumerate(densities.items()):
        grid, values = density.density()
        _density_panel(ax, grid, values, f"{title_words(label)} ($\\lambda_{{\\max}}$ = {density.lambda_max:.3g})",
                       color=f"C{k % 10}")
    if densities:
        _thin_symlog(ax)
        _decades(ax)
    ax.legend(fontsize=8)
    ax.set_title(title_words(title) if title else "Hessian spectral density")
    return _finish(plt, fig, path, return_figure)
