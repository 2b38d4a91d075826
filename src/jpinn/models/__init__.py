"""Networks (the study's MLP; Fourier-feature and modified MLPs with periodic embeddings),
their initialisation and output transforms (hard constraints)."""

import jax.numpy as jnp

from .._registry import make_registered
from .embedded import Embedding as Embedding, FourierMLP as FourierMLP, ModifiedMLP as ModifiedMLP
from .mlp import MLP as MLP, n_parameters as n_parameters
from .transform import OutputTransform as OutputTransform

MODELS = {"mlp": MLP, "fourier_mlp": FourierMLP, "modified_mlp": ModifiedMLP}


def make_model(name: str, *, key, dtype=jnp.float32, **hyperparameters):
    """Build a model by name; unknown names and fields give a one-line ValueError."""
    return make_registered("model.", "model", MODELS, name, hyperparameters, key=key, dtype=dtype)
