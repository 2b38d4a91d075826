"""The driver: runs a list of phases, each a compiled chunk of optimizer steps at a time.

Between two log points the steps run as one ``lax.scan`` inside one compiled function;
Python only sees chunk boundaries, where it reads the loss, calls the logging callback and
updates the progress bar. The driver holds no optimizer maths: any ``AbstractOptimizer``
runs as a phase unchanged.

Compilation ahead (``compile_ahead=True``, the default): once the first phase's program is
compiled and training has started, the later phases' programs are traced and compiled in a
background, one thread per program, while the earlier phases train. A phase then waits only
for what is not ready yet (its ``compile_seconds``). The programs are the ones the
foreground would compile (built from arrays of the same shapes, dtypes and placement, under
the caller's precision settings), so the numbers do not change; only the timing does: on a
CPU the background compilation shares the cores with the training it overlaps.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .optim import NONFINITE, RUNNING, AbstractOptimizer, StopReason, any_member, stop_reason

# the divergence guard's stop code, as a plain int (jpinn.optim.StopReason names them all)
DIVERGED = int(StopReason.DIVERGED)


@dataclasses.dataclass(frozen=True)
class Resample:
    """Fresh residual points during training: in the phases ``phases`` (indices), each
    chunk starting at global iteration i trains on ``data(i // every)`` (round 0: the
    loss's own points), so the points change at the first log point at or after every
    ``every`` iterations. ``data(round)`` returns the loss's ``Collocation`` with the
    interior points of that round (``jpinn.data.resample_interior``): a pure function of the
    round, so a resumed run trains on the same points. Other phases keep the loss's own
    points. Solo runs only (not ensembles)."""

    every: int
    data: Callable[[int], Any]
    phases: tuple[int, ...]

    def __post_init__(self):
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ValueError(f"data.resample_every: must be an integer >= 1 or null, got {self.every!r}")


@dataclasses.dataclass(frozen=True)
class Phase:
    """Run ``optimizer`` for ``iterations`` iterations, counted as the study counts them.

    ``log_every`` overrides the run's log interval for this phase (NNCG steps are
    expensive enough to log every one of them).
    """

    optimizer: AbstractOptimizer
    iterations: int
    name: str | None = None
    log_every: int | None = None  # this phase's log interval; None: train()'s log_every

    def __post_init__(self):
        if isinstance(self.iterations, bool) or not isinstance(self.iterations, int) or self.iterations <= 0:
            raise ValueError(f"iterations: must be a positive integer, got {self.iterations!r}")
        if self.log_every is not None and (
            isinstance(self.log_every, bool) or not isinstance(self.log_every, int) or self.log_every <= 0
        ):
            raise ValueError(f"log_every: must be a positive integer or null, got {self.log_every!r}")
        if not isinstance(self.optimizer, AbstractOptimizer):
            raise TypeError(f"optimizer: expected an AbstractOptimizer, got {type(self.optimizer).__name__}")

    @property
    def label(self) -> str:
        return self.name or self.optimizer.name

    @property
    def steps(self) -> int:
        """Number of optimizer steps the budget allows."""
        return math.ceil(self.iterations / self.optimizer.iterations_per_step)


@dataclasses.dataclass
class PhaseReport:
    """What one phase did: budget; iterations (the study's count), optimizer steps and
    loss-and-gradient evaluations done; seconds; why it stopped."""

    name: str
    optimizer: str
    hyperparameters: dict[str, Any]
    iterations_budget: int
    iterations: int
    steps: int
    evaluations: int
    seconds: float
    compile_seconds: float
    stop_code: int
    stop_reason: str
    loss: float

    @property
    def seconds_per_iteration(self) -> float:
        return self.seconds / self.iterations if self.iterations else float("nan")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["seconds_per_iteration"] = self.seconds_per_iteration
        return out


@dataclasses.dataclass
class TrainResult:
    """Final parameters, one report per phase, the log records, each phase's final
    optimizer state (``states[k].memory`` of an L-BFGS phase is its ``LBFGSMemory``) and
    each phase's final parameters (``phase_w[k]``, where that state belongs)."""

    w: Float[Array, " p"]
    phases: list[PhaseReport]
    records: list[dict[str, Any]]
    states: list[Any] = dataclasses.field(default_factory=list)
    phase_w: list[Any] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class TrainCheckpoint:
    """Everything ``train`` needs to continue a run exactly where it was: taken at a chunk
    boundary inside a phase (``state`` is that phase's optimizer state; ``steps``,
    ``iterations``, ``evaluations`` and ``seconds`` what the phase did so far) or at a phase
    end (``phase_index`` is then the next phase and ``state`` None: it starts fresh, as it
    would have). ``reports``, ``states`` and ``phase_w`` are the finished phases';
    ``n_records`` how many log records were emitted up to this point; ``elapsed`` the run's
    wall seconds so far; ``loss_limits`` the finished phases' divergence limits (a phase
    reopened with a larger budget keeps its own). The optimizer states hold their own PRNG
    keys (NNCG's sketch)."""

    phase_index: int
    w: Any
    state: Any
    steps: int
    iterations: int
    evaluations: int
    seconds: float
    compile_seconds: float
    total_iterations: int
    reports: list[PhaseReport]
    states: list[Any]
    phase_w: list[Any]
    n_records: int
    elapsed: float
    loss_limit: float = math.inf
    status: int = RUNNING  # an ensemble member may have stopped while the others go on
    loss_limits: list[float] = dataclasses.field(default_factory=list)  # the finished phases' divergence limits


def _all_finite(tree) -> Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree) if eqx.is_inexact_array(x)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def _run_chunk(fixed: tuple[AbstractOptimizer, Callable], w, state, n_active: Array, loss_limit: Array,
               chunk_steps: int):
    """Up to ``chunk_steps`` steps (the first ``n_active`` of them), then the loss at the end.

    Compiled once per phase: ``n_active`` is traced, so the last, shorter chunk reuses the
    same program. A loss or gradient that is not finite at w sends the parameters back to
    those before the step that led to w (whose loss and gradient were finite) and ends the
    phase with ``NONFINITE``; new parameters that are not finite are discarded (w kept),
    likewise; a loss above ``loss_limit`` ends it with ``DIVERGED``, back to the previous
    parameters too (a learning rate too large for Adam: the loss
    explodes long before it overflows); an optimizer status other than ``RUNNING`` ends it
    after its step. The parameters and the optimizer
    state are donated (every argument but ``fixed``, the optimizer and the loss with its
    collocation arrays): the outputs reuse their buffers, so a chunk holds one copy of the
    L-BFGS history or the Nystrom factor, not two.
    """
    optimizer, f = fixed
    info_shape = eqx.filter_eval_shape(optimizer.step, f, w, state)[2]
    zero_info = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), info_shape)
    carry0 = (w, w, state, jnp.asarray(RUNNING, jnp.int32), jnp.int32(0), jnp.int32(0), jnp.int32(0), zero_info)

    def body(carry, i):
        def advance(carry):
            w, w_prev, state, _, iterations, evaluations, steps, _ = carry
            w_new, state_new, info = optimizer.step(f, w, state)
            # the loss or gradient at w not finite, or past the limit: w itself is bad, go
            # back to w_prev; only the new parameters not finite: discard the step, keep w
            at_w_finite = _all_finite((info["loss"], info["grad_norm"]))
            finite = at_w_finite & _all_finite(w_new)
            diverged = finite & (info["loss"] > loss_limit)
            good = finite & ~diverged
            back = ~at_w_finite | diverged
            keep = lambda new, old: jax.tree_util.tree_map(  # noqa: E731
                lambda a, b: jnp.where(good, a, b), new, old
            )
            status = jnp.where(finite, jnp.where(diverged, DIVERGED, info["status"]), NONFINITE).astype(jnp.int32)
            return (
                jnp.where(good, w_new, jnp.where(back, w_prev, w)),
                jnp.where(good, w, w_prev),
                keep(state_new, state),
                status,
                iterations + jnp.where(good, info["iterations"], 0),
                evaluations + info["evaluations"],
                steps + 1,
                info,
            )

        active = (i < n_active) & (carry[3] == RUNNING)

        def advance_active(carry):  # inside an ensemble: the members that are active advance
            return jax.tree_util.tree_map(lambda a, b: jnp.where(active, a, b), advance(carry), carry)

        return jax.lax.cond(any_member(active), advance_active, lambda c: c, carry), None

    (w, w_prev, state, status, iterations, evaluations, steps, info), _ = jax.lax.scan(
        body, carry0, jnp.arange(chunk_steps)
    )
    value_and_grad = jax.value_and_grad(f, has_aux=True)
    (loss, components), grad = value_and_grad(w)
    # the chunk's last step may have led to a bad point: its loss is only known here
    bad_end = ~_all_finite((loss, grad))
    over = (status == RUNNING) & (bad_end | (loss > loss_limit))
    status = jnp.where(over, jnp.where(bad_end, NONFINITE, DIVERGED), status).astype(jnp.int32)
    kept = (w, ((loss, components), grad))
    w, ((loss, components), grad) = jax.lax.cond(
        any_member(over),
        lambda: jax.tree_util.tree_map(lambda a, b: jnp.where(over, a, b), (w_prev, value_and_grad(w_prev)), kept),
        lambda: kept,
    )
    return w, state, status, iterations, evaluations, steps, info, loss, components, jnp.linalg.norm(grad)


