"""Named random streams derived from one seed (DESIGN.md, "Randomness").

Every consumer of randomness draws from its own stream,

    key(seed, purpose) = fold_in(PRNGKey(seed), STREAMS[purpose]),

so that no two consumers share draws: before issue 15 the model's initialisation and
NNCG's first Nystrom test matrix were both drawn from ``PRNGKey(seed)``, and the sketch's
Gaussian matrix equalled the first layer's initial normals entry for entry. The purposes
have fixed numbers (never renumber one: that would change every run that uses it); a new
consumer takes a new number. A stream is a JAX key, so it works on traced seeds too (an
ensemble's members stack their seeds and derive their streams under ``vmap``).

The same config and seed give the same streams on every machine (threefry is
platform-independent), so runs repeat.
"""

from __future__ import annotations

import jax
from jaxtyping import Array, PRNGKeyArray

# purpose -> its fixed number in fold_in
STREAMS: dict[str, int] = {
    "model": 1,      # network initialisation (jpinn.run.build, the condition sweep)
    "data": 2,       # collocation points (jpinn.sample_collocation with rng="jax")
    "sketch": 3,     # NNCG's Nystrom test matrices (one split per refresh)
    "probes": 4,     # stochastic Lanczos quadrature's Rademacher probes
    "lanczos": 5,    # the Gaussian start vector of top_eigenvalues / condition estimates
}


def key(seed: int | Array, purpose: str) -> PRNGKeyArray:
    """The PRNG key of stream ``purpose`` for ``seed`` (an integer >= 0, or a traced one)."""
    if purpose not in STREAMS:
        raise ValueError(f"purpose: unknown random stream {purpose!r}; allowed: {', '.join(STREAMS)}")
    return jax.random.fold_in(jax.random.PRNGKey(seed), STREAMS[purpose])


__all__ = ["STREAMS", "key"]
