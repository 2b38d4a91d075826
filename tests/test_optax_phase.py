"""Any optax optimizer as a training phase (jpinn.optim.optax_phase.Optax): the driver's
phase against optax's own update loop, the config, its refusals, ensembles of members that
differ in the learning rate and a real option, and resuming mid-phase."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jpinn
from jpinn import io
from jpinn.ensemble import EnsembleError, stack_members, train_ensemble
from jpinn.experiment import ConfigError, build_phases
from jpinn.optim import Adam, Optax, make_optimizer
from jpinn.optim.optax_phase import optax_transforms
from jpinn.train import Phase, train

CONF = Path(__file__).resolve().parent.parent / "conf"
STEPS = 40


def _quadratic(dtype):
    """f(w) = 0.5 w^T A w - b^T w with A = Q diag(1..100) Q^T (SPD, condition 100)."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    a = jnp.asarray(q @ np.diag(np.geomspace(1.0, 100.0, 6)) @ q.T, dtype)
    b = jnp.asarray(rng.normal(size=6), dtype)

    def f(w):
        loss = 0.5 * w @ a @ w - b @ w
        return loss, {"quadratic": loss}

    return f, jnp.asarray(rng.normal(size=6), dtype)


def _optax_loop(f, w, transformation, steps):
    """optax's own loop: value_and_grad, update, apply_updates; the loss before each step."""
    state = transformation.init(w)

    @jax.jit
    def step(w, state):
        (loss, _), grad = jax.value_and_grad(f, has_aux=True)(w)
        updates, state = transformation.update(grad, state, w)
        return optax.apply_updates(w, updates), state, loss

    losses = []
    for _ in range(steps):
        w, state, loss = step(w, state)
        losses.append(float(loss))
    return w, losses


