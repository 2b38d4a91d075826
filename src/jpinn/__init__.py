"""jpinn: train physics-informed neural networks in JAX and study their loss landscapes.

A notebook builds a run by hand::

    import jpinn
    pde = jpinn.problems.Convection(beta=40.0)
    data = jpinn.sample_collocation(pde, n_residual=10_000, seed=0)    # the seed's "data" stream
    model = jpinn.models.MLP(width=50, depth=3, key=jpinn.rng.key(0, "model"))
    loss, w0 = jpinn.build_loss(pde, model, data)
    result = jpinn.train(loss, w0, [jpinn.Phase(jpinn.optim.Adam(1e-3), 1000)])

and any other problem the same way, with ``jpinn.sample_points`` for its points::

    problem = jpinn.problems.Poisson(dim=5)
    data = jpinn.sample_points(problem, sampler="sobol", points={"residual": 2000}, seed=0)
    model = jpinn.models.MLP(width=50, depth=3, in_size=5, key=jpinn.rng.key(0, "model"))
"""

from . import cache as cache, data as data, io as io, models as models, optim as optim, pdes as pdes, problems as problems, rng as rng
from .data import sample_collocation as sample_collocation, sample_points as sample_points, test_points as test_points
from .derivatives import Variables as Variables, evaluate_terms as evaluate_terms
from .run import ConfigError as ConfigError, evaluate as evaluate, load_run as load_run
from .loss import PINNLoss as PINNLoss, build_loss as build_loss, loss_components as loss_components, shard_loss as shard_loss
from .metrics import l1re as l1re, l2re as l2re
from .cache import use_compilation_cache as use_compilation_cache
from .precision import set_precision as set_precision
from .train import Phase as Phase, PhaseReport as PhaseReport, Resample as Resample, TrainResult as TrainResult, train as train
from .ensemble import train_ensemble as train_ensemble

__version__ = "0.1.0"
from . import experiment as experiment  # noqa: E402  (the run layer's former single module, re-exporting jpinn.run)
