"""The idealized Gaussian target with a quadratic log-joint.

``log h(θ) = a − ½ (θ − θ*)ᵀ P (θ − θ*)`` with ``θ* = 0`` and
``P = c · Q diag(λ_1..λ_d) Qᵀ``: the eigenvalues ``λ_i`` are log-spaced from 1
to the condition number ``κ``, and ``Q`` is the identity or, with ``rotate``,
an orthogonal matrix drawn (Haar) from ``model.seed``. Here the quadratic
expansion of the theory is exact.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from threadpoolctl import threadpool_limits

from harness.errors import check_bool, check_float, check_int
from harness.models.base import Model


def precision_matrix(
    dim: int, curvature: float, condition_number: float, rotate: bool, seed: int
) -> np.ndarray:
    """``P = c · Q diag(λ) Qᵀ`` in float64."""
    eigenvalues = curvature * np.geomspace(1.0, condition_number, dim)
    if not rotate:
        return np.diag(eigenvalues)
    rng = np.random.default_rng(seed)
    # One BLAS thread: once JAX's CPU runtime holds the cores, a threaded
    # OpenBLAS QR at d = 1000 runs some 30× slower; one thread also makes P
    # the same on every machine.
    with threadpool_limits(1, user_api="blas"):
        q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    q = q * np.sign(np.diagonal(r))  # Haar-distributed orthogonal matrix
    return (q * eigenvalues) @ q.T


def log_normalizer(precision: np.ndarray, offset: float) -> float:
    """``log Z = a + (d/2) log 2π − ½ log |P|``, in float64."""
    _, log_det = np.linalg.slogdet(precision)
    dim = precision.shape[0]
    return float(offset + 0.5 * dim * np.log(2.0 * np.pi) - 0.5 * log_det)


def log_joint_fn(theta, data):
    """``a − ½ (θ − θ*)ᵀ P (θ − θ*)``."""
    delta = theta - data["center"]
    return data["offset"] - 0.5 * delta @ (data["precision"] @ delta)


def expected_log_joint_fn(mean, std, data):
    """``E_q[log h] = a − ½ [(μ − θ*)ᵀ P (μ − θ*) + Σ_i P_ii σ_i²]``."""
    delta = mean - data["center"]
    quadratic_mean = delta @ (data["precision"] @ delta)
    return data["offset"] - 0.5 * (
        quadratic_mean + jnp.diagonal(data["precision"]) @ std**2
    )


def build(cfg, dtype) -> Model:
    """Builds the quadratic model from its config group (validated here).

    The mean-field optimum of a Gaussian target is ``μ* = θ*`` and
    ``σ*_i = P_ii^{-1/2}`` [mackay2003, ch. 33]. The normalizer is the Gaussian
    integral ``Z = ∫ h = e^a (2π)^{d/2} |P|^{-1/2}``.
    """
    dim = check_int(cfg.get("dim"), "model.dim", 1)
    curvature = check_float(cfg.get("curvature"), "model.curvature", greater_than=0)
    condition = check_float(
        cfg.get("condition_number"), "model.condition_number", at_least=1
    )
    rotate = check_bool(cfg.get("rotate"), "model.rotate")
    seed = check_int(cfg.get("seed"), "model.seed", 0)
    offset = check_float(cfg.get("log_density_offset"), "model.log_density_offset")

    precision = precision_matrix(dim, curvature, condition, rotate, seed)
    data = {
        "precision": jnp.asarray(precision, dtype=dtype),
        "center": jnp.zeros(dim, dtype=dtype),
        "offset": jnp.asarray(offset, dtype=dtype),
    }
    optimum_std = jnp.asarray(1.0 / np.sqrt(np.diagonal(precision)), dtype=dtype)
    return Model(
        name="quadratic",
        dim=dim,
        log_joint_fn=log_joint_fn,
        data=data,
        reference_mean=data["center"],
        expected_log_joint_fn=expected_log_joint_fn,
        optimum=(data["center"], optimum_std),
        log_normalizer=log_normalizer(precision, offset),
    )
