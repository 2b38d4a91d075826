"""Networks and their initialisation."""

import jax.numpy as jnp

from .mlp import MLP as MLP, n_parameters as n_parameters

MODELS = {"mlp": MLP}


def make_model(name: str, *, key, dtype=jnp.float32, **hyperparameters):
    """Build a model by name; unknown names and fields give a one-line ValueError."""
    if name not in MODELS:
        raise ValueError(f"model.name: unknown model {name!r}; allowed: {', '.join(MODELS)}")
    allowed = ("width", "depth")
    for field in hyperparameters:
        if field not in allowed:
            raise ValueError(f"model.{field}: not a field of {name}; allowed: {', '.join(allowed)}")
    return MODELS[name](key=key, dtype=dtype, **hyperparameters)
