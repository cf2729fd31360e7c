"""Bayesian logistic regression with an intercept, on a bundled real data set.

``y_n ~ Bernoulli(sigmoid(x_nᵀβ))`` with ``x_n`` the standardized features and
a leading one, and prior ``β ~ N(0, τ² I)``; ``d`` is the number of features
plus one.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from harness.errors import ConfigError, check_choice, check_float, check_int
from harness.models import datasets
from harness.models.base import Model, find_mode

# jax: the hand-written log-joint below; numpyro: the same model written in
# NumPyro (harness.models.numpyro_models.logistic_regression) through the adapter.
BACKENDS = ("jax", "numpyro")


def log_joint_fn(beta, data):
    """``Σ_n [y_n z_n − log(1 + e^{z_n})] + log N(β; 0, τ² I)`` with ``z = Xβ``."""
    logits = data["features"] @ beta
    likelihood = jnp.sum(data["targets"] * logits - jax.nn.softplus(logits))
    prior_scale = data["prior_scale"]
    dim = beta.shape[-1]
    prior = -0.5 * jnp.sum(beta**2) / prior_scale**2 - dim * (
        jnp.log(prior_scale) + 0.5 * math.log(2 * math.pi)
    )
    return likelihood + prior


def design_matrix(features):
    """Prepends the intercept column."""
    return jnp.concatenate([jnp.ones((features.shape[0], 1)), features], axis=1)


def build(cfg, dtype) -> Model:
    """Builds the logistic-regression model from its config group."""
    dataset = cfg.get("dataset")
    if dataset not in datasets.CLASSIFICATION:
        raise ConfigError(
            f"model.dataset={dataset!r} is not allowed for logistic regression: "
            f"expected one of {', '.join(datasets.CLASSIFICATION)}"
        )
    seed = check_int(cfg.get("seed"), "model.seed", 0)
    prior_scale = check_float(
        cfg.get("prior_scale"), "model.prior_scale", greater_than=0
    )
    features, targets = datasets.load(dataset, cfg.get("num_data"), seed)
    data = {
        "features": design_matrix(jnp.asarray(features, dtype=jnp.float64)),
        "targets": jnp.asarray(targets, dtype=jnp.float64),
        "prior_scale": jnp.asarray(prior_scale, dtype=jnp.float64),
    }
    backend = check_choice(cfg.get("backend", "jax"), "model.backend", BACKENDS)
    if backend == "numpyro":
        from harness.models import numpyro_models
        from harness.models.numpyro_adapter import from_numpyro

        model = from_numpyro(numpyro_models.logistic_regression, data, name="logistic")
        return model.astype(dtype)
    dim = data["features"].shape[1]
    mode = find_mode(lambda beta: log_joint_fn(beta, data), jnp.zeros(dim))
    model = Model(
        name="logistic",
        dim=dim,
        log_joint_fn=log_joint_fn,
        data=data,
        reference_mean=mode,
    )
    return model.astype(dtype)
