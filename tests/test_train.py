"""The driver and Adam: the optimizer against a hand-written Adam, loss decrease, phase
and iteration accounting, the non-finite stop, compiled once per phase, float64; the stop
codes (one enumeration, numbers and messages fixed: run folders store them)."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jpinn
from jpinn.optim import (
    LBFGS, NONFINITE, RUNNING, STOP_REASONS, AbstractOptimizer, Adam, StopReason, stop_reason,
)
from jpinn.optim._base import base_info


def test_adam_matches_hand_written_adam(x64):
    # f(w) = 0.5 sum(a w^2): gradient a w; Adam by the book (Kingma & Ba) in NumPy, float64
    a = np.array([1.0, 10.0, 0.1])
    f = lambda w: (0.5 * jnp.sum(a * w**2), {})  # noqa: E731
    opt = Adam(learning_rate=0.05, b1=0.9, b2=0.999, eps=1e-8)
    w = jnp.array([1.0, -2.0, 3.0], dtype=x64)
    state = opt.init(f, w)
    wn, m, v = np.array([1.0, -2.0, 3.0]), np.zeros(3), np.zeros(3)
    for k in range(1, 21):
        w, state, info = opt.step(f, w, state)
        g = a * wn
        assert float(info["loss"]) == pytest.approx(0.5 * np.sum(a * wn**2), rel=1e-12)
        assert float(info["grad_norm"]) == pytest.approx(np.linalg.norm(g), rel=1e-12)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g**2
        wn = wn - 0.05 * (m / (1 - 0.9**k)) / (np.sqrt(v / (1 - 0.999**k)) + 1e-8)
        np.testing.assert_allclose(np.asarray(w), wn, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": -1e-3}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"b1": 1.0}, "b1"),
        ({"eps": -1.0}, "eps"),
    ],
)
def test_adam_rejects_bad_hyperparameters(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Adam(**kwargs)


def test_adam_lowers_the_loss_and_accounts_iterations(tiny_problem):
    _, _, _, loss, w0 = tiny_problem()
    records = []
    result = jpinn.train(
        loss, w0, [jpinn.Phase(Adam(1e-2), 300), jpinn.Phase(Adam(1e-3), 45, name="fine")],
        log_every=100, callback=records.append, progress=False,
    )
    assert [r["iteration"] for r in records] == [0, 100, 200, 300, 345]
    assert [r["phase"] for r in records] == ["adam"] * 4 + ["fine"]
    assert records[-1]["loss"] < 0.1 * records[0]["loss"]
    assert [(p.iterations, p.steps, p.stop_code) for p in result.phases] == [(300, 300, RUNNING), (45, 45, RUNNING)]
    assert result.phases[0].stop_reason == "budget"
    # the logged loss is the loss at the returned parameters
    final, parts = loss(result.w)
    assert float(final) == pytest.approx(records[-1]["loss"], rel=1e-5)
    assert float(parts["residual"]) == pytest.approx(records[-1]["residual"], rel=1e-5)


def test_chunks_equal_single_steps(tiny_problem):
    # one compiled lax.scan chunk of 37 steps == 37 eager optimizer steps
    _, _, _, loss, w0 = tiny_problem()
    result = jpinn.train(loss, w0, [jpinn.Phase(Adam(1e-2), 37)], log_every=10, progress=False)
    opt = Adam(1e-2)
    w, state = w0, opt.init(loss, w0)
    step = eqx.filter_jit(opt.step)
    for _ in range(37):
        w, state, _ = step(loss, w, state)
    np.testing.assert_allclose(np.asarray(result.w), np.asarray(w), rtol=1e-5, atol=1e-6)


class _Counting(AbstractOptimizer):
    """Gradient descent that counts how often its step is traced (compiled)."""

    learning_rate: float = 1e-2
    traces: ClassVar[list] = []
    name: ClassVar[str] = "counting"

    def init(self, f, w):
        return jnp.int32(0)

    def step(self, f, w, state):
        _Counting.traces.append(1)
        (loss, _), g = jax.value_and_grad(f, has_aux=True)(w)
        return w - self.learning_rate * g, state + 1, base_info(loss, jnp.linalg.norm(g))


def test_one_compilation_per_phase(tiny_problem):
    _, _, _, loss, w0 = tiny_problem()
    _Counting.traces.clear()
    # 5 chunks, the last one shorter: still one compiled program
    jpinn.train(loss, w0, [jpinn.Phase(_Counting(), 45)], log_every=10, progress=False)
    after_first = len(_Counting.traces)
    assert after_first >= 1
    jpinn.train(loss, w0, [jpinn.Phase(_Counting(), 95)], log_every=10, progress=False)
    assert len(_Counting.traces) == after_first  # same shapes: the cache is reused
    # from an empty cache, 2 chunks and 10 chunks trace the step equally often
    counts = []
    for iterations in (20, 100):
        jax.clear_caches()
        _Counting.traces.clear()
        jpinn.train(loss, w0, [jpinn.Phase(_Counting(), iterations)], log_every=10, progress=False)
        counts.append(len(_Counting.traces))
    assert counts[0] == counts[1] == after_first


def test_chunks_donate_but_leave_the_callers_arrays_valid(tiny_problem):
    _, _, _, loss, w0 = tiny_problem()
    before = np.asarray(w0).copy()
    result = jpinn.train(loss, w0, [jpinn.Phase(Adam(1e-2), 30), jpinn.Phase(LBFGS(), 20)],
                         log_every=10, progress=False)
    np.testing.assert_array_equal(np.asarray(w0), before)  # still readable, unchanged
    assert not np.array_equal(np.asarray(result.w), before)
    jax.tree_util.tree_map(np.asarray, result.states)  # the final states are live buffers


class _Exploding(AbstractOptimizer):
    """Steps normally, then returns NaN parameters from its 6th step on."""

    name: ClassVar[str] = "exploding"

    def init(self, f, w):
        return jnp.int32(0)

    def step(self, f, w, state):
        (loss, _), g = jax.value_and_grad(f, has_aux=True)(w)
        w_new = jnp.where(state >= 5, jnp.nan, w - 1e-3 * g)
        return w_new, state + 1, base_info(loss, jnp.linalg.norm(g))


def test_stop_codes_are_one_enumeration_with_fixed_numbers():
    # run folders and summaries hold these numbers next to their messages: they never move
    assert {r.name: int(r) for r in StopReason} == {
        "RUNNING": 0, "NONFINITE": 1, "GRAD_TOLERANCE": 2, "DIRECTION_TOLERANCE": 3, "STEP_TOLERANCE": 4,
        "LOSS_TOLERANCE": 5, "LINE_SEARCH_STALL": 6, "ARMIJO_FAILED": 7, "PRECONDITIONER_FAILED": 8,
        "CG_BREAKDOWN": 9, "DAMPING_LIMIT": 10, "SOLVE_FAILED": 11, "DIVERGED": 20,
    }
    # the faults (a run whose phases all end on one exits 3); the rest end a phase normally
    from jpinn.optim import FAULTS

    assert FAULTS == {1, 8, 9, 11, 20}
    assert StopReason(0).message == "budget" and StopReason.NONFINITE.message.startswith("non-finite")
    assert stop_reason(6) == StopReason.LINE_SEARCH_STALL.message and stop_reason(np.int32(7)).startswith("Armijo")
    assert stop_reason(99) == "code 99"  # a code this version does not know
    assert dict(STOP_REASONS) == {int(r): r.message for r in StopReason}
    with pytest.raises(TypeError):
        STOP_REASONS[99] = "read-only"
    # the modules' names are the same codes, as plain ints
    from jpinn.optim.gd import ARMIJO_FAILED as GD_ARMIJO
    from jpinn.optim.lbfgs import LINE_SEARCH_STALL
    from jpinn.optim.nncg import ARMIJO_FAILED, CG_BREAKDOWN, PRECONDITIONER_FAILED
    from jpinn.train import DIVERGED

    assert (RUNNING, NONFINITE, LINE_SEARCH_STALL, ARMIJO_FAILED, GD_ARMIJO, PRECONDITIONER_FAILED, CG_BREAKDOWN,
            DIVERGED) == (0, 1, 6, 7, 7, 8, 9, 20)
    assert all(type(code) is int for code in (RUNNING, NONFINITE, ARMIJO_FAILED, DIVERGED))


def test_non_finite_step_ends_the_phase_keeping_finite_parameters(tiny_problem):
    _, _, _, loss, w0 = tiny_problem()
    records = []
    result = jpinn.train(
        loss, w0, [jpinn.Phase(_Exploding(), 50), jpinn.Phase(Adam(1e-3), 10)],
        log_every=4, callback=records.append, progress=False,
    )
    first = result.phases[0]
    assert first.stop_code == NONFINITE and "non-finite" in first.stop_reason
    assert first.iterations == 5 and first.steps == 6  # 5 good steps, the 6th discarded
    assert np.all(np.isfinite(np.asarray(result.w)))
    assert result.phases[1].iterations == 10  # the next phase went on from finite parameters
    assert all(np.isfinite(r["loss"]) for r in records)


def test_float64_end_to_end(tiny_problem, x64):
    _, _, _, loss, w0 = tiny_problem(dtype=x64)
    assert w0.dtype == jnp.float64
    result = jpinn.train(loss, w0, [jpinn.Phase(Adam(1e-2), 20)], log_every=10, progress=False)
    assert result.w.dtype == jnp.float64
    total, parts = loss(result.w)
    assert total.dtype == jnp.float64 and all(v.dtype == jnp.float64 for v in parts.values())


def test_train_argument_errors(tiny_problem):
    _, _, _, loss, w0 = tiny_problem()
    with pytest.raises(ValueError, match="log_every"):
        jpinn.train(loss, w0, [jpinn.Phase(Adam(), 10)], log_every=0)
    with pytest.raises(ValueError, match="phases"):
        jpinn.train(loss, w0, [])
    with pytest.raises(ValueError, match="iterations"):
        jpinn.Phase(Adam(), 0)


def test_phase_log_interval_overrides_the_run_interval(tiny_problem):
    _, _, _, loss, w0 = tiny_problem()
    records = []
    jpinn.train(loss, w0, [jpinn.Phase(Adam(1e-3), 20), jpinn.Phase(Adam(1e-4), 3, log_every=1)],
                log_every=10, callback=records.append, progress=False)
    assert [r["iteration"] for r in records] == [0, 10, 20, 21, 22, 23]
    with pytest.raises(ValueError, match="log_every"):
        jpinn.Phase(Adam(), 5, log_every=0)


def _no_time(records):
    return [{k: v for k, v in r.items() if k != "time"} for r in records]


@pytest.mark.slow
def test_programs_compiled_ahead_give_the_same_run(tiny_problem):
    """The later phases' programs, compiled in the background while the first phase trains,
    give the run a foreground compilation gives, bit for bit; each phase compiles once."""
    from jpinn.optim import NNCG

    _, _, _, loss, w0 = tiny_problem()
    phases = [jpinn.Phase(Adam(1e-2), 30), jpinn.Phase(LBFGS(), 40), jpinn.Phase(NNCG(rank=5, cg_max_iter=5), 3)]
    results = [jpinn.train(loss, w0, phases, log_every=10, progress=False, compile_ahead=ahead) for ahead in (True, False)]
    np.testing.assert_array_equal(np.asarray(results[0].w), np.asarray(results[1].w))
    assert _no_time(results[0].records) == _no_time(results[1].records)
    assert [p.iterations for p in results[0].phases] == [30, 40, 3]
    _Counting.traces.clear()
    jax.clear_caches()
    jpinn.train(loss, w0, [jpinn.Phase(Adam(1e-2), 20), jpinn.Phase(_Counting(), 20)], log_every=10, progress=False)
    assert len(_Counting.traces) >= 1
    traced = len(_Counting.traces)
    jax.clear_caches()
    _Counting.traces.clear()
    jpinn.train(loss, w0, [jpinn.Phase(Adam(1e-2), 20), jpinn.Phase(_Counting(), 20)], log_every=10, progress=False,
                compile_ahead=False)
    assert len(_Counting.traces) == traced  # the phase's program was built once, not again at its start


def test_programs_compiled_ahead_keep_the_callers_precision(tiny_problem):
    """A float64 run inside ``jax.enable_x64`` (a thread-local setting): the background
    threads compile float64 programs too."""
    with jax.enable_x64(True):
        _, _, _, loss, w0 = tiny_problem(dtype=jnp.float64)
        result = jpinn.train(loss, w0, [jpinn.Phase(Adam(1e-2), 10), jpinn.Phase(LBFGS(), 20)], log_every=10,
                             progress=False)
        assert result.w.dtype == jnp.float64
        alone = jpinn.train(loss, w0, [jpinn.Phase(Adam(1e-2), 10), jpinn.Phase(LBFGS(), 20)], log_every=10,
                            progress=False, compile_ahead=False)
        np.testing.assert_array_equal(np.asarray(result.w), np.asarray(alone.w))


def test_resampling_draws_fresh_interior_points_deterministically(tiny_problem, tmp_path):
    pde, data, _, f, w0 = tiny_problem(n_residual=100)
    from jpinn.data import resample_interior

    again = resample_interior(pde, data, 3, seed=0, grid=(33, 21))
    third = resample_interior(pde, data, 3, seed=0, grid=(33, 21))
    assert resample_interior(pde, data, 0, seed=0, grid=(33, 21)) is data
    assert np.array_equal(np.asarray(again.sets["residual"].points), np.asarray(third.sets["residual"].points))
    fourth = resample_interior(pde, data, 4, seed=0, grid=(33, 21))
    assert not np.array_equal(np.asarray(again.sets["residual"].points), np.asarray(fourth.sets["residual"].points))
    assert again.counts() == data.counts()
    for name in ("initial", "boundary"):  # only the interior is redrawn
        assert again.sets[name] is data.sets[name]
    points = np.asarray(again.sets["residual"].points)
    assert len({tuple(p) for p in points}) == 100  # without replacement, from the grid's interior
    assert points[:, 1].min() > 0 and 0 < points[:, 0].min() and points[:, 0].max() < 2 * np.pi

    rounds = []

    def fresh(r):
        rounds.append(r)
        return resample_interior(pde, data, r, seed=0, grid=(33, 21))

    phases = [jpinn.Phase(Adam(1e-2), 40), jpinn.Phase(LBFGS(), 20)]
    resample = jpinn.Resample(15, fresh, (0,))
    run = jpinn.train(f, w0, phases, log_every=10, progress=False, resample=resample)
    assert rounds == [1, 2]  # chunks start at 0, 10, 20, 30: rounds 0, 0, 1, 2
    plain = jpinn.train(f, w0, phases, log_every=10, progress=False)
    assert not np.array_equal(np.asarray(run.w), np.asarray(plain.w))
    # the same as training each chunk by hand on its round's points
    by_hand = jpinn.train(f, w0, [jpinn.Phase(Adam(1e-2), 40)], log_every=10, progress=False, resample=resample)
    assert np.array_equal(np.asarray(by_hand.phase_w[0]), np.asarray(run.phase_w[0]))
    folders = []

    def save(checkpoint):  # on disk and read back, as a resumed run gets it (chunks donate the live arrays)
        if checkpoint.phase_index == 0 and checkpoint.state is not None and checkpoint.iterations == 30:
            folders.append(tmp_path / "ck")
            jpinn.io.save_train_checkpoint(folders[-1], checkpoint, {"seed": 0})

    full = jpinn.train(f, w0, phases, log_every=10, progress=False, resample=resample, checkpoint=save,
                       checkpoint_every=10)
    assert np.array_equal(np.asarray(full.w), np.asarray(run.w))
    mid, _ = jpinn.io.load_train_checkpoint(folders[0], f, w0, phases)
    resumed = jpinn.train(f, w0, phases, log_every=10, progress=False, resample=resample, resume=mid,
                          records=full.records[: mid.n_records])
    assert np.array_equal(np.asarray(resumed.w), np.asarray(full.w))
    with pytest.raises(ValueError, match="data.resample_every"):
        jpinn.Resample(0, fresh, (0,))
