"""Figures fit to publish (issue 21, item 6), checked from the matplotlib Figure objects:
titles in words, labelled axes and colour bars, colour limits (one error scale across runs,
diverging maps only for signed data, centred on 0), no empty panels, no overlapping tick
labels, phase switches labelled and a short last phase given its share of the axis.

Expectations are derived by hand (or by NumPy on the plot grid), not from plot.py's output."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import QuadMesh  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

import jpinn  # noqa: E402
from jpinn import plot  # noqa: E402
from jpinn.problems import Convection, Kovasznay, Poisson  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"
ERROR = "|u \u2212 u*|"


def mlp(problem, seed=0, width=4):
    d, k = len(problem.domain().coordinates), len(problem.fields)
    return jpinn.models.MLP(width=width, depth=1, in_size=d, out_size=k, key=jax.random.PRNGKey(seed))


def run_records(phases):
    """Records like jpinn.train's: ``phases`` = (label, iterations, log_every); the first
    phase logs its iteration 0, later ones start at their first logged iteration."""
    out, done, clock, loss = [], 0, 0.0, 1.0
    for index, (label, iterations, every) in enumerate(phases):
        for i in range(0 if index == 0 else every, iterations + 1, every):
            loss *= 0.9
            clock += 0.01 if label == "adam" else 0.5
            out.append({"phase": label, "phase_index": index, "iteration": done + i, "phase_iteration": i,
                        "step": i, "evaluations": i, "loss": loss, "residual": loss / 2, "initial": loss / 4,
                        "boundary": loss / 4, "grad_norm": loss * 3, "status": 0, "info": {}, "time": clock})
        done += iterations
    return out


def words_only(text: str) -> bool:
    return "{" not in text and "}" not in text and "'" not in text


def titles(fig) -> list[str]:
    out = [fig.get_suptitle()] if fig.get_suptitle() else []
    return out + [ax.get_title() for ax in fig.axes if ax.get_title()]


def colorbar_axes(fig) -> dict:
    """The colour bars' axes -> their colour bar (found through the mappables, public API)."""
    bars = {}
    for ax in fig.axes:
        for artist in [*ax.collections, *ax.images]:
            bar = getattr(artist, "colorbar", None)
            if bar is not None:
                bars[bar.ax] = bar
    return bars


def panels(fig) -> list:
    bars = colorbar_axes(fig)
    return [ax for ax in fig.axes if ax not in bars]


def meshes(ax) -> list[QuadMesh]:
    return [c for c in ax.collections if isinstance(c, QuadMesh)]