_chunk = eqx.filter_jit(_run_chunk, donate="all-except-first")


@eqx.filter_jit
def _loss_at(f, w):
    return f(w)[0]


def _floats(tree: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in tree.items():
        value = jax.device_get(value)
        out[key] = value.item() if hasattr(value, "item") and getattr(value, "size", 1) == 1 else value.tolist()
    return out


class _Solo:
    """The driver's view of one run: the compiled chunk as it always was (the ensemble
    engine, ``jpinn.ensemble``, gives the same view of a vmapped stack of runs)."""

    size = 1

    def __init__(self, f: Callable, phases: Sequence[Phase]):
        self.f = f
        self.phases = [list(phases)]

    def fixed(self, index: int):
        return (self.phases[0][index].optimizer, self.f)

    def init(self, fixed, w):
        optimizer, f = fixed
        return eqx.filter_jit(optimizer.init)(f, w)

    def start_losses(self, fixed, w) -> list[float]:
        return [float(_loss_at(fixed[1], w))]

    def compile(self, fixed, w, state, limit, chunk_steps: int):
        compiled = _chunk.lower(fixed, w, state, jnp.int32(0), limit, chunk_steps).compile()
        return lambda w, state, n_active, limit, fixed=fixed: compiled(fixed, w, state, n_active, limit, chunk_steps)

    def with_data(self, fixed, data):
        """``fixed`` with its loss on the points ``data`` (same shapes: the same program)."""
        optimizer, f = fixed
        return optimizer, dataclasses.replace(f, data=data)

    def counts(self, values: Sequence[int]) -> Array:
        return jnp.int32(values[0])

    def limits(self, values: Sequence[float], dtype) -> Array:
        return jnp.asarray(values[0], dtype)

    def member(self, tree, k: int):
        return tree

    def stack(self, trees: Sequence[Any]):
        return trees[0]


def train(
    f: Callable,
    w: Float[Array, " p"],
    phases: Sequence[Phase],
    *,
    log_every: int = 100,
    callback: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = True,
    checkpoint: Callable[[TrainCheckpoint], None] | None = None,
    checkpoint_every: int | None = None,
    resume: TrainCheckpoint | None = None,
    records: Sequence[dict[str, Any]] = (),
    divergence: float | None = 1e8,
    compile_ahead: bool = True,
    resample: Resample | None = None,
) -> TrainResult:
    """Run ``phases`` one after the other from ``w``; each starts with a fresh optimizer state.

    ``callback(record)`` is called at iteration 0 and at every log point (every
    ``log_every`` iterations, or the phase's own ``log_every``, and at each phase end) with a dict of plain numbers: phase,
    iteration (over the whole run), phase_iteration, step (optimizer steps in the phase),
    evaluations (loss-and-gradient evaluations in the phase), loss, the loss components,
    grad_norm, the last step's optimizer info, status and wall seconds since the start.
    A phase that stops early (a non-finite value, an optimizer's own stop) ends cleanly and
    the next phase starts from its last finite parameters.

    ``divergence``: a phase whose loss exceeds ``divergence`` times the loss where it started
    ends with the reason "diverged" (None: never).

    ``checkpoint(TrainCheckpoint)`` is called at the first log point after every
    ``checkpoint_every`` iterations of a phase (None: never inside a phase) and at each phase
    end. ``resume`` continues from such a checkpoint (``records``: the log records emitted
    before it, for the result): since checkpoints fall on chunk boundaries and a phase's
    chunks do not depend on where the run started, the resumed run executes the same
    compiled chunks on the same arrays as an uninterrupted one, and ends with the same bits.

    ``compile_ahead``: compile the later phases' programs in background threads while the
    earlier ones train (the module's docstring); False compiles each phase when it starts.

    ``resample``: fresh residual points every so many iterations of some phases
    (``Resample``); None: the loss's points throughout.

    Several runs of the same shape train together with ``jpinn.ensemble.train_ensemble``.
    """
    phases = list(phases)
    check_phases(phases)
    return drive(
        _Solo(f, phases), w, log_every=log_every, callbacks=[callback], progress=progress,
        checkpoints=[checkpoint] if checkpoint is not None else None, checkpoint_every=checkpoint_every,
        resumes=[resume] if resume is not None else None, records=[records], divergence=divergence,
        compile_ahead=compile_ahead, resample=resample,
    )[0]


def check_phases(phases: Sequence[Phase]) -> None:
    if not phases:
        raise ValueError("phases: need at least one phase")


def _chunk_steps(phase: Phase, log_every: int) -> int:
    """Optimizer steps per compiled chunk: one log interval's worth (at least one step)."""
    return max(1, min(phase.steps, (phase.log_every or log_every) // phase.optimizer.iterations_per_step))


class _Ahead:
    """The later phases' programs, compiled in background threads, one per program.

    Each is lowered from a template: a copy of the parameters (same shape, dtype and
    placement) and the optimizer state its ``init`` builds from that copy, so the program is
    the one the phase would compile when it starts. The worker runs under the caller's
    thread-local precision settings (x64, matmul precision)."""

    def __init__(self, engine, w, phases: Sequence[Phase], indices: Sequence[int], log_every: int):
        self.engine = engine
        # one thread per program: XLA compiles them in parallel (it releases the GIL), the
        # tracing before it takes turns
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=len(indices), thread_name_prefix="jpinn-compile")
        template = jax.tree_util.tree_map(jnp.copy, w)
        settings = (bool(jax.config.jax_enable_x64), jax.config.jax_default_matmul_precision)
        self.futures = {
            index: self.executor.submit(self._prepare, index, template, _chunk_steps(phases[index], log_every), settings)
            for index in indices
        }
        self.executor.shutdown(wait=False)  # the queue runs on; nothing new is submitted

    def _prepare(self, index: int, template, chunk_steps: int, settings):
        x64, precision = settings
        with jax.enable_x64(x64), jax.default_matmul_precision(precision):
            fixed = self.engine.fixed(index)
            state = self.engine.init(fixed, template)
            limit = self.engine.limits([1.0] * self.engine.size, template.dtype)
            return self.engine.compile(fixed, template, state, limit, chunk_steps)

    def ready(self, index: int) -> bool:
        """Whether phase ``index``'s program is compiled already."""
        future = self.futures.get(index)
        return future is not None and future.done()

    def take(self, index: int):
        """Phase ``index``'s program (waits for it), or None if none was prepared."""
        future = self.futures.pop(index, None)
        return None if future is None else future.result()

    def cancel(self) -> None:
        for future in self.futures.values():
            future.cancel()
        self.futures.clear()


def drive(engine, w, *, log_every, callbacks, progress, checkpoints, checkpoint_every, resumes, records, divergence,
          compile_ahead: bool = True, resample: Resample | None = None):
    """The phase loop of ``train`` for ``engine.size`` runs at once (one, or an ensemble's
    members): each member keeps its own counters, status, divergence limit, log records and
    checkpoints; a chunk advances every member still running, and a phase ends when none is.
    ``w`` is the engine's parameters (a vector, or the members' stacked)."""
    aheads: list[_Ahead] = []  # the background compilation, once started
    try:
        with _InterruptAtChunkEnd() as interrupt:
            return _drive(engine, w, log_every=log_every, callbacks=callbacks, progress=progress,
                          checkpoints=checkpoints, checkpoint_every=checkpoint_every, resumes=resumes,
                          records=records, divergence=divergence, compile_ahead=compile_ahead,
                          started=aheads.append, resample=resample, interrupt=interrupt)
    finally:  # an error or Ctrl-C: programs not yet started are dropped, not compiled
        for ahead in aheads:
            ahead.cancel()


class Interrupted(Exception):
    """Training stopped by Ctrl-C (SIGINT) at a chunk boundary, after a checkpoint there
    (when the run writes checkpoints): ``phase`` (its label), ``phase_index``, ``iteration``
    (over the whole run) and ``checkpointed``."""

    def __init__(self, phase: str, phase_index: int, iteration: int, checkpointed: bool):
        self.phase, self.phase_index, self.iteration, self.checkpointed = phase, phase_index, iteration, checkpointed
        super().__init__(f"interrupted in phase {phase} at iteration {iteration}"
                         + (" (checkpoint written)" if checkpointed else ""))


class _InterruptAtChunkEnd:
    """While training in the main thread: the first SIGINT asks the phase loop to stop at the
    end of the chunk it is in (checkpoint, then ``Interrupted``); a second one interrupts at
    once (``KeyboardInterrupt``, Python's default). Elsewhere (a thread): Python's default."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\njpinn: interrupted; stopping at the end of this chunk (Ctrl-C again to stop now)",
              file=sys.stderr, flush=True)

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _reopened(engine, w0, resumes, divergence):
    """Checkpoints taken where a phase ended on its budget, when that budget has since grown
    (resuming with a larger budget: "train longer"), as checkpoints inside that phase: its
    final optimizer state, counters, seconds, status and divergence limit, as if it had
    paused there. Other checkpoints are returned as they are. ``w0``: the run's initial
    parameters (the engine's), where phase 0 started."""
    index = resumes[0].phase_index - 1
    if resumes[0].state is not None or index < 0:
        return resumes
    phase = engine.phases[0][index]
    if not any(r.reports[index].stop_code == RUNNING and r.reports[index].steps < phase.steps for r in resumes):
        return resumes  # the budget did not grow, or the phase had ended on its own
    limits = [r.loss_limits[index] if len(r.loss_limits) > index else None for r in resumes]
    if None in limits:  # a checkpoint from before the limits were kept: the rule again, where the phase started
        if divergence is None:
            limits = [math.inf] * len(resumes)
        else:
            start = w0 if index == 0 else engine.stack([jnp.asarray(r.phase_w[index - 1]) for r in resumes])
            tiny = float(jnp.finfo(start.dtype).tiny)
            limits = [divergence * max(abs(v), tiny) for v in engine.start_losses(engine.fixed(index), start)]
    out = []
    for r, limit in zip(resumes, limits):
        report = r.reports[index]
        out.append(dataclasses.replace(
            r, phase_index=index, state=r.states[index], steps=report.steps, iterations=report.iterations,
            evaluations=report.evaluations, seconds=report.seconds, compile_seconds=report.compile_seconds,
            total_iterations=r.total_iterations - report.iterations, reports=r.reports[:index],
            states=r.states[:index], phase_w=r.phase_w[:index], loss_limits=r.loss_limits[:index],
            loss_limit=limit, status=report.stop_code,
        ))
    return out


def _drive(engine, w, *, log_every, callbacks, progress, checkpoints, checkpoint_every, resumes, records, divergence,
           compile_ahead, started, resample=None, interrupt=None):
    from tqdm.auto import tqdm

    size = engine.size
    phases = engine.phases[0]
    if resample is not None and not hasattr(engine, "with_data"):
        raise ValueError("data.resample_every: resampling serves single runs, not ensembles")
    if isinstance(log_every, bool) or not isinstance(log_every, int) or log_every <= 0:
        raise ValueError(f"log_every: must be a positive integer, got {log_every!r}")
    if checkpoint_every is not None and (
        isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every <= 0
    ):
        raise ValueError(f"checkpoint_every: must be a positive integer or None, got {checkpoint_every!r}")
    if divergence is not None and (isinstance(divergence, bool) or not isinstance(divergence, (int, float))
                                   or not 1 < divergence < math.inf):
        raise ValueError(f"divergence: must be a finite number > 1 or None, got {divergence!r}")
    if resumes is not None:
        if len({r.phase_index for r in resumes}) != 1 or len({r.state is None for r in resumes}) != 1:
            raise ValueError("resume: the members' checkpoints were not taken at the same point")
        if not 0 <= resumes[0].phase_index <= len(phases):
            raise ValueError(
                f"resume: checkpoint is at phase {resumes[0].phase_index}, the run has {len(phases)} phases"
            )

        resumes = _reopened(engine, w, resumes, divergence)

    members = range(size)
    records = [list(r) for r in records]
    loss_limits = [list(r.loss_limits) for r in resumes] if resumes else [[] for _ in members]
    reports = [list(r.reports) for r in resumes] if resumes else [[] for _ in members]
    states = [list(r.states) for r in resumes] if resumes else [[] for _ in members]
    phase_w = [list(r.phase_w) for r in resumes] if resumes else [[] for _ in members]
    total_iterations = [r.total_iterations for r in resumes] if resumes else [0] * size
    start = time.perf_counter() - (resumes[0].elapsed if resumes else 0.0)
    first = resumes[0].phase_index if resumes else 0
    if resumes is not None:
        w = engine.stack([jnp.asarray(r.w) for r in resumes])

    def snapshot(phase_index, w, state, steps, iterations, evaluations, seconds, compile_seconds,
                 loss_limit=None, status=None):
        for k in members:
            checkpoints[k](TrainCheckpoint(
                loss_limit=math.inf if loss_limit is None else loss_limit[k],
                status=RUNNING if status is None else status[k],
                phase_index=phase_index, w=engine.member(w, k),
                state=None if state is None else engine.member(state, k),
                steps=steps[k], iterations=iterations[k], evaluations=evaluations[k], seconds=seconds[k],
                compile_seconds=compile_seconds, total_iterations=total_iterations[k], reports=list(reports[k]),
                states=list(states[k]), phase_w=list(phase_w[k]), n_records=len(records[k]),
                elapsed=time.perf_counter() - start, loss_limits=list(loss_limits[k]),
            ))

    def emit(k, phase_index, phase, phase_iterations, steps, evaluations, loss, components, grad_norm, info, status):
        record = {
            "phase": phase.label,
            "phase_index": phase_index,
            "iteration": total_iterations[k] + phase_iterations,
            "phase_iteration": phase_iterations,
            "step": steps,
            "evaluations": evaluations,
            "loss": float(loss),
            **{name: float(v) for name, v in components.items()},
            "grad_norm": float(grad_norm),
            "status": int(status),
            "info": _floats({key: v for key, v in info.items()
                             if key not in ("loss", "grad_norm", "status", "iterations", "evaluations")}),
            "time": time.perf_counter() - start,
        }
        records[k].append(record)
        if callbacks[k] is not None:
            callbacks[k](record)

    def per_member(out):
        """A chunk's outputs (w and state aside) as one tuple of host values per member,
        fetched from the device in one transfer."""
        host = jax.device_get(out[2:])
        out = []
        for k in members:
            status, iterations, evaluations, steps, info, loss, components, grad_norm = engine.member(host, k)
            out.append((int(status), int(iterations), int(evaluations), int(steps), info, loss, components, grad_norm))
        return out

    zeros = [0] * size
    ahead = None
    if checkpoints is not None and resumes is None:  # a crash before the first chunk resumes from here
        snapshot(0, w, None, zeros, zeros, zeros, [0.0] * size, 0.0)
    for index, phase in enumerate(phases):
        if index < first:
            continue
        chunk_steps = _chunk_steps(phase, log_every)
        mid_phase = resumes is not None and index == first and resumes[0].state is not None
        fixed = engine.fixed(index)
        state = engine.stack([r.state for r in resumes]) if mid_phase else engine.init(fixed, w)
        # the chunks donate w and state: own copies, so the caller's arrays stay valid and
        # no buffer is donated twice (a state may hold w itself)
        w, state = jax.tree_util.tree_map(jnp.copy, (w, state))

        if mid_phase:
            loss_limit = [r.loss_limit for r in resumes]
            if any(r.steps > phase.steps for r in resumes):
                raise ValueError(f"resume: phase {index} ({phase.label}) has run {max(r.steps for r in resumes)} steps"
                                 f" already, more than its budget of {phase.steps}")
        elif divergence is None:
            loss_limit = [math.inf] * size
        else:  # from the loss where the phase starts (at least the dtype's tiny, for a zero loss)
            tiny = float(jnp.finfo(w.dtype).tiny)
            loss_limit = [divergence * max(abs(v), tiny) for v in engine.start_losses(fixed, w)]
        limit = lambda: engine.limits(loss_limit, w.dtype)  # noqa: E731  (a fresh buffer: chunks donate theirs)

        t0 = time.perf_counter()
        if progress and not (ahead is not None and ahead.ready(index)):  # tens of seconds under load
            print(f"[{index + 1}/{len(phases)}] {phase.label}: compiling ...", file=sys.stderr, flush=True)
        compiled = ahead.take(index) if ahead is not None else None
        if compiled is None:
            compiled = engine.compile(fixed, w, state, limit(), chunk_steps)
        compile_seconds = time.perf_counter() - t0  # the wait: a program compiled ahead may be ready
        if compile_ahead and ahead is None and index + 1 < len(phases):  # the first program is ready: the rest
            ahead = _Ahead(engine, w, phases, range(index + 1, len(phases)), log_every)
            started(ahead)

        if index == 0 and not records[0]:  # zero steps: the loss at the start
            out = compiled(w, state, engine.counts(zeros), limit())
            w, state = out[0], out[1]
            for k, (_, _, _, _, _, loss, components, grad_norm) in enumerate(per_member(out)):
                emit(k, index, phase, 0, 0, 0, loss, components, grad_norm, {}, RUNNING)

        # an optimizer with several inner iterations per step (L-BFGS) is budgeted in steps, and
        # a step may use fewer inner iterations than its maximum: its bar counts steps
        per_step = phase.optimizer.iterations_per_step
        bar = tqdm(
            total=(phase.steps if per_step > 1 else phase.iterations) * size,
            desc=f"[{index + 1}/{len(phases)}] {phase.label}" + (f" x{size}" if size > 1 else ""),
            unit="step" if per_step > 1 else "it",
            disable=not progress,
            leave=True,
            dynamic_ncols=True,
        )
        done_steps, done_iterations, done_evaluations = list(zeros), list(zeros), list(zeros)
        seconds_before = [0.0] * size
        status = [RUNNING] * size
        if mid_phase:
            done_steps = [r.steps for r in resumes]
            done_iterations = [r.iterations for r in resumes]
            done_evaluations = [r.evaluations for r in resumes]
            seconds_before = [r.seconds for r in resumes]
            status = [r.status for r in resumes]
            compile_seconds = resumes[0].compile_seconds + compile_seconds
        last_checkpoint = max(done_iterations)
        # a member's loss so far: its last record (one that stopped before the checkpoint
        # keeps it, as it would have in the uninterrupted run)
        loss = [float(records[k][-1]["loss"]) if mid_phase and records[k] else float("nan") for k in members]
        t_phase = time.perf_counter()
        seconds = list(seconds_before)
        running = lambda k: status[k] == RUNNING and done_steps[k] < phase.steps  # noqa: E731
        resampling = resample is not None and index in resample.phases
        round_, chunk_fixed = 0, fixed
        while any(running(k) for k in members):
            active = [running(k) for k in members]
            # chunks end on multiples of chunk_steps from the phase's start; a phase reopened
            # with a larger budget (at an old end between them) first goes to the next one
            n_active = [min(chunk_steps - done_steps[k] % chunk_steps, phase.steps - done_steps[k]) if active[k] else 0
                        for k in members]
            if resampling:  # the points of the round the chunk's span starts in (Resample; Adam: steps = iterations)
                now_round = (total_iterations[0] + done_iterations[0] - done_steps[0] % chunk_steps) // resample.every
                if now_round != round_:
                    round_, chunk_fixed = now_round, engine.with_data(fixed, resample.data(now_round))
                out = compiled(w, state, engine.counts(n_active), limit(), fixed=chunk_fixed)
            else:
                out = compiled(w, state, engine.counts(n_active), limit())
            w, state = out[0], out[1]
            chunk = per_member(out)  # waits for the chunk: the clock below includes its work
            now = time.perf_counter()
            for k, (st, iterations, evaluations, steps, info, member_loss, components, grad_norm) in enumerate(chunk):
                if not active[k]:  # stopped earlier: its chunk did nothing
                    continue
                status[k] = st
                done_steps[k] += steps
                done_iterations[k] += iterations
                done_evaluations[k] += evaluations
                loss[k] = float(member_loss)
                seconds[k] = seconds_before[k] + now - t_phase
                emit(k, index, phase, done_iterations[k], done_steps[k], done_evaluations[k], member_loss,
                     components, grad_norm, info, st)
            bar.n = sum(done_steps) if per_step > 1 else sum(min(i, phase.iterations) for i in done_iterations)
            bar.set_postfix(loss=f"{min(loss):.3e}", refresh=False)
            bar.refresh()
            if (checkpoints is not None and checkpoint_every is not None and any(running(k) for k in members)
                    and max(done_iterations) - last_checkpoint >= checkpoint_every):
                snapshot(index, w, state, done_steps, done_iterations, done_evaluations, seconds,
                         compile_seconds, loss_limit, status)
                last_checkpoint = max(done_iterations)
            if interrupt is not None and interrupt.requested:  # Ctrl-C: stop here, resumable
                bar.close()
                written = checkpoints is not None
                if written and max(done_iterations) != last_checkpoint:
                    snapshot(index, w, state, done_steps, done_iterations, done_evaluations, seconds,
                             compile_seconds, loss_limit, status)
                raise Interrupted(phase.label, index, total_iterations[0] + done_iterations[0], written)
        bar.close()
        for k in members:
            member_optimizer = engine.phases[k][index].optimizer
            reports[k].append(
                PhaseReport(
                    name=phase.label,
                    optimizer=member_optimizer.name,
                    hyperparameters=member_optimizer.hyperparameters(),
                    iterations_budget=phase.iterations,
                    iterations=done_iterations[k],
                    steps=done_steps[k],
                    evaluations=done_evaluations[k],
                    seconds=seconds[k],
                    compile_seconds=compile_seconds,
                    stop_code=status[k],
                    stop_reason=stop_reason(status[k]) + (
                        f" ({done_steps[k]} steps of at most {per_step} iterations)"
                        if status[k] == RUNNING and per_step > 1 else ""),
                    loss=loss[k],
                )
            )
            states[k].append(engine.member(state, k))
            phase_w[k].append(engine.member(w, k))
            loss_limits[k].append(float(loss_limit[k]))
            total_iterations[k] += done_iterations[k]
        if checkpoints is not None:  # the phase is done: the next one starts fresh from here
            snapshot(index + 1, w, None, zeros, zeros, zeros, [0.0] * size, 0.0)
    return [
        TrainResult(w=engine.member(w, k), phases=reports[k], records=records[k], states=states[k], phase_w=phase_w[k])
        for k in members
    ]
