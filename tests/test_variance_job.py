"""The vectorized variance job: chunking, reproducibility, streams, float32."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from harness import estimators, stats, theory, variance
from tests.helpers import point, quadratic


def run(model, params, names=("rp", "sf"), **kwargs):
    settings = {"num_samples": 2, "num_seeds": 300, "chunk_size": 1000, "seed": 0}
    settings.update(kwargs)
    built = [estimators.make_estimator(n) for n in names]
    return variance.simulate(model, built, params, **settings)


def test_chunking_does_not_change_results():
    model = quadratic(dim=3)
    params = point(model)
    whole = run(model, params)
    chunked = run(model, params, chunk_size=7)
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_same_settings_give_the_same_numbers():
    model = quadratic(dim=3)
    params = point(model)
    first, second = run(model, params, chunk_size=64), run(model, params, chunk_size=64)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_runs_with_different_seeds_share_no_draws():
    def first_draws(seed, count=2000):
        root = jax.random.key(seed)
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(root, jnp.arange(count))
        return np.asarray(jax.vmap(lambda k: jax.random.normal(k, (1,)))(keys)).ravel()

    a, b = first_draws(0), first_draws(1)
    assert len(np.intersect1d(a, b)) == 0
    assert len(np.unique(a)) == len(a)
    model = quadratic(dim=3)
    params = point(model)
    m0, m1 = run(model, params, seed=0), run(model, params, seed=1)
    assert not np.allclose(m0.mean, m1.mean)


def check_against_theory(model, params, names, num_samples, num_seeds):
    moments = run(
        model,
        params,
        names=names,
        num_samples=num_samples,
        num_seeds=num_seeds,
        chunk_size=10_000,
    )
    model64 = model.astype(jnp.float64)
    params64 = jax.tree.map(lambda x: x.astype(jnp.float64), params)
    std = jnp.exp(params64.scale)
    quad = theory.scale_expansion(
        *theory.local_expansion(model64.log_joint, params64.mean), std
    )
    for e, name in enumerate(names):
        want = jnp.stack(
            theory.marginal_variances(quad, name, "log_scale", "analytic", num_samples)
        )
        z = (stats.variance(moments)[e] - want) / stats.variance_standard_error(
            moments
        )[e]
        assert float(jnp.max(jnp.abs(z))) < 4, (name, z)
        exact = jnp.stack(variance.exact_gradient(model64, params64, "log_scale"))
        z_mean = (moments.mean[e] - exact) / stats.mean_standard_error(moments)[e]
        assert float(jnp.max(jnp.abs(z_mean))) < 4, (name, z_mean)


def test_float32_with_a_very_low_log_density_level():
    # a = −10⁶: the score function's variance is about 2a²/S ~ 10¹², and its
    # statistics must still match the closed form within 4 standard errors.
    model = quadratic(dim=3, offset=-1e6, dtype=jnp.float32)
    params = point(model, mean_offset=0.2, scale=0.8)
    check_against_theory(model, params, ["rp", "sf"], 4, 40_000)


def test_float32_with_gradient_mean_a_thousand_times_its_spread():
    # P = I, μ = 10, σ = 0.01, S = 1: the rp mean gradient is −10 with spread 0.01.
    model = quadratic(dim=2, rotate=False, curvature=1.0, offset=0.0, dtype=jnp.float32)
    params = point(model, mean_offset=10.0, scale=0.01)
    check_against_theory(model, params, ["rp"], 1, 40_000)
    moments = run(model, params, names=["rp"], num_samples=1, num_seeds=1000)
    ratio = np.abs(moments.mean[0, 0]) / np.sqrt(stats.variance(moments)[0, 0])
    assert np.all(ratio > 900)


def test_laplace_scale_is_refused_where_the_hessian_is_not_negative():
    from harness.config import VariationalSettings
    from harness.errors import ConfigError
    from harness.models.base import Model

    flat = Model("flat", 2, lambda theta, data: jnp.sum(theta**2), (), jnp.zeros(2))
    with pytest.raises(ConfigError, match=r"variational\.scale='laplace'"):
        variance.evaluation_point(
            flat, VariationalSettings("log_scale", "analytic", 0.0, "laplace")
        )
