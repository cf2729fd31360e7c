"""Closed-form marginal variances under a local quadratic expansion.

Expand the log-joint to second order around the variational mean ``μ``:
``log h(μ + z) ≈ a + gᵀz + ½ zᵀHz``, with level ``a = log h(μ)``, gradient
``g`` and Hessian ``H``. In the noise coordinates ``z = σ ∘ ε`` this reads

    f(ε) = a + bᵀε + ½ εᵀAε,   b = σ ∘ g,   A = D H D,   D = diag σ,

which is exact for a Gaussian (quadratic) log-joint. Every single-draw estimate
is then a polynomial of degree at most three in ``ε``, and its variance follows
from Stein's identity ``E[ε_i φ(ε)] = E[∂_i φ(ε)]`` applied twice, in the form
``E[ε_i² φ] = E[φ] + E[∂_i² φ]`` and
``E[(ε_i² − 1)² φ] = 2E[φ] + 4E[∂_i² φ] + E[∂_i⁴ φ]``. The results below are
per draw; the average of ``S`` independent draws divides each by ``S``. Write
``(A²)_ii = σ_i² Σ_j H_ij² σ_j²``.

Pathwise (``rp``), either entropy mode [xu2019]:
    Var[mean_i]  = (A²)_ii / σ_i²
    Var[ω_i]     = b_i² + A_ii² + (A²)_ii,      Var[σ_i] = Var[ω_i] / σ_i².

Sticking the landing (``stl``): the same with ``A`` replaced by ``Ã = A + I``
(the extra ``ε/σ`` direction adds ``σ_i⁻²`` to ``H_ii``), so it vanishes when
``q`` is the exact posterior of a Gaussian target.

Score function (``sf``): the weight is ``w(ε) = α + bᵀε + ½ εᵀBε`` with
``(α, B) = (a, A)`` for the analytic entropy and
``(a + Σ log σ_i + d/2 log 2π, A + I)`` for the sampled one. With
``m = E[w] = α + ½ tr B``:
    Var[mean_i] = [m² + 2 m B_ii + |b|² + b_i² + ½ tr(B²) + 2 (B²)_ii] / σ_i²
    Var[ω_i]    = 2m² + 8 m B_ii + 5 B_ii² + 2|b|² + 8 b_i² + tr(B²) + 8 (B²)_ii.

With the analytic entropy (``B = A``) the difference ``sf − rp`` is
``(m + A_ii)² + |b|² + b_i² + ½ tr(A²) + (A²)_ii − A_ii²`` for the mean and
``2(m + 2A_ii)² + 3A_ii² + 7[(A²)_ii − A_ii²] + 2|b|² + 7 b_i² + tr(A²)``
for ``ω``; both are sums of non-negative terms (``(A²)_ii ≥ A_ii²``), so every
marginal variance of ``sf`` is at least that of ``rp``, and the gap grows with
the level (through ``m``) and the gradient (through ``b``) [xu2019]. With the
sampled entropy the ordering can fail: at the exact posterior of a Gaussian
target the bracket ``log h − log q`` is the constant ``log Z``, so ``sf`` has
variance ``(log Z)²·Var[score]``, zero when ``log Z = 0``, while ``rp`` does not.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from harness.variational import MeanFieldParams

THEORY_ESTIMATORS = ("rp", "stl", "sf")


class ScaledQuadratic(NamedTuple):
    """The quadratic expansion in noise coordinates, as the closed forms need it.

    Attributes:
      level: ``a = log h(μ)``.
      linear: ``b = σ ∘ g``.
      hessian_diag: ``A_ii = σ_i² H_ii``.
      hessian_sq_diag: ``(A²)_ii = σ_i² Σ_j H_ij² σ_j²``.
      std: ``σ``.
    """

    level: Array
    linear: Array
    hessian_diag: Array
    hessian_sq_diag: Array
    std: Array


def local_expansion(log_joint, mean: Array) -> tuple[Array, Array, Array]:
    """Level, gradient and (dense) Hessian of ``log_joint`` at ``mean`` by autodiff."""
    level, gradient = jax.value_and_grad(log_joint)(mean)
    hessian = jax.hessian(log_joint)(mean)
    return level, gradient, hessian


def scale_expansion(level, gradient, hessian, std) -> ScaledQuadratic:
    """Rescales a dense expansion ``(a, g, H)`` to noise coordinates."""
    scaled = std[:, None] * hessian * std[None, :]
    return ScaledQuadratic(
        level=jnp.asarray(level),
        linear=std * gradient,
        hessian_diag=jnp.diagonal(scaled),
        hessian_sq_diag=jnp.sum(scaled**2, axis=1),
        std=std,
    )


def _shift_identity(quad: ScaledQuadratic) -> tuple[Array, Array]:
    """Diagonal and squared-row diagonal of ``A + I``."""
    return quad.hessian_diag + 1.0, quad.hessian_sq_diag + 2.0 * quad.hessian_diag + 1.0


def _pathwise_variances(linear, diag, sq_diag, std, parameterization):
    mean = sq_diag / std**2
    scale = linear**2 + diag**2 + sq_diag
    if parameterization == "scale":
        scale = scale / std**2
    return MeanFieldParams(mean, scale)


def _score_variances(offset, linear, diag, sq_diag, std, parameterization):
    m = offset + 0.5 * jnp.sum(diag)
    linear_sq = jnp.sum(linear**2)
    trace_sq = jnp.sum(sq_diag)
    mean = (
        m**2 + 2.0 * m * diag + linear_sq + linear**2 + 0.5 * trace_sq + 2.0 * sq_diag
    ) / std**2
    scale = (
        2.0 * m**2
        + 8.0 * m * diag
        + 5.0 * diag**2
        + 2.0 * linear_sq
        + 8.0 * linear**2
        + trace_sq
        + 8.0 * sq_diag
    )
    if parameterization == "scale":
        scale = scale / std**2
    return MeanFieldParams(mean, scale)


def marginal_variances(
    quad: ScaledQuadratic,
    estimator: str,
    parameterization: str,
    entropy: str,
    num_samples: int,
) -> MeanFieldParams:
    """Per-component variance of the ``S``-draw estimator under the expansion.

    Args:
      quad: the expansion at the evaluation point, from :func:`scale_expansion`.
      estimator: one of :data:`THEORY_ESTIMATORS`.
      parameterization: ``"log_scale"`` or ``"scale"``.
      entropy: ``"analytic"`` or ``"sampled"``.
      num_samples: ``S``.

    Returns:
      Variances with the layout of the gradient.
    """
    if estimator == "rp":
        variances = _pathwise_variances(
            quad.linear,
            quad.hessian_diag,
            quad.hessian_sq_diag,
            quad.std,
            parameterization,
        )
    elif estimator == "stl":
        diag, sq_diag = _shift_identity(quad)
        variances = _pathwise_variances(
            quad.linear, diag, sq_diag, quad.std, parameterization
        )
    elif estimator == "sf":
        if entropy == "analytic":
            offset, diag, sq_diag = quad.level, quad.hessian_diag, quad.hessian_sq_diag
        else:
            dim = quad.std.shape[-1]
            offset = (
                quad.level
                + jnp.sum(jnp.log(quad.std))
                + 0.5 * dim * math.log(2 * math.pi)
            )
            diag, sq_diag = _shift_identity(quad)
        variances = _score_variances(
            offset, quad.linear, diag, sq_diag, quad.std, parameterization
        )
    else:
        raise ValueError(
            f"estimator {estimator!r} has no closed-form variance; "
            f"available for: {', '.join(THEORY_ESTIMATORS)}"
        )
    return MeanFieldParams(variances.mean / num_samples, variances.scale / num_samples)


def expected_gradient(quad: ScaledQuadratic, parameterization: str) -> MeanFieldParams:
    """``∇_λ L`` under the expansion: ``(g, A_ii + 1)`` for ``(μ, ω)``.

    For ``σ`` the scale block is ``(A_ii + 1)/σ_i``.
    """
    mean = quad.linear / quad.std
    scale = quad.hessian_diag + 1.0
    if parameterization == "scale":
        scale = scale / quad.std
    return MeanFieldParams(mean, scale)


def hvp_expansion(
    log_joint, mean: Array, std: Array, *, batch_size: int = 64
) -> ScaledQuadratic:
    """The expansion at ``mean`` from Hessian-vector products, never forming ``H``.

    The closed forms read only ``A_ii = σ_i² H_ii`` and
    ``(A²)_ii = σ_i² Σ_j H_ij² σ_j²``, that is the diagonal of ``H`` and the
    squared row norms of ``H D`` with ``D = diag σ``. Column ``j`` of ``H D`` is
    ``σ_j H e_j``, one forward-over-reverse product; the columns are computed
    ``batch_size`` at a time and only their squares are summed, so memory
    grows as ``d · batch_size`` rather than ``d²``. The cost is ``d`` products,
    a few gradient evaluations each, and the result equals
    :func:`scale_expansion` of the dense Hessian.
    """
    dim = mean.shape[0]
    level, gradient = jax.value_and_grad(log_joint)(mean)
    grad_fn = jax.grad(log_joint)

    def hvp(vector):
        return jax.jvp(grad_fn, (mean,), (vector,))[1]

    num_batches = -(-dim // batch_size)
    padded = num_batches * batch_size
    columns = jnp.arange(padded).reshape(num_batches, batch_size)

    def accumulate(carry, index):
        diag, row_sq = carry
        valid = index < dim
        safe = jnp.where(valid, index, 0)
        basis = jax.nn.one_hot(safe, dim, dtype=mean.dtype) * valid[:, None]
        products = jax.vmap(hvp)(basis)  # rows: H e_j
        scaled = products * std[safe][:, None]  # σ_j H e_j
        own = jnp.take_along_axis(products, safe[:, None], axis=1)[:, 0]
        diag = diag.at[safe].add(jnp.where(valid, own, 0.0))
        row_sq = row_sq + jnp.sum(scaled**2, axis=0)
        return (diag, row_sq), None

    zeros = jnp.zeros(dim, dtype=mean.dtype)
    (hessian_diag, row_sq), _ = jax.lax.scan(accumulate, (zeros, zeros), columns)
    return ScaledQuadratic(
        level=jnp.asarray(level),
        linear=std * gradient,
        hessian_diag=std**2 * hessian_diag,
        hessian_sq_diag=std**2 * row_sq,
        std=std,
    )
