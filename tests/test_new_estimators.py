"""sf_cv and sf_ma: unbiasedness against the exact gradient, and sf_ma's state."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from harness import estimators, variance, variational
from harness.models import quadratic

QUADRATIC = {
    "name": "quadratic",
    "dim": 3,
    "curvature": 2.0,
    "condition_number": 5.0,
    "rotate": True,
    "seed": 1,
    "log_density_offset": 1.5,
}
NUM_REPLICATES = 40_000


def _instance(parameterization):
    model = quadratic.build(QUADRATIC, jnp.float64)
    mean = jnp.array([0.7, -0.4, 0.2])
    std = jnp.array([0.5, 1.2, 0.8])
    return model, variational.from_mean_and_std(mean, std, parameterization)


def _replicates(estimator, model, params, num_samples, state=None):
    """``NUM_REPLICATES`` independent estimates, flattened to ``(n, 2d)``."""
    if state is None:
        state = estimator.init(params)

    def one(rng_key):
        grad, _ = estimators.estimate_gradient(
            rng_key, model.log_joint, params, estimator, num_samples, state
        )
        return jnp.concatenate([grad.mean, grad.scale])

    keys = jax.random.split(jax.random.key(20260), NUM_REPLICATES)
    return np.asarray(jax.vmap(one)(keys))


def _assert_unbiased(draws, exact):
    """Every component's mean within 4 standard errors of the exact gradient."""
    mean = draws.mean(axis=0)
    standard_error = draws.std(axis=0, ddof=1) / np.sqrt(draws.shape[0])
    exact = np.concatenate([np.asarray(exact.mean), np.asarray(exact.scale)])
    assert np.all(np.abs(mean - exact) < 4 * standard_error), (
        mean,
        exact,
        standard_error,
    )


@pytest.mark.parametrize("parameterization", ["log_scale", "scale"])
@pytest.mark.parametrize("entropy", ["analytic", "sampled"])
def test_sf_cv_is_unbiased(parameterization, entropy):
    model, params = _instance(parameterization)
    estimator = estimators.make_estimator("sf_cv", parameterization, entropy)
    draws = _replicates(estimator, model, params, num_samples=4)
    _assert_unbiased(draws, variance.exact_gradient(model, params, parameterization))


def test_sf_cv_reduces_variance_of_sf():
    model, params = _instance("log_scale")
    sf = _replicates(estimators.make_estimator("sf"), model, params, 8)
    sf_cv = _replicates(estimators.make_estimator("sf_cv"), model, params, 8)
    # Offset a = 1.5 and E[w] far from zero: the fitted baseline must help.
    assert np.all(sf_cv.var(axis=0) < sf.var(axis=0))


def test_sf_cv_with_two_draws_is_sf_loo():
    _, params = _instance("log_scale")
    noise = jax.random.normal(jax.random.key(3), (2, 3), jnp.float64)
    evaluation = estimators.Evaluation(noise, jnp.array([-1.0, 2.5]), None)
    sf_cv = estimators.make_estimator("sf_cv")
    sf_loo = estimators.make_estimator("sf_loo")
    cv_grad, _ = sf_cv.estimate(params, evaluation, ())
    loo_grad, _ = sf_loo.estimate(params, evaluation, ())
    np.testing.assert_allclose(cv_grad.mean, loo_grad.mean, rtol=1e-12)
    np.testing.assert_allclose(cv_grad.scale, loo_grad.scale, rtol=1e-12)
    assert sf_cv.min_samples == 3 and sf_cv.stateless


def test_sf_ma_state_updates_as_documented():
    decay = 0.8
    sf_ma = estimators.make_estimator("sf_ma", baseline_decay=decay)
    sf = estimators.make_estimator("sf")
    _, params = _instance("log_scale")
    state = sf_ma.init(params)
    assert float(estimators.moving_average_baseline(state)) == 0.0
    assert not sf_ma.stateless

    noise = jax.random.normal(jax.random.key(4), (2, 5, 3), jnp.float64)
    brackets = jnp.array([[1.0, 2.0, 3.0, 4.0, 5.0], [-2.0, 0.0, 1.0, 3.0, 8.0]])
    m1, m2 = 3.0, 2.0
    expected_baselines = [
        0.0,
        m1,  # bias-corrected: (1 − β) m1 / (1 − β)
        (decay * (1 - decay) * m1 + (1 - decay) * m2) / (1 - decay**2),
    ]
    for t in range(2):
        evaluation = estimators.Evaluation(noise[t], brackets[t], None)
        baseline = expected_baselines[t]
        assert float(estimators.moving_average_baseline(state)) == pytest.approx(
            baseline, rel=1e-12
        )
        grad, state = sf_ma.estimate(params, evaluation, state)

        # The same as sf on brackets shifted by the baseline.
        shifted = estimators.Evaluation(noise[t], brackets[t] - baseline, None)
        sf_grad, _ = sf.estimate(params, shifted, ())
        np.testing.assert_allclose(grad.mean, sf_grad.mean, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grad.scale, sf_grad.scale, rtol=1e-12, atol=1e-12)

    assert float(state.weight) == pytest.approx(1 - decay**2, rel=1e-12)
    assert float(estimators.moving_average_baseline(state)) == pytest.approx(
        expected_baselines[2], rel=1e-12
    )


def test_sf_ma_is_unbiased_given_its_state():
    model, params = _instance("log_scale")
    sf_ma = estimators.make_estimator("sf_ma", baseline_decay=0.5)
    state = estimators.MovingAverageState(jnp.asarray(0.5), jnp.asarray(0.5))
    draws = _replicates(sf_ma, model, params, num_samples=4, state=state)
    _assert_unbiased(draws, variance.exact_gradient(model, params, "log_scale"))


def test_sf_ma_refuses_a_decay_outside_the_unit_interval():
    with pytest.raises(ValueError, match=r"baseline_decay=1\.0 is not allowed"):
        estimators.make_estimator("sf_ma", baseline_decay=1.0)
