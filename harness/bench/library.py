"""The library a user would pick: NumPyro's ``Trace_ELBO`` gradient.

The same Bayesian logistic regression as the harness's ``logistic`` model,
with a hand-written mean-field normal guide (``loc`` and ``log_scale``, the
harness's ``log_scale`` parameterization) at the harness's evaluation point.
``Trace_ELBO`` differentiates ``log p − log q`` along the path, which is the
harness's ``rp`` with the sampled entropy, so that is what the harness runs.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.infer import Trace_ELBO

from harness import variance
from harness.bench import common
from harness.bench.common import Row

NUM_SAMPLES = 10
CHUNK = 1000


def numpyro_model(features, targets, prior_scale):
    beta = numpyro.sample(
        "beta",
        dist.Normal(0.0, prior_scale).expand([features.shape[1]]).to_event(1),
    )
    numpyro.sample("y", dist.Bernoulli(logits=features @ beta), obs=targets)


def numpyro_guide(features, targets, prior_scale):
    dim = features.shape[1]
    loc = numpyro.param("loc", jnp.zeros(dim))
    log_scale = numpyro.param("log_scale", jnp.zeros(dim))
    numpyro.sample("beta", dist.Normal(loc, jnp.exp(log_scale)).to_event(1))


def gradient_fn(model):
    """``(params, key) -> ∇ loss``: NumPyro's ELBO gradient for one seed."""
    elbo = Trace_ELBO(num_particles=NUM_SAMPLES, vectorize_particles=True)
    data = model.data
    args = (data["features"], data["targets"], data["prior_scale"])

    def gradient(params, rng_key):
        loss = lambda p: elbo.loss(rng_key, p, numpyro_model, numpyro_guide, *args)  # noqa: E731
        return jax.grad(loss)(params)

    return gradient


def vectorized_seconds(model, params, num_seeds: int) -> float:
    """Seconds for ``num_seeds`` gradients, ``vmap`` over keys in chunks of 1000.

    Each chunk's gradients are reduced to their sum and sum of squares (enough
    for a variance), as the harness reduces its chunks to moments.
    """
    gradient = gradient_fn(model)

    @jax.jit
    def chunk(params, keys):
        grads = jax.vmap(gradient, in_axes=(None, 0))(params, keys)
        return jax.tree.map(lambda g: (jnp.sum(g, 0), jnp.sum(g**2, 0)), grads)

    root = jax.random.key(0)
    keys = jax.vmap(jax.random.fold_in, (None, 0))(root, jnp.arange(num_seeds))

    def all_chunks():
        return [chunk(params, keys[i : i + CHUNK]) for i in range(0, num_seeds, CHUNK)]

    return common.best_time(all_chunks)


def loop_seconds(model, params, num_seeds: int) -> float:
    """Seconds of a Python loop of jitted single-key gradients."""
    gradient = jax.jit(gradient_fn(model))
    root = jax.random.key(0)
    jax.block_until_ready(gradient(params, root))
    started = time.perf_counter()
    grads = [gradient(params, jax.random.fold_in(root, i)) for i in range(num_seeds)]
    jax.block_until_ready(grads)
    return time.perf_counter() - started


def run(quick: bool) -> list[Row]:
    model = common.logistic()
    point = variance.evaluation_point(model, common.POINT)
    params = {"loc": point.mean, "log_scale": point.scale}
    num_seeds = 2_000 if quick else 10_000
    timed = 200 if quick else 1_000
    harness = common.harness_seconds(
        model, ["rp"], num_samples=NUM_SAMPLES, num_seeds=num_seeds, entropy="sampled"
    )
    vectorized = vectorized_seconds(model, params, num_seeds)
    loop = loop_seconds(model, params, timed) * num_seeds / timed
    what = f"logistic (569×31), S={NUM_SAMPLES}, {num_seeds} seeds"
    return [
        Row(
            "numpyro",
            "NumPyro vectorized / harness",
            vectorized / harness,
            "×",
            "≥ 1",
            common.check(vectorized / harness, at_least=1.0),
            f"{what}; vmap over keys in chunks of {CHUNK}; harness rp, sampled "
            "entropy, float64 moments",
        ),
        Row(
            "numpyro",
            "NumPyro loop / harness",
            loop / harness,
            "×",
            "n/a",
            "n/a",
            f"{what}; loop timed over {timed} seeds and scaled linearly",
        ),
    ]