CASES = {  # id: (Optax fields, the same transformation built from optax directly)
    "adamw": (dict(transform="adamw", learning_rate=3e-2, options={"weight_decay": 1e-2, "b1": 0.8}),
              lambda: optax.adamw(3e-2, weight_decay=1e-2, b1=0.8)),
    "lion": (dict(transform="lion", learning_rate=1e-2, options={"weight_decay": 1e-3}),
             lambda: optax.lion(1e-2, weight_decay=1e-3)),
    "sgd-nesterov": (dict(transform="sgd", learning_rate=5e-3, options={"momentum": 0.9, "nesterov": True}),
                     lambda: optax.sgd(5e-3, momentum=0.9, nesterov=True)),
    "nadam": (dict(transform="nadam", learning_rate=2e-2), lambda: optax.nadam(2e-2)),
    "rmsprop": (dict(transform="rmsprop", learning_rate=1e-2, options={"decay": 0.95, "centered": True}),
                lambda: optax.rmsprop(1e-2, decay=0.95, centered=True)),
    "adabelief-warmup-cosine": (
        dict(transform="adabelief", learning_rate=5e-2, schedule="warmup_cosine", warmup_steps=5, decay_steps=30,
             end_fraction=0.1),
        lambda: optax.adabelief(optax.warmup_cosine_decay_schedule(0.0, 5e-2, 5, 30, end_value=0.1 * 5e-2))),
    "adamw-exponential": (
        dict(transform="adamw", learning_rate=3e-2, schedule="exponential", decay_steps=10, decay_rate=0.5),
        lambda: optax.adamw(optax.exponential_decay(3e-2, 10, 0.5))),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_phase_is_optax_own_update_loop(x64, case):
    fields, reference = CASES[case]
    f, w0 = _quadratic(jnp.float64)
    result = train(f, w0, [Phase(Optax(**fields), STEPS)], log_every=10, progress=False)
    w, losses = _optax_loop(f, w0, reference(), STEPS)
    np.testing.assert_allclose(np.asarray(result.w), np.asarray(w), rtol=1e-14, atol=1e-15)
    logged = {r["phase_iteration"]: r["loss"] for r in result.records}
    for i in (0, 10, 20, 30):  # the record at iteration i holds the loss after i steps
        assert logged[i] == pytest.approx(losses[i], rel=1e-14, abs=1e-15), i
    (report,) = result.phases
    assert (report.iterations, report.steps, report.evaluations) == (STEPS, STEPS, STEPS)
    assert report.optimizer == "optax" and report.hyperparameters["transform"] == fields["transform"]
    assert report.hyperparameters["options"] == fields.get("options", {})
    assert float(result.records[-1]["grad_norm"]) > 0
    assert abs(losses[-1]) < 1e6  # the loops made progress rather than blowing up


def test_optax_adam_is_adam_to_the_bit(x64):
    f, w0 = _quadratic(jnp.float64)
    for schedule in ({}, {"schedule": "cosine", "decay_steps": 20, "end_fraction": 0.1}):
        ours = train(f, w0, [Phase(Optax("adam", 1e-2, **schedule), 25)], log_every=5, progress=False)
        adam = train(f, w0, [Phase(Adam(1e-2, **schedule), 25)], log_every=5, progress=False)
        assert np.array_equal(np.asarray(ours.w), np.asarray(adam.w)), schedule
        assert [r["loss"] for r in ours.records] == [r["loss"] for r in adam.records]


def _compose(overrides):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from jpinn.cli import train as cli

    cli.register_resolvers()  # the resolvers the app registers
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return OmegaConf.to_container(compose(config_name="config", overrides=overrides), resolve=True)


def test_the_config_composes_and_builds_a_phase_after_adam():
    config = _compose(["optimizer=optax", "optimizer.transform=lion", "optimizer.learning_rate=1e-4",
                       "+optimizer.options.weight_decay=1e-3", "optimizer.iterations=7", "optimizer.schedule=cosine"])
    jpinn.experiment.validate(config)
    (phase,) = build_phases(config["optimizer"])
    assert isinstance(phase.optimizer, Optax) and phase.iterations == 7 and phase.label == "optax"
    assert (phase.optimizer.transform, phase.optimizer.learning_rate, phase.optimizer.schedule) == ("lion", 1e-4, "cosine")
    assert phase.optimizer.options == {"weight_decay": 1e-3}
    # the defaults: optax.adam at Adam's learning rate, no options
    default = build_phases(_compose(["optimizer=optax"])["optimizer"])[0].optimizer
    assert (default.transform, default.learning_rate, default.options) == ("adam", 1e-3, {})
    # a whole options mapping at once (++: the yaml holds options: {})
    many = _compose(["optimizer=optax", "optimizer.transform=adamw", "++optimizer.options={weight_decay:0.0,b1:0.95}"])
    assert build_phases(many["optimizer"])[0].optimizer.options == {"weight_decay": 0.0, "b1": 0.95}
    # a phase list: Adam, then an optax optimizer, then L-BFGS
    phases = build_phases({"phases": [
        {"name": "adam", "iterations": 100, "learning_rate": 1e-3},
        {"name": "optax", "iterations": 50, "transform": "adamw", "learning_rate": 1e-4, "label": "adamw",
         "options": {"weight_decay": 1e-4}},
        {"name": "lbfgs", "iterations": 40},
    ]}, budget_scale=0.5)
    assert [(p.label, p.iterations) for p in phases] == [("adam", 50), ("adamw", 25), ("lbfgs", 20)]
    assert make_optimizer("optax", transform="sgd", options={"momentum": 0.9}).options == {"momentum": 0.9}


@pytest.mark.parametrize("entry,message", [
    ({"transform": "adamx"}, r"^optimizer\.phases\[0\]\.transform: unknown optax optimizer 'adamx'; allowed: .*adamw.*lion"),
    ({"transform": "lbfgs"}, r"^optimizer\.phases\[0\]\.transform: .*jpinn's L-BFGS"),
    ({"transform": "adamw", "options": {"wd": 1}}, r"^optimizer\.phases\[0\]\.options\.wd: not an option of optax\.adamw;"
                                                   r" allowed: b1, b2, eps, .*weight_decay"),
    ({"transform": "adam", "options": {"b1": "abc"}}, r"^optimizer\.phases\[0\]\.options\.b1: must be a number"),
    ({"transform": "sgd", "options": {"nesterov": 1}}, r"^optimizer\.phases\[0\]\.options\.nesterov: must be true or false"),
    ({"transform": "sgd", "options": {"momentum": [0.9]}}, r"^optimizer\.phases\[0\]\.options\.momentum: must be"),
    ({"transform": "adam", "options": {"eps": float("inf")}}, r"^optimizer\.phases\[0\]\.options\.eps: must be finite"),
    ({"transform": "adam", "options": 3}, r"^optimizer\.phases\[0\]\.options: must be a mapping"),
    ({"transform": "adamw", "options": {"mu_dtype": "float99"}}, r"^optimizer\.phases\[0\]\.options: optax\.adamw refused"),
    ({"transform": "rprop", "schedule": "cosine"}, r"^optimizer\.phases\[0\]\.schedule: optax\.rprop takes a constant"),
    ({"transform": "adam", "schedule": "linear"}, r"^optimizer\.phases\[0\]\.schedule: unknown 'linear'"),
    ({"transform": "adam", "learning_rate": 0}, r"^optimizer\.phases\[0\]\.learning_rate: must be a number > 0"),
    ({"transform": "adam", "momentum": 0.9}, r"^optimizer\.phases\[0\]\.momentum: not a field of optax"),
])
def test_bad_names_and_options_are_refused_in_one_line_naming_the_field(entry, message):
    with pytest.raises(ConfigError, match=message) as raised:
        build_phases({"phases": [{"name": "optax", "iterations": 5, **entry}]})
    assert "\n" not in str(raised.value)


def test_the_command_line_refuses_them_in_one_line(train_script):
    for overrides, field in ((["optimizer.transform=adamx"], "optimizer.transform"),
                             (["+optimizer.options.wd=1"], "options.wd"),
                             (["+optimizer.options.b1=abc"], "options.b1"),
                             (["+optimizer.option.b1=0.9"], "optimizer.option.b1")):
        message = train_script.precheck(["optimizer=optax", *overrides])
        assert message is not None and "\n" not in message and field in message, (overrides, message)
    assert train_script.precheck(["optimizer=optax", "optimizer.transform=lion", "+optimizer.options.weight_decay=1e-3"]) is None
    # an ensemble over a real option (the mapping given whole, so the option is a config field)
    ensemble = ["optimizer=optax", "optimizer.transform=lion", "++optimizer.options={weight_decay:0.0}",
                "+ensemble.params={optimizer.learning_rate:[1e-4,1e-3],optimizer.options.weight_decay:[0,1e-3]}"]
    assert train_script.precheck(ensemble) is None
    message = train_script.precheck(["optimizer=optax", "optimizer.transform=adafactor",
                                     "++optimizer.options={min_dim_size_to_factor:4}",
                                     "+ensemble.params={optimizer.options.min_dim_size_to_factor:[4,8]}"])
    assert message is not None and "\n" not in message and "min_dim_size_to_factor" in message


def test_every_listed_transform_takes_a_step():
    assert {"adam", "adamw", "lion", "sgd", "adabelief", "rmsprop", "nadam", "adafactor"} <= set(optax_transforms())
    assert "lbfgs" not in optax_transforms() and not any(n.startswith("scale_by") for n in optax_transforms())
    f = lambda w: (jnp.sum(jnp.arange(1.0, 4.0) * w**2), {})  # noqa: E731
    for name in optax_transforms():
        optimizer = Optax(name, 1e-2)
        w, _, info = optimizer.step(f, jnp.ones(3), optimizer.init(f, jnp.ones(3)))
        assert bool(jnp.all(jnp.isfinite(w))) and int(info["iterations"]) == int(info["evaluations"]) == 1, name


def test_ensemble_members_differing_in_learning_rate_and_weight_decay_equal_solo_runs(x64):
    """Two members (other start points, learning rates and weight decays) as one vmapped
    program, each against the same run alone (tests/test_ensemble.py's comparison)."""
    f, w0 = _quadratic(jnp.float64)
    ws = [w0, -0.5 * w0]
    phases = [[Phase(Optax("adamw", [1e-2, 3e-3][k], schedule="cosine", decay_steps=20,
                           options={"weight_decay": [1e-4, 1e-2][k], "b1": 0.85}), 20)] for k in range(2)]
    stacked = stack_members([p[0].optimizer for p in phases], "x", jnp.float64)
    np.testing.assert_array_equal(np.asarray(stacked.batched.learning_rate), [1e-2, 3e-3])
    np.testing.assert_array_equal(np.asarray(stacked.batched.options["weight_decay"]), [1e-4, 1e-2])
    assert stacked.shared.options["b1"] == 0.85 and stacked.batched.options["b1"] is None  # equal: not stacked
    solo = [train(f, w, p, log_every=5, progress=False) for w, p in zip(ws, phases)]
    ensemble = train_ensemble([f, f], ws, phases, log_every=5, progress=False)
    for s, e in zip(solo, ensemble):
        assert [(r["phase_iteration"], r["step"], r["status"]) for r in s.records] == \
            [(r["phase_iteration"], r["step"], r["status"]) for r in e.records]
        for a, b in zip(s.records, e.records):
            assert b["loss"] == pytest.approx(a["loss"], rel=1e-12)
            assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-12)
        np.testing.assert_allclose(np.asarray(e.w), np.asarray(s.w), rtol=0, atol=1e-12 * float(jnp.max(jnp.abs(s.w))))
        assert e.phases[0].hyperparameters == s.phases[0].hyperparameters
    assert not np.allclose(np.asarray(solo[0].w), np.asarray(solo[1].w))
    # settings that shape the program must agree: an integer option, a boolean, the transform
    for a, b, field in ((Optax("adafactor", options={"min_dim_size_to_factor": 4}),
                         Optax("adafactor", options={"min_dim_size_to_factor": 8}), "min_dim_size_to_factor"),
                        (Optax("sgd", options={"nesterov": False}), Optax("sgd", options={"nesterov": True}), "nesterov"),
                        (Optax("adam"), Optax("lion"), "transform")):
        with pytest.raises(EnsembleError, match=field):
            train_ensemble([f, f], ws, [[Phase(a, 5)], [Phase(b, 5)]], progress=False)


