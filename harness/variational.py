"""The mean-field Gaussian variational family.

The family is ``q_λ(θ) = N(θ; μ, diag σ²)`` on ``R^d``. Its parameters are
``λ = (μ, ω)`` with ``ω = log σ`` under the ``log_scale`` parameterization, or
``λ = (μ, σ)`` under ``scale``. Draws are reparameterized as
``θ = μ + σ ∘ ε`` with ``ε ~ N(0, I)``.

Every function here takes the parameterization as a static string, so a
gradient with respect to :class:`MeanFieldParams` is a gradient with respect to
``(μ, ω)`` or ``(μ, σ)`` as chosen.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp
from jax import Array

PARAMETERIZATIONS = ("log_scale", "scale")
LOG_2PI = math.log(2.0 * math.pi)


class MeanFieldParams(NamedTuple):
    """Parameters of ``N(μ, diag σ²)``; also the shape of their gradients.

    Attributes:
      mean: ``μ``, shape ``(d,)``.
      scale: ``ω = log σ`` (``log_scale``) or ``σ`` (``scale``), shape ``(d,)``.
    """

    mean: Array
    scale: Array


def std_dev(params: MeanFieldParams, parameterization: str) -> Array:
    """Returns ``σ`` from the scale block."""
    if parameterization == "log_scale":
        return jnp.exp(params.scale)
    return params.scale


def from_mean_and_std(
    mean: Array, std: Array, parameterization: str
) -> MeanFieldParams:
    """Builds parameters from ``μ`` and ``σ`` in the given parameterization."""
    mean = jnp.asarray(mean)
    std = jnp.asarray(std, dtype=mean.dtype)
    if parameterization == "log_scale":
        return MeanFieldParams(mean, jnp.log(std))
    return MeanFieldParams(mean, std)


def sample(params: MeanFieldParams, noise: Array, parameterization: str) -> Array:
    """Maps standard normal ``noise`` of shape ``(..., d)`` to ``θ = μ + σ ∘ ε``."""
    return params.mean + std_dev(params, parameterization) * noise


def log_density(params: MeanFieldParams, theta: Array, parameterization: str) -> Array:
    """``log q_λ(θ)`` for one point ``θ`` of shape ``(d,)``."""
    std = std_dev(params, parameterization)
    standardized = (theta - params.mean) / std
    dim = theta.shape[-1]
    return (
        -0.5 * jnp.sum(standardized**2, axis=-1)
        - jnp.sum(jnp.log(std))
        - 0.5 * dim * LOG_2PI
    )


def entropy(params: MeanFieldParams, parameterization: str) -> Array:
    """``H[q] = Σ log σ_i + d/2 (1 + log 2π)``."""
    std = std_dev(params, parameterization)
    dim = std.shape[-1]
    return jnp.sum(jnp.log(std)) + 0.5 * dim * (1.0 + LOG_2PI)


def entropy_gradient(params: MeanFieldParams, parameterization: str) -> MeanFieldParams:
    """``∇_λ H[q]``: zero for ``μ``; one for ``ω``, or ``1/σ`` for ``σ``."""
    zeros = jnp.zeros_like(params.mean)
    if parameterization == "log_scale":
        return MeanFieldParams(zeros, jnp.ones_like(params.scale))
    return MeanFieldParams(zeros, 1.0 / params.scale)


def path_scale_factor(params: MeanFieldParams, noise: Array, parameterization: str):
    """``∂θ_i/∂λ_i`` for the scale block: ``σ_i ε_i`` for ``ω``, ``ε_i`` for ``σ``.

    ``∂θ/∂μ`` is the identity, so the pathwise gradient of ``f(θ)`` is
    ``(∇f, ∇f ∘ path_scale_factor)``.
    """
    if parameterization == "log_scale":
        return std_dev(params, parameterization) * noise
    return noise


def score(
    params: MeanFieldParams, noise: Array, parameterization: str
) -> MeanFieldParams:
    """``∇_λ log q_λ(θ)`` at ``θ = μ + σ ∘ ε``, written in terms of ``ε``.

    ``∂/∂μ_i = ε_i/σ_i``; ``∂/∂ω_i = ε_i² − 1``; ``∂/∂σ_i = (ε_i² − 1)/σ_i``.
    """
    std = std_dev(params, parameterization)
    scale_score = noise**2 - 1.0
    if parameterization == "scale":
        scale_score = scale_score / std
    return MeanFieldParams(noise / std, scale_score)
