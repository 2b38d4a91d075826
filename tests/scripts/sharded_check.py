"""Run by tests/test_sharding.py in a fresh process with four host CPU devices
(XLA_FLAGS=--xla_force_host_platform_device_count=4 must be set before JAX starts).
Prints one line per check; exits non-zero on the first failure."""

import os
import sys

assert "xla_force_host_platform_device_count=4" in os.environ.get("XLA_FLAGS", ""), "set XLA_FLAGS first"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jpinn  # noqa: E402
from jpinn.ensemble import train_ensemble  # noqa: E402
from jpinn.experiment import ConfigError, build  # noqa: E402
from jpinn.linalg import hvp  # noqa: E402
from jpinn.optim import NNCG, Adam  # noqa: E402
from jpinn.train import Phase, train  # noqa: E402

assert jax.device_count() == 4, jax.devices()


def problem(seed=0, n_residual=203):
    pde = jpinn.pdes.make_pde("wave")  # three point sets, none a multiple of 4 points
    data = jpinn.sample_collocation(pde, n_x=35, n_t=23, n_residual=n_residual, seed=seed, dtype=jnp.float64)
    model = jpinn.models.MLP(width=8, depth=2, key=jax.random.PRNGKey(seed), dtype=jnp.float64)
    return jpinn.build_loss(pde, model, data, block_size=None)


f, w = problem()
fs, ws = jpinn.shard_loss(f, w, "all")
assert fs.mesh is not None and fs.mesh.size == 4
v = jax.random.normal(jax.random.PRNGKey(1), w.shape, jnp.float64)
value_and_grad = jax.jit(lambda f, w: jax.value_and_grad(f, has_aux=True)(w))
(loss1, parts1), grad1 = value_and_grad(f, w)
(loss2, parts2), grad2 = value_and_grad(fs, ws)
hvp1 = jax.jit(hvp)(f, w, v)
hvp2 = jax.jit(hvp)(fs, ws, v)
scale = float(jnp.max(jnp.abs(grad1)))
np.testing.assert_allclose(float(loss2), float(loss1), rtol=1e-13)
for name in parts1:
    np.testing.assert_allclose(float(parts2[name]), float(parts1[name]), rtol=1e-13)
np.testing.assert_allclose(np.asarray(grad2), np.asarray(grad1), rtol=0, atol=1e-13 * scale)
np.testing.assert_allclose(np.asarray(hvp2), np.asarray(hvp1), rtol=0, atol=1e-12 * float(jnp.max(jnp.abs(hvp1))))
print(f"loss, gradient, Hessian-vector product: equal (loss {float(loss1):.15g} / {float(loss2):.15g})")

# the work is split: the compiled program adds partial sums across the four devices
hlo = value_and_grad.lower(fs, ws).compile().as_text()
assert "all-reduce" in hlo, "no cross-device reduction: the points were not split"
assert "all-reduce" not in value_and_grad.lower(f, w).compile().as_text()
print("compiled sharded program reduces across devices: yes")

# from a config
config = {
    "seed": 0, "dtype": "float64", "devices": "all", "pde": {"name": "wave"},
    "model": {"name": "mlp", "width": 8, "depth": 2}, "data": {"n_x": 35, "n_t": 23, "n_residual": 203},
    "optimizer": {"phases": [{"name": "adam", "iterations": 5}]},
}
run = build(config)
assert run.loss.mesh is not None and run.loss.mesh.size == 4
for bad in (8, 0, "most"):
    try:
        build({**config, "devices": bad})
    except ConfigError as error:
        assert str(error).startswith("devices:"), error
        print(f"devices={bad!r}: {error}")
    else:
        sys.exit(f"devices={bad!r} was accepted")

if "--full" not in sys.argv:  # the rest: tests/test_sharding.py -m slow
    print("ok")
    sys.exit(0)

# a short Adam -> NNCG run, sharded and not
phases = [Phase(Adam(1e-2), 10), Phase(NNCG(rank=4, refresh=2, cg_max_iter=4), 3, log_every=1)]
one = train(f, w, phases, log_every=5, progress=False)
four = train(fs, ws, phases, log_every=5, progress=False)
for a, b in zip(one.records, four.records):
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-9)
print(f"{' -> '.join(p.label for p in phases)} on 4 devices: {len(four.records)} records equal to 1e-9 (final {four.records[-1]['loss']:.6e})")


# an ensemble of sharded members
members = [problem(seed=k) for k in range(2)]
sharded = [jpinn.shard_loss(g, u, "all") for g, u in members]
plain = train_ensemble([g for g, _ in members], [u for _, u in members], [[Phase(Adam(1e-2), 8)]] * 2,
                       log_every=4, progress=False)
split = train_ensemble([g for g, _ in sharded], [u for _, u in sharded], [[Phase(Adam(1e-2), 8)]] * 2,
                       log_every=4, progress=False)
for a, b in zip(plain, split):
    np.testing.assert_allclose(np.asarray(b.w), np.asarray(a.w), rtol=0, atol=1e-12)
print("ensemble of 2 members on 4 devices: equal")

print("ok")