def test_resuming_mid_phase_gives_the_uninterrupted_bits(tiny_problem, tmp_path):
    *_, f, w0 = tiny_problem(n_residual=100)
    phases = [Phase(Adam(1e-2), 6), Phase(Optax("lion", 3e-3, schedule="exponential", decay_steps=5,
                                                 options={"weight_decay": 1e-3}), 12)]
    folders = []

    def save(checkpoint):
        folder = tmp_path / f"ck{len(folders)}"
        io.save_train_checkpoint(folder, checkpoint, {"seed": 0})
        folders.append(folder)

    full = train(f, w0, phases, log_every=3, progress=False, checkpoint=save, checkpoint_every=3)
    seen = set()
    for folder in folders:
        checkpoint, meta = io.load_train_checkpoint(folder, f, w0, phases)
        seen.add((meta["phase_index"], meta["has_state"]))
        resumed = train(f, w0, phases, log_every=3, progress=False, resume=checkpoint,
                        records=full.records[: checkpoint.n_records])
        assert np.array_equal(np.asarray(resumed.w), np.asarray(full.w)), meta
        assert [r["loss"] for r in resumed.records] == [r["loss"] for r in full.records]
    assert (1, True) in seen  # inside the optax phase


def test_optax_phases_are_resampled_like_adam_phases():
    import jax.numpy as jnp

    import jpinn
    from jpinn.optim import LBFGS, Adam
    from jpinn.run._build import build_resample

    pde = jpinn.pdes.make_pde("convection", beta=1.0)
    data = jpinn.sample_collocation(pde, n_x=17, n_t=11, n_residual=50, seed=0)
    phases = [Phase(Adam(1e-3), 10), Phase(Optax("lion", 1e-4), 10), Phase(LBFGS(), 10)]
    resample = build_resample({"seed": 0, "data": {"name": "study", "resample_every": 5, "n_x": 17, "n_t": 11}},
                              pde, data, phases, jnp.float32)
    assert resample.phases == (0, 1)