def overlapping_tick_labels(fig) -> list[tuple[str, str]]:
    """Pairs of visible tick labels (major and minor) of one axis whose boxes overlap."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    pairs = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = [t for t in [*axis.get_ticklabels(), *axis.get_ticklabels(minor=True)]
                      if t.get_visible() and t.get_text().strip()]
            boxes = [t.get_window_extent(renderer) for t in labels]
            for i in range(len(boxes)):
                for j in range(i + 1, len(boxes)):
                    a, b = boxes[i], boxes[j]
                    if min(a.x1, b.x1) - max(a.x0, b.x0) > 1 and min(a.y1, b.y1) - max(a.y0, b.y0) > 1:
                        pairs.append((labels[i].get_text(), labels[j].get_text()))
    return pairs


def assert_publishable(fig):
    """What every figure must satisfy: word titles, labelled axes, labelled colour bars, no
    empty or hidden panels, no overlapping tick labels."""
    assert all(words_only(t) for t in titles(fig)), titles(fig)
    bars = colorbar_axes(fig)
    for bar in bars.values():
        assert bar.ax.get_ylabel() or bar.ax.get_xlabel(), "a colour bar without a label"
    for ax in panels(fig):
        assert ax.get_visible() and ax.axison, "a hidden panel"
        assert ax.lines or ax.collections or ax.images, f"an empty panel: {ax.get_title()!r}"
        assert ax.get_xlabel() and ax.get_ylabel(), f"an unlabelled axis on {ax.get_title()!r}"
    assert overlapping_tick_labels(fig) == []


def data_line(ax, label):
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == label]
    return np.asarray(line.get_xdata(), float)


def switch_lines(ax) -> list[tuple[float, str]]:
    """Vertical dotted lines: (x, colour as hex)."""
    out = []
    for ln in ax.get_lines():
        x = np.asarray(ln.get_xdata(), float)
        if ln.get_linestyle() == ":" and len(x) == 2 and x[0] == x[1]:
            out.append((float(x[0]), matplotlib.colors.to_hex(ln.get_color())))
    return sorted(out)


# ------------------------------------------------------------------------------------------


def test_titles_are_words():
    assert plot.problem_title(Convection(beta=40.0)) == "Convection, \u03b2 = 40"
    assert plot.problem_title(Poisson(dim=5)) == "Poisson, 5-D"
    assert plot.title_words("convection {'beta': 40.0}") == "Convection, \u03b2 = 40"
    assert plot.title_words("convection (beta 40): best run of each method") == \
        "Convection, \u03b2 = 40: best run of each method"
    assert plot.title_words("wave (beta 5, c2 4)") == "Wave, \u03b2 = 5, c\u00b2 = 4"
    assert plot.title_words("convection beta=1") == "Convection, \u03b2 = 1"
    assert plot.title_words("kovasznay (Re=20)") == "Kovasznay flow, Re = 20"
    assert plot.title_words("allen_cahn") == "Allen\u2013Cahn"
    assert plot.title_words("Adam+L-BFGS (loss 1.2e-03)") == "Adam+L-BFGS (loss 1.2e-03)"  # not a problem: kept
    assert plot.phase_words("lbfgs") == "L-BFGS" and plot.phase_words("nncg") == "NNCG"


def test_history_one_run_phase_axis_gives_the_short_phase_its_share(tmp_path):
    """Adam for 1,000 iterations then L-BFGS for 40: on the default phase axis L-BFGS gets
    half the axis (x 1 to 2) instead of 40 / 1040 of it."""
    records = run_records([("adam", 1000, 100), ("lbfgs", 40, 20)])
    fig = plot.plot_history(records, tmp_path / "loss.png", return_figure=True)
    assert (tmp_path / "loss.png").read_bytes()[:8] == PNG
    ax_loss, ax_grad = fig.axes
    expected = [i / 1000 for i in range(0, 1001, 100)] + [1.0, 1.5, 2.0]  # L-BFGS from where Adam ended
    assert np.allclose(data_line(ax_loss, "total loss"), expected)
    for ax in (ax_loss, ax_grad):
        assert ax.get_xlim() == (0.0, 2.0)
        assert [x for x, _ in switch_lines(ax)] == [1.0]
        assert {"Adam", "L-BFGS"} <= {t.get_text().strip() for t in ax.texts}
        ticks = dict(zip(np.round(ax.get_xticks(), 9), [t.get_text() for t in ax.get_xticklabels()]))
        assert ticks[0.0] == "0" and ticks[1.0] == "0" and ticks[2.0] == "40"  # each phase its own iterations
    assert ax_loss.get_ylabel() == "loss" and "gradient norm" in ax_grad.get_ylabel()
    assert ax_loss.get_yscale() == "log"
    assert_publishable(fig)
    plt.close(fig)


def test_history_iteration_and_time_axes(tmp_path):
    records = run_records([("adam", 1000, 100), ("lbfgs", 40, 20)])
    fig = plot.plot_history(records, None, x="iteration", return_figure=True)
    ax = fig.axes[0]
    assert np.allclose(data_line(ax, "total loss"), [*range(0, 1001, 100), 1020, 1040])
    assert [x for x, _ in switch_lines(ax)] == [1000.0]
    assert ax.get_xlabel() == "iteration"
    assert "L-BFGS" in {t.get_text().strip() for t in ax.texts}
    assert_publishable(fig)
    plt.close(fig)
    fig = plot.plot_history(records, None, x="time", return_figure=True)
    ax = fig.axes[0]
    adam_end = 11 * 0.01  # eleven Adam records, 0.01 s apart
    assert np.allclose(data_line(ax, "total loss"), [0.01 * (k + 1) for k in range(11)] + [adam_end + 0.5,
                                                                                           adam_end + 1.0])
    assert [x for x, _ in switch_lines(ax)] == [pytest.approx(adam_end)]
    assert "(s)" in ax.get_xlabel()
    plt.close(fig)
    with pytest.raises(ValueError, match="x: one of"):
        plot.plot_history(records, None, x="epochs")


def test_curves_several_runs_share_phase_segments_and_label_switches(tmp_path):
    runs = [("Adam+L-BFGS", run_records([("adam", 1000, 100), ("lbfgs", 40, 20)])),
            ("Adam+NNCG", run_records([("adam", 500, 100), ("nncg", 20, 10)]))]
    path = plot.plot_curves(runs, tmp_path / "curves.png", title="convection (beta 40): best run of each method")
    assert path == tmp_path / "curves.png" and path.read_bytes()[:8] == PNG  # callers' use: the path back
    fig = plot.plot_curves(runs, title="convection {'beta': 40.0}", return_figure=True)
    assert fig.get_suptitle() == "Convection, \u03b2 = 40"
    ax_loss, ax_grad = fig.axes
    # phase 2's segment is 40 iterations wide (the longer of L-BFGS 40, NNCG 20); Adam's 1000
    assert np.allclose(data_line(ax_loss, "Adam+L-BFGS"), [i / 1000 for i in range(0, 1001, 100)] + [1.0, 1.5, 2.0])
    b = data_line(ax_loss, "Adam+NNCG")  # ends Adam at 0.5, breaks, restarts at the switch
    assert np.allclose(b[:6], [0, 0.1, 0.2, 0.3, 0.4, 0.5]) and math.isnan(b[6])
    assert np.allclose(b[7:], [1.0, 1.25, 1.5])
    names = {t.get_text().strip() for t in ax_loss.texts}
    assert {"Adam", "L-BFGS / NNCG"} <= names
    assert [x for x, _ in switch_lines(ax_loss)] == [1.0]
    assert [t.get_text() for t in ax_loss.get_legend().get_texts()] == ["Adam+L-BFGS", "Adam+NNCG"]
    assert_publishable(fig)
    plt.close(fig)
    # the whole run's iterations: each run's switch in its colour, labelled by the phase it starts
    fig = plot.plot_curves(runs, x="iteration", return_figure=True)
    ax = fig.axes[0]
    assert switch_lines(ax) == [(500.0, matplotlib.colors.to_hex("C1")), (1000.0, matplotlib.colors.to_hex("C0"))]
    assert {"Adam", "L-BFGS", "NNCG"} <= {t.get_text().strip() for t in ax.texts}
    assert_publishable(fig)
    plt.close(fig)
    fig = plot.plot_curves(runs, last_phase=True, return_figure=True)
    assert np.allclose(data_line(fig.axes[0], "Adam+NNCG"), [0, 10, 20])
    assert switch_lines(fig.axes[0]) == []
    plt.close(fig)


def grid_values(problem, models, n_x=17, n_t=11, n=9):
    """Exact solution and predictions on plot_grid's points, by NumPy (convection / Poisson)."""
    grid = plot.plot_grid(problem, n_x=n_x, n_t=n_t, n=n)
    points = grid.points
    if isinstance(problem, Convection):
        exact = np.sin(points[:, 0] - problem.beta * points[:, 1])
    else:
        exact = np.prod(np.sin(np.pi * points), axis=1)
    predictions = [np.asarray(m.predict(jnp.asarray(points, jnp.float32)), np.float64)[:, 0] for m in models]
    return exact, predictions


