"""Moments merge exactly, stay accurate in float32, and have honest standard errors."""

import jax.numpy as jnp
import numpy as np

from harness import stats


def direct(values):
    values = np.asarray(values, dtype=np.float64)
    mean = values.mean(axis=0)
    centred = values - mean
    return [len(values), mean, *(np.sum(centred**k, axis=0) for k in (2, 3, 4))]


def test_merge_equals_moments_of_the_concatenation():
    rng = np.random.default_rng(0)
    data = rng.standard_gamma(2.0, size=(1000, 3)) * 5 + 100
    merged = None
    for block in np.array_split(data, [1, 2, 10, 333, 700]):
        moments = stats.block_moments(jnp.asarray(block))
        merged = moments if merged is None else stats.merge(merged, moments)
    for got, want in zip(merged, direct(data), strict=True):
        np.testing.assert_allclose(got, np.broadcast_to(want, (3,)), rtol=1e-10)


def test_mask_ignores_padding_rows():
    rng = np.random.default_rng(1)
    data = rng.standard_normal((50, 2))
    padded = np.concatenate([data, np.full((14, 2), 1e30)])
    mask = jnp.arange(64) < 50
    got = stats.block_moments(jnp.asarray(padded), mask)
    for g, w in zip(got, direct(data), strict=True):
        np.testing.assert_allclose(g, np.broadcast_to(w, (2,)), rtol=1e-10)


def test_float32_values_with_mean_a_thousand_times_the_spread():
    rng = np.random.default_rng(2)
    values = (1000.0 + rng.standard_normal(200_000)).astype(np.float32)
    merged = None
    for block in np.array_split(values, 40):
        moments = stats.block_moments(jnp.asarray(block))
        merged = moments if merged is None else stats.merge(merged, moments)
    exact = np.var(values.astype(np.float64), ddof=1)
    np.testing.assert_allclose(stats.variance(merged), exact, rtol=1e-9)
    # The naive float32 formula loses every digit here.
    naive = np.mean(values**2) - np.mean(values) ** 2
    assert abs(naive - exact) > 0.01


def test_standard_errors_match_gaussian_closed_forms():
    # For N(0, σ²): se(mean) = σ/√n and sd(s²) = σ² √(2/(n − 1)). The estimated
    # standard errors are themselves estimates; at n = 400,000 their relative
    # error is about 0.2%, so 2% is more than eight of their standard errors.
    rng = np.random.default_rng(3)
    n, sigma = 400_000, 3.0
    moments = stats.block_moments(jnp.asarray(rng.normal(0, sigma, (n, 1))))
    np.testing.assert_allclose(
        stats.mean_standard_error(moments), sigma / n**0.5, rtol=0.02
    )
    np.testing.assert_allclose(
        stats.variance_standard_error(moments),
        sigma**2 * (2 / (n - 1)) ** 0.5,
        rtol=0.02,
    )


def test_variance_standard_error_is_the_spread_of_variance_estimates():
    # Repeat a small experiment many times: the spread of its variance
    # estimates matches the standard error each run reports (exponential data,
    # so the fourth moment matters). 2,000 repeats give the spread to about
    # 1.6%; 8% is five of those standard errors.
    rng = np.random.default_rng(4)
    data = rng.exponential(size=(2000, 500))
    moments = stats.block_moments(jnp.asarray(data.T))
    spread = np.std(np.asarray(stats.variance(moments)), ddof=1)
    reported = float(
        np.sqrt(np.mean(np.asarray(stats.variance_standard_error(moments)) ** 2))
    )
    np.testing.assert_allclose(reported, spread, rtol=0.08)
