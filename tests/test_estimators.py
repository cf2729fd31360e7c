"""The estimators equal autodiff of their defining surrogates, draw by draw."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from harness import estimators, variational
from harness.variational import MeanFieldParams
from tests.helpers import point, quadratic

COMBOS = list(
    itertools.product(variational.PARAMETERIZATIONS, estimators.ENTROPY_MODES)
)


def definition(name, log_joint, params, noise, parameterization, entropy):
    """The estimator written as the gradient of a surrogate objective."""
    sg = jax.lax.stop_gradient
    log_q = jax.vmap(variational.log_density, in_axes=(None, 0, None))

    def surrogate(p):
        theta = variational.sample(p, noise, parameterization)
        log_h = jax.vmap(log_joint)(theta)
        if name == "rp":
            objective = log_h
            if entropy == "sampled":
                return jnp.mean(objective - log_q(p, theta, parameterization))
            return jnp.mean(objective) + variational.entropy(p, parameterization)
        if name == "stl":
            return jnp.mean(log_h - log_q(sg(p), theta, parameterization))
        theta_fixed = sg(theta)
        bracket = sg(log_h)
        if entropy == "sampled":
            bracket = bracket - sg(log_q(p, theta_fixed, parameterization))
        if name == "sf_loo":
            num = bracket.shape[0]
            bracket = bracket - (jnp.sum(bracket) - bracket) / (num - 1)
        objective = jnp.mean(bracket * log_q(p, theta_fixed, parameterization))
        if entropy == "analytic":
            objective = objective + variational.entropy(p, parameterization)
        return objective

    return jax.grad(surrogate)(params)


@pytest.mark.parametrize(("parameterization", "entropy"), COMBOS)
@pytest.mark.parametrize("name", ["rp", "stl", "sf", "sf_loo"])
def test_matches_autodiff_of_definition(name, parameterization, entropy):
    model = quadratic(dim=5)
    params = point(model, parameterization)
    noise = jax.random.normal(jax.random.key(3), (6, model.dim), dtype=jnp.float64)
    estimator = estimators.make_estimator(name, parameterization, entropy)
    evaluation = estimators.evaluate(model.log_joint, params, noise, parameterization)
    got, _ = estimator.estimate(params, evaluation, estimator.init(params))
    want = definition(name, model.log_joint, params, noise, parameterization, entropy)
    np.testing.assert_allclose(got.mean, want.mean, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got.scale, want.scale, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("parameterization", variational.PARAMETERIZATIONS)
def test_rp_entropy_modes_coincide(parameterization):
    model = quadratic(dim=6)
    params = point(model, parameterization)
    noise = jax.random.normal(jax.random.key(4), (5, model.dim), dtype=jnp.float64)
    evaluation = estimators.evaluate(model.log_joint, params, noise, parameterization)
    results = []
    for entropy in estimators.ENTROPY_MODES:
        rp = estimators.make_estimator("rp", parameterization, entropy)
        results.append(rp.estimate(params, evaluation, ())[0])
    analytic, sampled = results
    np.testing.assert_allclose(analytic.mean, sampled.mean, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(analytic.scale, sampled.scale, rtol=1e-13, atol=1e-13)


def test_estimate_gradient_draws_from_the_key():
    model = quadratic(dim=3)
    params = point(model)
    rp = estimators.make_estimator("rp")
    first, _ = estimators.estimate_gradient(
        jax.random.key(0), model.log_joint, params, rp, 4
    )
    again, _ = estimators.estimate_gradient(
        jax.random.key(0), model.log_joint, params, rp, 4
    )
    other, _ = estimators.estimate_gradient(
        jax.random.key(1), model.log_joint, params, rp, 4
    )
    np.testing.assert_array_equal(first.mean, again.mean)
    assert not np.allclose(first.mean, other.mean)


def test_unknown_estimator_and_settings_are_refused():
    with pytest.raises(ValueError, match=r"'nope'.*allowed: rp, stl, sf, sf_loo"):
        estimators.make_estimator("nope")
    with pytest.raises(ValueError, match="parameterization='log'"):
        estimators.make_estimator("rp", parameterization="log")
    with pytest.raises(ValueError, match="entropy='exact'"):
        estimators.make_estimator("rp", entropy="exact")
    loo = estimators.make_estimator("sf_loo")
    params = MeanFieldParams(jnp.zeros(2), jnp.zeros(2))
    with pytest.raises(ValueError, match=r"num_samples=1 .*at least 2"):
        estimators.estimate_gradient(
            jax.random.key(0), lambda t: -jnp.sum(t**2), params, loo, 1
        )
