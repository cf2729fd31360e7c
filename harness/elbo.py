"""The ELBO and the distances to the optimum that the convergence runs record.

``L(λ) = E_q[log h(θ)] + H[q]`` is computed in closed form when the model
knows ``E_q[log h]`` (the quadratic model), and otherwise estimated on one
fixed set of ``M`` standard normal draws ``ε_1..ε_M``,

    L̂(λ) = 1/M Σ_m log h(μ + σ ∘ ε_m) + H[q],

with standard error ``s/√M`` from the sample standard deviation ``s`` of the
``log h`` values. Using the same draws for every estimator, seed and step
makes ``L̂`` a deterministic function of ``λ`` (common random numbers), so
differences between runs are not blurred by evaluation noise.

For a normalized target ``p = h/Z``, ``KL(q ‖ p) = log Z − L(λ)``. For the
quadratic model (``log h = a − ½ (θ − θ*)ᵀP(θ − θ*)``),
``log Z = a + (d/2) log 2π − ½ log|P|``, and the mean-field optimum
``μ* = θ*``, ``σ*_i = P_ii^{-1/2}`` has

    L* = a + (d/2) log 2π − ½ Σ_i log P_ii,

so the smallest KL reachable by the family is ``½ (Σ_i log P_ii − log|P|)``,
zero exactly when ``P`` is diagonal (Hadamard's inequality) [mackay2003, ch. 33].
The ``log h`` values of the Monte Carlo ELBO are computed in the run's
precision (they dominate the cost) and averaged in float64; closed forms and
distances are computed in float64 (when x64 is enabled).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from harness import stats, variational
from harness.models import Model
from harness.models.base import cast_floating
from harness.variational import MeanFieldParams

# Draws of the Monte Carlo ELBO evaluated together; bounds memory under vmap.
ELBO_BATCH = 128


class Metrics(NamedTuple):
    """What is recorded at one evaluation step of one seed.

    Attributes:
      elbo: ``L(λ)``, exact or on the fixed draws.
      mean_distance: ``‖μ − μ*‖₂``, or NaN where the optimum is unknown.
      log_scale_distance: ``‖log σ − log σ*‖₂``, or NaN.
      kl: ``KL(q ‖ p) = log Z − L(λ)``, or NaN where ``log Z`` is unknown.
    """

    elbo: Array
    mean_distance: Array
    log_scale_distance: Array
    kl: Array


def _float64(tree):
    return cast_floating(tree, jnp.float64)


def monte_carlo_elbo(
    log_joint_fn, data, params: MeanFieldParams, noise: Array, parameterization: str
) -> tuple[Array, Array]:
    """``(L̂, standard error)`` on the draws ``noise`` of shape ``(M, d)``."""
    noise = noise.astype(params.mean.dtype)
    theta = variational.sample(params, noise, parameterization)
    values = jax.lax.map(
        lambda point: log_joint_fn(point, data), theta, batch_size=ELBO_BATCH
    )
    moments = stats.block_moments(values)
    entropy = variational.entropy(_float64(params), parameterization)
    return moments.mean + entropy, stats.mean_standard_error(moments)


def closed_form_elbo(model: Model, data, params, parameterization: str) -> Array:
    """``E_q[log h] + H[q]`` from the model's closed form."""
    params, data = _float64(params), _float64(data)
    std = variational.std_dev(params, parameterization)
    expected = model.expected_log_joint_fn(params.mean, std, data)
    return expected + variational.entropy(params, parameterization)


def optimum_elbo(model: Model) -> float:
    """``L`` at the model's mean-field optimum, or NaN where it is not known."""
    if model.optimum is None or model.expected_log_joint_fn is None:
        return float("nan")
    mean, std = _float64(model.optimum)
    params = variational.from_mean_and_std(mean, std, "scale")
    return float(closed_form_elbo(model, model.data, params, "scale"))


def make_metrics_fn(model: Model, parameterization: str):
    """``(params, data, noise) -> Metrics`` for one seed; ``noise`` may be unused.

    The ELBO is exact when the model has ``expected_log_joint_fn``, otherwise
    :func:`monte_carlo_elbo` on ``noise``.
    """
    optimum = None if model.optimum is None else _float64(model.optimum)
    log_normalizer = model.log_normalizer
    nan = jnp.asarray(jnp.nan, dtype=jnp.float64)

    def metrics(params, data, noise):
        if model.expected_log_joint_fn is not None:
            elbo = closed_form_elbo(model, data, params, parameterization)
        else:
            elbo, _ = monte_carlo_elbo(
                model.log_joint_fn, data, params, noise, parameterization
            )

        if optimum is None:
            mean_distance = log_scale_distance = nan
        else:
            params64 = _float64(params)
            log_std = jnp.log(variational.std_dev(params64, parameterization))
            mean_distance = jnp.linalg.norm(params64.mean - optimum[0])
            log_scale_distance = jnp.linalg.norm(log_std - jnp.log(optimum[1]))

        kl = nan if log_normalizer is None else log_normalizer - elbo
        return Metrics(elbo, mean_distance, log_scale_distance, kl)

    return metrics
