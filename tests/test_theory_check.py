"""The HVP expansion, and the theory check on an exactly Gaussian NumPyro model."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from omegaconf import OmegaConf

from harness import estimators, stats, theory, theory_check, variance, variational
from harness.config import run_settings
from harness.errors import ConfigError
from harness.models import Model
from harness.models.numpyro_adapter import from_numpyro
from tests.helpers import compose_config


def quartic(theta):
    """A non-quadratic log-joint with a dense, position-dependent Hessian."""
    coupling = jnp.outer(jnp.arange(1.0, 8.0), jnp.linspace(-1.0, 1.0, 7)) / 7.0
    return -0.25 * jnp.sum(theta**4) - jnp.sum(jnp.sin(coupling @ theta)) ** 2


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_hvp_expansion_equals_the_dense_one(batch_size):
    mean = jax.random.normal(jax.random.key(0), (7,))
    std = jnp.linspace(0.2, 1.5, 7)
    dense = theory.scale_expansion(*theory.local_expansion(quartic, mean), std)
    from_products = theory.hvp_expansion(quartic, mean, std, batch_size=batch_size)
    for got, expected in zip(from_products, dense, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


PRECISION = np.array([[3.0, 0.6, 0.0], [0.6, 2.0, -0.3], [0.0, -0.3, 1.5]])
OBSERVATIONS = np.array([0.5, -1.0, 2.0])


def gaussian_model(observations):
    """``x ~ N(0, I)``, ``y ~ N(L x, I)`` with ``LᵀL + I = PRECISION``."""
    factor = jnp.asarray(np.linalg.cholesky(PRECISION - np.eye(3)).T)
    x = numpyro.sample("x", dist.Normal(0.0, 1.0).expand([3]).to_event(1))
    numpyro.sample("y", dist.Normal(factor @ x, 1.0).to_event(1), obs=observations)


def closed_form_expansion(mean, std):
    """``(a, g, H)`` of the Gaussian model from its precision, by hand."""
    factor = np.linalg.cholesky(PRECISION - np.eye(3)).T
    mean = np.asarray(mean)
    residual = OBSERVATIONS - factor @ mean
    level = -0.5 * mean @ mean - 0.5 * residual @ residual - 3.0 * np.log(2 * np.pi)
    gradient = -mean + factor.T @ residual
    return theory.scale_expansion(level, gradient, -PRECISION, jnp.asarray(std))


def test_gaussian_numpyro_model_prediction_matches_closed_form_and_measurement():
    model = from_numpyro(
        gaussian_model, {"observations": jnp.asarray(OBSERVATIONS)}, reference="init"
    )
    mean = jnp.array([0.3, -0.2, 0.8])
    std = jnp.array([0.5, 0.9, 1.3])
    params = variational.from_mean_and_std(mean, std, "log_scale")
    expected = closed_form_expansion(mean, std)
    for dense_max in (10, 0):  # the dense route, then Hessian-vector products
        quad, route = theory_check.local_quadratic(
            model, params, "log_scale", dense_max
        )
        assert route == ("dense" if dense_max else "hvp")
        for got, want in zip(quad, expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)

    names = ("rp", "stl", "sf")
    built = [estimators.make_estimator(name) for name in names]
    num_samples = 4
    moments = variance.simulate(
        model,
        built,
        params,
        num_samples=num_samples,
        num_seeds=20000,
        chunk_size=5000,
        seed=5,
    )
    measured = np.asarray(stats.variance(moments))
    standard_error = np.asarray(stats.variance_standard_error(moments))
    for e, name in enumerate(names):
        predicted = theory.marginal_variances(
            expected, name, "log_scale", "analytic", num_samples
        )
        for b in range(2):
            # Within 4 standard errors of the measured variance, per component.
            gap = np.abs(measured[e, b] - np.asarray(predicted[b]))
            assert np.all(gap <= 4 * standard_error[e, b]), (name, b, gap)


def test_path_settings_reject_bad_values():
    base = OmegaConf.to_container(compose_config([]))["theory_check"]
    theory_check.path_settings(base)
    for key, value in (
        ("num_steps", 0),
        ("learning_rate", -1.0),
        ("path_points", [0.0, 1.5]),
        ("path_points", []),
        ("path_points", [0.5, 0.5]),
        ("start", "middle"),
        ("dense_hessian_max_dim", -1),
    ):
        with pytest.raises(ConfigError, match=rf"theory_check\.{key}"):
            theory_check.path_settings({**base, key: value})


def log_of_first(theta, data):
    del data
    return jnp.log(theta[0]) - 0.5 * jnp.sum(theta**2)


def test_a_start_where_the_log_joint_is_not_finite_is_rejected():
    model = Model("log", 2, log_of_first, (), jnp.ones(2))
    container = OmegaConf.to_container(compose_config(["experiment=theory_check"]))
    settings = run_settings(container, variance.VARIANCE_ESTIMATORS)
    path = theory_check.path_settings(container["theory_check"])
    with pytest.raises(ConfigError, match=r"theory_check\.start"):
        theory_check.starting_point(model, settings, path)


def test_path_chunks_compile_once():
    model = Model("log", 2, log_of_first, (), jnp.ones(2))
    built = [estimators.make_estimator(name) for name in ("rp", "sf")]
    chunk_fn = variance.make_chunk_fn(model, built, 3, 8)
    params = variational.from_mean_and_std(jnp.ones(2), jnp.ones(2) * 0.1, "log_scale")
    for shift in (0.0, 0.5):
        shifted = variational.MeanFieldParams(params.mean + shift, params.scale)
        variance.simulate(
            model,
            built,
            shifted,
            num_samples=3,
            num_seeds=16,
            chunk_size=8,
            seed=0,
            rng_key=jax.random.key(1),
            chunk_fn=chunk_fn,
        )
    assert chunk_fn._cache_size() == 1