def test_fields_several_runs_one_error_scale_no_empty_panel(tmp_path):
    problem = Convection(beta=3.0)
    models = [mlp(problem, k, width=3 + k) for k in range(3)]
    exact, predictions = grid_values(problem, models)
    fig = plot.plot_fields([(f"run {k}", m) for k, m in enumerate(models)], problem, tmp_path / "f.png",
                           n_x=17, n_t=11, return_figure=True)
    assert (tmp_path / "f.png").read_bytes()[:8] == PNG
    assert_publishable(fig)
    main = panels(fig)
    assert len(main) == 1 + 2 * 3  # exact, three predictions, three errors: no panel left empty
    by_title = {ax.get_title(): ax for ax in main}
    assert "exact u*" in by_title and {"run 0", "run 1", "run 2"} <= set(by_title)
    errors = [ax for ax in main if ax.get_title().startswith(ERROR)]
    assert len(errors) == 3
    peak = max(float(np.max(np.abs(p - exact))) for p in predictions)
    for ax in errors:
        (mesh,) = meshes(ax)
        assert mesh.get_clim() == pytest.approx((0.0, peak), rel=1e-5)  # the same scale for every run
        assert mesh.get_cmap().name != plot.SIGNED_CMAP
    m = float(np.max(np.abs(exact)))
    for ax in [by_title["exact u*"], by_title["run 0"], by_title["run 1"], by_title["run 2"]]:
        (mesh,) = meshes(ax)
        assert mesh.get_clim() == pytest.approx((-m, m), rel=1e-6)  # signed: symmetric, white at 0
        assert mesh.get_cmap().name == plot.SIGNED_CMAP
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("t", "x")
    assert sorted(bar.ax.get_ylabel() for bar in colorbar_axes(fig).values()) == sorted(["u", ERROR])
    plt.close(fig)


