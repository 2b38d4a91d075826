"""plot.py on general problems: any number of coordinates and fields, loss components by name."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jpinn
from jpinn import plot
from jpinn.problems import Convection, Kovasznay, Poisson

PNG = b"\x89PNG\r\n\x1a\n"


def tiny_model(problem):
    d, k = len(problem.domain().coordinates), len(problem.fields)
    return jpinn.models.MLP(width=4, depth=1, in_size=d, out_size=k, key=jax.random.PRNGKey(0))


def is_png(path) -> bool:
    return path.exists() and path.read_bytes()[:8] == PNG


def numpy_l2re(model, points, exact):
    prediction = np.asarray(model.predict(jnp.asarray(points, jnp.float32)), np.float64)
    return float(np.linalg.norm(prediction - exact) / np.linalg.norm(exact))


def test_plot_solution_poisson2(tmp_path):
    """A 2-coordinate box that is not space x time: the n x n grid, x1 horizontal."""
    problem = Poisson(dim=2)
    path = tmp_path / "solution.png"
    l2re = plot.plot_solution(tiny_model(problem), problem, path, n=13)
    assert is_png(path)
    assert math.isfinite(l2re) and l2re > 0
    grid = plot.plot_grid(problem, n=13)
    assert grid.shape == (13, 13) and grid.fixed == ""
    assert grid.horizontal[0] == "x1" and grid.vertical[0] == "x2"
    study = plot.plot_grid(Convection(), n_x=17, n_t=11)  # the study's look: t horizontal, x vertical
    assert study.shape == (17, 11) and study.horizontal[0] == "t" and study.vertical[0] == "x"


def test_plot_solution_l2re_convection(tmp_path):
    """The study's grid: x-major n_x x n_t, u = sin(x - beta t)."""
    problem, (n_x, n_t) = Convection(beta=3.0), (17, 11)
    model = tiny_model(problem)
    x, t = np.linspace(0, 2 * np.pi, n_x), np.linspace(0, 1, n_t)
    xx, tt = np.meshgrid(x, t, indexing="ij")
    points = np.stack([xx.ravel(), tt.ravel()], 1)
    expected = numpy_l2re(model, points, np.sin(points[:, :1] - 3.0 * points[:, 1:]))
    got = plot.plot_solution(model, problem, tmp_path / "c.png", n_x=n_x, n_t=n_t)
    assert is_png(tmp_path / "c.png")
    assert got == pytest.approx(expected, rel=1e-4)


def test_plot_solution_l2re_poisson5_slice(tmp_path):
    """A 5-D box: the n x n slice along x1, x2 with x3..x5 at 0.5, u = prod sin(pi x_i)."""
    problem, n = Poisson(dim=5), 15
    model = tiny_model(problem)
    axis = np.linspace(0, 1, n)
    a, b = np.meshgrid(axis, axis, indexing="ij")
    points = np.column_stack([a.ravel(), b.ravel(), np.full((n * n, 3), 0.5)])
    expected = numpy_l2re(model, points, np.prod(np.sin(np.pi * points), axis=1, keepdims=True))
    got = plot.plot_solution(model, problem, tmp_path / "p.png", n=n)
    assert is_png(tmp_path / "p.png")
    assert got == pytest.approx(expected, rel=1e-4)
    assert plot.plot_grid(problem, n=n).fixed == "x3..x5 = 0.5"


def test_plot_solution_l2re_kovasznay_all_fields(tmp_path):
    """Three fields: the L2RE is over all of them (Frobenius norms of the (N, 3) arrays)."""
    problem, n, re = Kovasznay(), 11, 20.0
    model = tiny_model(problem)
    x, y = np.meshgrid(np.linspace(-0.5, 1.0, n), np.linspace(-0.5, 1.5, n), indexing="ij")
    x, y = x.ravel(), y.ravel()
    lam = re / 2 - np.sqrt(re**2 / 4 + 4 * np.pi**2)
    exact = np.column_stack([1 - np.exp(lam * x) * np.cos(2 * np.pi * y),
                             lam / (2 * np.pi) * np.exp(lam * x) * np.sin(2 * np.pi * y),
                             0.5 * (1 - np.exp(2 * lam * x))])
    expected = numpy_l2re(model, np.column_stack([x, y]), exact)
    got = plot.plot_solution(model, problem, tmp_path / "k.png", n=n)
    assert is_png(tmp_path / "k.png")
    assert got == pytest.approx(expected, rel=1e-4)


def test_plot_solution_positional_and_no_reference(tmp_path):
    problem = Poisson(dim=1)
    l2re = plot.plot_solution(tiny_model(problem), problem, tmp_path / "line.png")  # one coordinate: lines
    assert is_png(tmp_path / "line.png") and math.isfinite(l2re)

    class NoClosedForm(Poisson):
        def exact(self, c):  # noqa: D102 - a problem with no closed form
            return None

    nameless = NoClosedForm(dim=2)
    l2re = plot.plot_solution(tiny_model(nameless), nameless, tmp_path / "pred.png", n=9)
    assert is_png(tmp_path / "pred.png") and math.isnan(l2re)


def test_problem_title_and_colors():
    assert plot.problem_title(Convection(beta=30.0)) == "Convection, \u03b2 = 30"
    assert plot._field_colors(np.array([-1.0, 3.0])) == {"cmap": "RdBu_r", "vmin": -3.0, "vmax": 3.0}
    assert plot._field_colors(np.array([0.0, 2.0]))["vmin"] == 0.0


def test_plot_fields_general(tmp_path):
    for problem in (Convection(), Kovasznay(), Poisson(dim=3)):
        models = [("a", tiny_model(problem)),
                  ("b", jpinn.models.MLP(width=3, depth=1, in_size=len(problem.domain().coordinates),
                                         out_size=len(problem.fields), key=jax.random.PRNGKey(1)))]
        path = plot.plot_fields(models, problem, tmp_path / f"{problem.name}.png", n_x=17, n_t=11, n=9)
        assert is_png(path)


def records(components):
    out = []
    for i in range(6):
        r = {"phase": "adam" if i < 3 else "lbfgs", "phase_index": int(i >= 3), "iteration": i,
             "phase_iteration": i % 3, "step": i, "evaluations": i, "loss": 1.0 / (i + 1),
             "grad_norm": 0.5 / (i + 1), "status": 0, "info": {}, "time": 0.1 * i}
        r.update({c: 0.1 * (k + 1) / (i + 1) for k, c in enumerate(components)})
        out.append(r)
    return out


def test_plot_history_components(tmp_path):
    names = ("momentum_x", "momentum_y", "continuity", "boundary_u")
    plot.plot_history(records(names), tmp_path / "custom.png", components=names[:2])
    assert is_png(tmp_path / "custom.png")
    assert plot.history_components(records(names)) == list(names)  # inferred: the non-bookkeeping numbers
    assert plot.history_components(records(("residual", "initial", "boundary", "extra"))) == [
        "residual", "initial", "boundary"]
    plot.plot_history(records(names), tmp_path / "inferred.png")
    assert is_png(tmp_path / "inferred.png")


def test_one_signed_field_rounding_is_not_a_sign():
    """prod sin(pi x) is >= 0; float32 rounding at the boundary must not make it diverging."""
    assert plot._field_colors(np.array([-8.7e-8, 0.5, 1.0]))["cmap"] != "RdBu_r"
