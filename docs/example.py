"""The ten-line example of docs/quickstart.md and README.md."""

import jpinn
from jpinn.optim import LBFGS, Adam

pde = jpinn.problems.Convection(beta=10.0)
data = jpinn.sample_collocation(pde, n_residual=1_000, seed=0)
model = jpinn.models.MLP(width=32, depth=3, key=jpinn.rng.key(0, "model"))
loss, w0 = jpinn.build_loss(pde, model, data)    # loss(w) -> (total, {"residual", "initial", "boundary"})
phases = [jpinn.Phase(Adam(1e-3), 1_000), jpinn.Phase(LBFGS(), 1_000)]
result = jpinn.train(loss, w0, phases, progress=False)
print(jpinn.evaluate(loss.model(result.w), pde)["l2re"])   # relative L2 error on the 257 x 101 grid