def test_fields_one_run_single_row_and_log_errors():
    problem = Convection(beta=3.0)
    fig = plot.plot_fields([("only", mlp(problem))], problem, n_x=17, n_t=11)
    assert len(panels(fig)) == 3
    assert_publishable(fig)
    positions = [ax.get_position() for ax in panels(fig)]
    assert len({round(p.y0, 3) for p in positions}) == 1  # one row
    plt.close(fig)
    models = [mlp(problem, 0), mlp(problem, 1)]
    exact, predictions = grid_values(problem, models)
    fig = plot.plot_fields([("a", models[0]), ("b", models[1])], problem, n_x=17, n_t=11, error_scale="log",
                           return_figure=True)
    norms = [meshes(ax)[0].norm for ax in panels(fig) if ax.get_title().startswith(ERROR)]
    peak = max(float(np.max(np.abs(p - exact))) for p in predictions)
    assert len(norms) == 2 and all(isinstance(n, LogNorm) for n in norms)
    assert norms[0].vmin == norms[1].vmin > 0 and norms[0].vmax == pytest.approx(peak, rel=1e-5)
    plt.close(fig)


def test_nonnegative_field_gets_a_sequential_map_from_zero():
    """prod sin(pi x) >= 0: sequential, from 0 to its largest value on the grid (1 at the
    centre, which the odd grid contains), not a diverging map whose white would mean 0.5."""
    problem = Poisson(dim=2)
    fig = plot.plot_fields([("a", mlp(problem)), ("b", mlp(problem, 1))], problem, n=9)
    exact_panel = [ax for ax in panels(fig) if ax.get_title() == "exact u*"][0]
    (mesh,) = meshes(exact_panel)
    assert mesh.get_cmap().name != plot.SIGNED_CMAP
    assert mesh.get_clim() == pytest.approx((0.0, 1.0), abs=1e-12)
    assert (exact_panel.get_xlabel(), exact_panel.get_ylabel()) == ("x1", "x2")
    assert_publishable(fig)
    plt.close(fig)


def test_solution_figure(tmp_path):
    problem = Convection(beta=3.0)
    model = mlp(problem)
    exact, (prediction,) = grid_values(problem, [model])
    fig = plot.plot_solution(model, problem, tmp_path / "s.png", n_x=17, n_t=11, return_figure=True)
    assert fig.get_suptitle() == "Convection, \u03b2 = 3"
    assert_publishable(fig)
    main = panels(fig)
    assert [ax.get_title().split("  ")[0] for ax in main] == ["prediction u", "exact u*", ERROR]
    m = float(np.max(np.abs(exact)))
    assert meshes(main[0])[0].get_clim() == meshes(main[1])[0].get_clim() == pytest.approx((-m, m), rel=1e-6)
    assert meshes(main[2])[0].get_clim() == pytest.approx((0.0, float(np.max(np.abs(prediction - exact)))),
                                                          rel=1e-5)
    assert sorted(b.ax.get_ylabel() for b in colorbar_axes(fig).values()) == sorted(["u", ERROR])
    plt.close(fig)
    fig = plot.plot_solution(mlp(Kovasznay()), Kovasznay(), None, n=9, return_figure=True)
    labels = sorted(b.ax.get_ylabel() for b in colorbar_axes(fig).values())
    assert labels == sorted(["u", "v", "p", ERROR, "|v \u2212 v*|", "|p \u2212 p*|"])
    assert fig.get_suptitle().startswith("Kovasznay flow, Re = 20")
    assert_publishable(fig)
    plt.close(fig)
    fig = plot.plot_solution(mlp(Poisson(dim=1)), Poisson(dim=1), None, return_figure=True)  # lines
    assert len(panels(fig)) == 2 and [ax.get_xlabel() for ax in fig.axes] == ["x1", "x1"]
    assert_publishable(fig)
    plt.close(fig)


