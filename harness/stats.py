"""Numerically stable running moments with standard errors.

Moments are accumulated per block of draws by a two-pass computation (the mean
first, then centred power sums), and blocks are merged with the pairwise
updates of Chan, Golub and LeVeque, extended to the third and fourth central
moments by Pébay [chan1983, pebay2008]. Nothing is computed as
``E[x²] − E[x]²``. Computations run in float64 when JAX has x64 enabled (the
harness enables it for its runs), whatever the dtype of the data.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax import Array


class Moments(NamedTuple):
    """Count, mean and centred power sums ``M_k = Σ (x − mean)^k`` along axis 0."""

    count: Array
    mean: Array
    m2: Array
    m3: Array
    m4: Array


def _accumulator_dtype():
    return jnp.zeros((), dtype=jnp.float64).dtype


def block_moments(values: Array, mask: Array | None = None) -> Moments:
    """Moments of ``values`` along axis 0, counting only rows where ``mask`` is true.

    Args:
      values: shape ``(n, ...)``.
      mask: boolean, shape ``(n,)``; all rows count when omitted.
    """
    dtype = _accumulator_dtype()
    values = values.astype(dtype)
    if mask is None:
        mask = jnp.ones(values.shape[0], dtype=bool)
    weight = mask.astype(dtype).reshape((-1,) + (1,) * (values.ndim - 1))
    count = jnp.sum(weight, axis=0) * jnp.ones(values.shape[1:], dtype)
    safe_count = jnp.maximum(count, 1.0)
    mean = jnp.sum(weight * values, axis=0) / safe_count
    centred = jnp.where(weight > 0, values - mean, 0.0)
    return Moments(
        count=count,
        mean=mean,
        m2=jnp.sum(centred**2, axis=0),
        m3=jnp.sum(centred**3, axis=0),
        m4=jnp.sum(centred**4, axis=0),
    )


def merge(a: Moments, b: Moments) -> Moments:
    """Combines the moments of two disjoint blocks [pebay2008, eqs. 2.1 and 3.1]."""
    count = a.count + b.count
    safe = jnp.maximum(count, 1.0)
    delta = b.mean - a.mean
    delta_n = delta / safe
    mean = a.mean + delta_n * b.count
    cross = a.count * b.count
    m2 = a.m2 + b.m2 + delta * delta_n * cross
    m3 = (
        a.m3
        + b.m3
        + delta * delta_n**2 * cross * (a.count - b.count)
        + 3.0 * delta_n * (a.count * b.m2 - b.count * a.m2)
    )
    m4 = (
        a.m4
        + b.m4
        + delta * delta_n**3 * cross * (a.count**2 - a.count * b.count + b.count**2)
        + 6.0 * delta_n**2 * (a.count**2 * b.m2 + b.count**2 * a.m2)
        + 4.0 * delta_n * (a.count * b.m3 - b.count * a.m3)
    )
    return Moments(count, mean, m2, m3, m4)


def variance(m: Moments) -> Array:
    """Unbiased sample variance ``M_2 / (n − 1)``."""
    return m.m2 / (m.count - 1.0)


def mean_standard_error(m: Moments) -> Array:
    """Standard error of the mean, ``sqrt(s² / n)``."""
    return jnp.sqrt(variance(m) / m.count)


def variance_standard_error(m: Moments) -> Array:
    """Standard error of the sample variance.

    Uses ``Var[s²] = (μ₄ − σ⁴ (n − 3)/(n − 1)) / n`` with the sample fourth
    central moment ``μ₄ = M_4 / n`` and ``σ²`` replaced by ``s²``.
    """
    n = m.count
    var = variance(m)
    fourth = m.m4 / n
    return jnp.sqrt(jnp.maximum(fourth - var**2 * (n - 3.0) / (n - 1.0), 0.0) / n)
