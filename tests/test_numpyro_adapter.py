"""The NumPyro adapter: log-densities, transforms, optima and bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
import pytest
from numpyro import handlers

from harness import estimators, variational
from harness.errors import ConfigError
from harness.models import build_model, logistic, numpyro_models
from harness.models.numpyro_adapter import from_numpyro, import_target


def test_logistic_log_joint_matches_hand_written():
    cfg = {
        "name": "logistic",
        "dataset": "breast_cancer",
        "num_data": 60,
        "prior_scale": 1.5,
        "seed": 3,
    }
    hand = build_model({**cfg, "backend": "jax"}, jnp.float64)
    adapted = build_model({**cfg, "backend": "numpyro"}, jnp.float64)
    thetas = jax.random.normal(jax.random.key(0), (20, hand.dim))
    expected = jax.jit(jax.vmap(hand.log_joint))(thetas)
    got = jax.jit(jax.vmap(adapted.log_joint))(thetas)
    # Both sum 60 Bernoulli terms and 31 prior terms of size O(10): float64
    # rounding is about 1e-16 relative per term.
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(adapted.reference_mean, hand.reference_mean, atol=1e-5)


def lognormal_model(m=0.7, s=0.4):
    numpyro.sample("x", dist.LogNormal(m, s))


def test_unconstrained_density_includes_log_jacobian():
    model = from_numpyro(lognormal_model, {}, reference="init")
    u = jnp.linspace(-2.0, 3.0, 11)
    expected = jax.scipy.stats.norm.logpdf(u, 0.7, 0.4)
    got = jax.jit(jax.vmap(model.log_joint))(u[:, None])
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("name", ["rp", "stl", "sf", "sf_loo"])
def test_lognormal_site_reaches_its_mean_field_optimum(name):
    # In u = log x the density is exactly N(m, s²), so the optimum is (m, s).
    model = from_numpyro(lognormal_model, {}, reference="init")
    estimator = estimators.make_estimator(name)
    num_steps, num_chains, num_samples = 3000, 16, 16
    optimizer = optax.adam(optax.cosine_decay_schedule(0.05, num_steps))

    def chain(rng_key):
        params = variational.from_mean_and_std(jnp.zeros(1), jnp.ones(1), "log_scale")

        def step(carry, key):
            params, state = carry
            grad, _ = estimators.estimate_gradient(
                key, model.log_joint, params, estimator, num_samples, ()
            )
            updates, state = optimizer.update(
                jax.tree.map(jnp.negative, grad), state, params
            )
            return (optax.apply_updates(params, updates), state), None

        keys = jax.random.split(rng_key, num_steps)
        (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), keys)
        return params.mean[0], jnp.exp(params.scale[0])

    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(
        jax.random.key(11), jnp.arange(num_chains)
    )
    means, stds = jax.jit(jax.vmap(chain))(keys)
    for values, target in ((means, 0.7), (stds, 0.4)):
        values = np.asarray(values)
        standard_error = values.std(ddof=1) / np.sqrt(num_chains)
        # 4 standard errors of the chains' average, plus 1e-3 for the bias of a
        # finite decaying schedule (stl's chains agree to rounding at the
        # optimum, where its gradient has no variance).
        assert abs(values.mean() - target) <= 4 * standard_error + 1e-3


def constrained_model():
    scale = numpyro.sample("scale", dist.HalfCauchy(2.0))
    weights = numpyro.sample("weights", dist.Dirichlet(jnp.ones(4)))
    bounded = numpyro.sample("bounded", dist.Uniform(-1.0, 2.0))
    upper = numpyro.sample("upper", dist.LogNormal(0.0, 1.0))
    numpyro.sample("below", dist.Uniform(0.0, upper))
    numpyro.sample("obs", dist.Normal(bounded, scale), obs=jnp.array([0.3, 0.5]))
    del weights


def test_constrained_draws_lie_in_their_supports():
    model = from_numpyro(constrained_model, {}, reference="init")
    # scale, weights (3 unconstrained), bounded, upper, below.
    assert model.dim == 7
    assert np.isfinite(float(jax.jit(model.log_joint)(model.reference_mean)))
    theta = 2.0 * jax.random.normal(jax.random.key(1), (4000, model.dim))
    values = jax.jit(jax.vmap(model.constrain_fn, in_axes=(0, None)))(theta, model.data)
    trace = handlers.trace(handlers.seed(constrained_model, 0)).get_trace()
    for site in ("scale", "weights", "bounded", "upper"):
        support = trace[site]["fn"].support
        assert bool(jnp.all(support(values[site]))), site
    assert bool(jnp.all(values["scale"] > 0))
    np.testing.assert_allclose(jnp.sum(values["weights"], axis=-1), 1.0, rtol=1e-12)
    assert bool(jnp.all((values["below"] > 0) & (values["below"] < values["upper"])))


def test_import_target_errors_name_the_setting():
    for target in ("no_colon", "no_such_module_xyz:f", "harness.models:no_such"):
        with pytest.raises(ConfigError, match=r"model\.target"):
            import_target(target)
    with pytest.raises(ConfigError, match=r"model\.target"):
        build_model({"name": "numpyro", "target": "math:pi"}, jnp.float64)


def not_a_model(values):
    return jnp.sum(values)


def test_a_function_without_sample_sites_is_rejected():
    with pytest.raises(ConfigError, match="not a NumPyro model"):
        build_model(
            {
                "name": "numpyro",
                "target": "tests.test_numpyro_adapter:not_a_model",
                "data": {"values": [1.0, 2.0]},
            },
            jnp.float64,
        )


def test_data_of_the_wrong_shape_is_rejected():
    cfg = {
        "name": "numpyro",
        "target": "harness.models.numpyro_models:logistic_regression",
        "data": {"features": np.ones((10, 3)).tolist(), "targets": [1.0] * 7},
    }
    with pytest.raises(ConfigError, match=r"model\.data"):
        build_model(cfg, jnp.float64)


def improper_start():
    x = numpyro.sample("x", dist.Normal(0.0, 1.0))
    numpyro.factor("broken", jnp.where(x < 100.0, -jnp.inf, 0.0))


def test_a_log_joint_not_finite_at_the_start_is_rejected():
    with pytest.raises(ConfigError, match="finite"):
        from_numpyro(improper_start, {})


def discrete_model():
    numpyro.sample("k", dist.Poisson(3.0))


def test_discrete_latent_sites_are_rejected():
    with pytest.raises(ConfigError, match="discrete"):
        from_numpyro(discrete_model, {})


def test_eight_schools_parameterizations_share_data():
    centered = build_model(
        {"name": "eight_schools", "parameterization": "centered"}, jnp.float64
    )
    noncentered = build_model(
        {"name": "eight_schools", "parameterization": "noncentered"}, jnp.float64
    )
    assert centered.dim == noncentered.dim == 10
    values = jax.jit(noncentered.constrain_fn)(
        noncentered.reference_mean, noncentered.data
    )
    assert float(values["tau"]) > 0
    with pytest.raises(ConfigError, match=r"model\.parameterization"):
        build_model({"name": "eight_schools", "parameterization": "both"}, jnp.float64)


def test_logistic_model_function_has_the_harness_layout():
    # The NumPyro model's single site is β with the design matrix's columns.
    features = logistic.design_matrix(jnp.ones((4, 2)))
    trace = handlers.trace(handlers.seed(numpyro_models.logistic_regression, 0))
    sites = trace.get_trace(features=features, targets=jnp.ones(4))
    assert sites["beta"]["value"].shape == (3,)