def test_fields_lines_one_scale():
    problem = Poisson(dim=1)
    fig = plot.plot_fields([("a", mlp(problem)), ("b", mlp(problem, 1, 6))], problem, n=33)
    main = panels(fig)
    assert len(main) == 4  # predictions (exact dashed on each) above their errors; no exact-only panel
    errors = [ax for ax in main if ax.get_title().startswith(ERROR)]
    assert len(errors) == 2 and errors[0].get_ylim() == errors[1].get_ylim() and errors[0].get_ylim()[0] == 0
    tops = [ax for ax in main if ax not in errors]
    assert tops[0].get_ylim() == tops[1].get_ylim()
    assert_publishable(fig)
    plt.close(fig)


def test_error_vs_loss_decade_ticks_do_not_overlap():
    """Losses within one decade used to get crowded minor-tick labels."""
    points = [("convection (beta 40)", "Adam", 2.1e-3, 3.3e-2), ("convection (beta 40)", "Adam+L-BFGS", 7.9e-3, 4.1e-2),
              ("convection (beta 40)", "Adam+L-BFGS+NNCG", 4.4e-3, 3.6e-2), ("reaction (rho 5)", "Adam", 1e-6, 1e-3),
              ("reaction (rho 5)", "Adam", 3e-1, 2e-1), ("reaction (rho 5)", "Adam", float("nan"), 1.0)]
    fig = plot.plot_error_vs_loss(points, return_figure=True)
    assert [ax.get_title() for ax in fig.axes] == ["Convection, \u03b2 = 40", "Reaction, \u03c1 = 5"]
    assert_publishable(fig)
    first = fig.axes[0]
    lo, hi = first.get_xlim()
    assert (lo, hi) == pytest.approx((1e-3, 1e-2))  # widened to the enclosing decade
    assert [t.get_text() for t in first.get_xticklabels(minor=True) if t.get_text()] == []
    assert {t.get_text() for t in fig.legends[0].get_texts()} == {"Adam", "Adam+L-BFGS", "Adam+L-BFGS+NNCG"}
    plt.close(fig)


def test_spectrum_figures_words_and_ticks(tmp_path):
    from jpinn.analysis.spectrum import SpectralDensity

    rng = np.random.default_rng(0)
    nodes = np.sort(np.concatenate([rng.normal(0, 0.3, (2, 12)), 1e4 * rng.random((2, 3)), -20 * rng.random((2, 2))],
                                   1), 1)
    density = SpectralDensity(nodes, np.full(nodes.shape, 1 / nodes.shape[1]), 50)
    fig = plot.plot_density({"adam_lbfgs": density}, title="convection {'beta': 40.0}", return_figure=True)
    (ax,) = fig.axes
    assert ax.get_title() == "Convection, \u03b2 = 40" and ax.get_xlabel() == "eigenvalue \u03bb"
    assert_publishable(fig)
    plt.close(fig)
    grid, values = density.density()
    arrays = {"density/total/grid": grid, "density/total/values": values,
              "condition/n_residual": np.array([64, 128, 256]), "condition/ratio": np.array([1e3, 5e3, 2e4])}
    summary = {"pde": "convection", "at": "lbfgs",
               "condition_sweep": {"exponent": 2.0, "index": 129, "pde": "convection beta=1", "width": 32}}
    figures = plot.plot_spectrum_figures(arrays, summary, tmp_path, return_figure=True)
    assert len(figures) == 2 and (tmp_path / "density.png").is_file() and (tmp_path / "condition.png").is_file()
    assert figures[0].get_suptitle() == "Hessian spectral density: Convection, where L-BFGS ended"
    assert figures[1].axes[0].get_title() == "Hessian condition number: Convection, \u03b2 = 1, width 32"
    for fig in figures:
        assert_publishable(fig)
        plt.close(fig)
    assert [p.name for p in plot.plot_spectrum_figures(arrays, summary, tmp_path)] == ["density.png",
                                                                                        "condition.png"]


def test_the_checks_catch_what_they_look_for():
    """The helpers above are not vacuous: crowded ticks, an empty panel, a dict title fail."""
    fig, (ax, empty) = plt.subplots(1, 2, figsize=(3, 2))
    ax.plot([0, 1], [0, 1])
    ax.set_xticks(np.linspace(0, 1, 40), [f"{v:.3f}" for v in np.linspace(0, 1, 40)])
    assert overlapping_tick_labels(fig) != []
    empty.set_title("convection {'beta': 40.0}")
    with pytest.raises(AssertionError):
        assert_publishable(fig)
    assert not words_only(empty.get_title())
    plt.close(fig)
