"""A Bayesian neural network regression with one hidden layer.

On scikit-learn's diabetes data (442 rows, 10 standardized features, target
standardized), with ``H`` hidden tanh units:

    f(x) = w₂ᵀ tanh(W₁ᵀx + b₁) + b₂,   y_n ~ N(f(x_n), e^{2s}),

priors ``N(0, τ²)`` on every weight and bias and ``s ~ N(0, 1)`` on the log
noise scale. ``θ`` stacks ``W₁`` (row-major, ``p × H``), ``b₁``, ``w₂``, ``b₂``
and ``s``: ``d = (p + 2) H + 2``, so ``H = 166`` gives ``d = 1,994`` and
``H = 200`` gives ``d = 2,402``. The reference mean is a mode found by L-BFGS
from a seeded small random start (the posterior has many modes; this is one).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from harness.errors import check_float, check_int
from harness.models import datasets
from harness.models.base import Model, find_mode

LOG_2PI = math.log(2.0 * math.pi)


def unpack(theta, num_features: int, hidden: int):
    """``(W₁, b₁, w₂, b₂, s)`` from the flat ``θ``."""
    split = num_features * hidden
    first = theta[:split].reshape(num_features, hidden)
    first_bias = theta[split : split + hidden]
    second = theta[split + hidden : split + 2 * hidden]
    second_bias = theta[split + 2 * hidden]
    log_noise = theta[split + 2 * hidden + 1]
    return first, first_bias, second, second_bias, log_noise


def log_joint_fn(theta, data):
    """Gaussian likelihood of the network's predictions plus the priors."""
    features, targets = data["features"], data["targets"]
    num_features = features.shape[1]
    hidden = (theta.shape[0] - 2) // (num_features + 2)
    first, first_bias, second, second_bias, log_noise = unpack(
        theta, num_features, hidden
    )
    predictions = jnp.tanh(features @ first + first_bias) @ second + second_bias
    residuals = (targets - predictions) * jnp.exp(-log_noise)
    num_data = targets.shape[0]
    likelihood = -0.5 * jnp.sum(residuals**2) - num_data * (log_noise + 0.5 * LOG_2PI)
    weights = theta[:-1]
    prior_scale = data["prior_scale"]
    weight_prior = -0.5 * jnp.sum(weights**2) / prior_scale**2 - weights.shape[0] * (
        jnp.log(prior_scale) + 0.5 * LOG_2PI
    )
    noise_prior = -0.5 * log_noise**2 - 0.5 * LOG_2PI
    return likelihood + weight_prior + noise_prior


def build(cfg, dtype) -> Model:
    """Builds the network from its config group."""
    hidden = check_int(cfg.get("hidden"), "model.hidden", 1)
    prior_scale = check_float(
        cfg.get("prior_scale"), "model.prior_scale", greater_than=0
    )
    seed = check_int(cfg.get("seed", 0), "model.seed", 0)
    features, targets = datasets.load("diabetes", cfg.get("num_data"), seed)
    targets = (targets - targets.mean()) / targets.std()
    data = {
        "features": jnp.asarray(features),
        "targets": jnp.asarray(targets),
        "prior_scale": jnp.asarray(prior_scale, dtype=jnp.float64),
    }
    dim = (features.shape[1] + 2) * hidden + 2
    start = 0.1 * np.random.default_rng(seed).standard_normal(dim)
    mode = find_mode(lambda theta: log_joint_fn(theta, data), jnp.asarray(start))
    model = Model(
        name="bnn",
        dim=dim,
        log_joint_fn=log_joint_fn,
        data=data,
        reference_mean=mode,
    )
    return model.astype(dtype)
