"""The closed-form variances: exact against quadrature, and sf ≥ rp."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.polynomial.hermite_e import hermegauss

from harness import estimators, stats, theory, variance, variational
from tests.helpers import point, quadratic
from tests.test_estimators import definition

COMBOS = list(
    itertools.product(variational.PARAMETERIZATIONS, estimators.ENTROPY_MODES)
)


def gauss_hermite_grid(dim, order):
    """Nodes and weights integrating polynomials of degree < 2·order under N(0, I)."""
    nodes, weights = hermegauss(order)
    weights = weights / math.sqrt(2 * math.pi)
    grid = np.stack(np.meshgrid(*[nodes] * dim, indexing="ij"), -1).reshape(-1, dim)
    w = np.prod(np.stack(np.meshgrid(*[weights] * dim, indexing="ij"), -1), -1)
    return jnp.asarray(grid), jnp.asarray(w.reshape(-1))


def expansion_at(model, params, parameterization):
    std = variational.std_dev(params, parameterization)
    return theory.scale_expansion(
        *theory.local_expansion(model.log_joint, params.mean), std
    )


@pytest.mark.parametrize(("parameterization", "entropy"), COMBOS)
@pytest.mark.parametrize("name", theory.THEORY_ESTIMATORS)
def test_closed_form_equals_quadrature(name, parameterization, entropy):
    # One-draw estimates are polynomials of degree ≤ 4 in ε, their squares of
    # degree ≤ 8, so a 5-point Gauss–Hermite rule per axis is exact.
    model = quadratic(dim=3, curvature=0.8, condition_number=6.0, offset=-1.7, seed=2)
    params = point(model, parameterization, mean_offset=0.4, scale=0.9)
    nodes, weights = gauss_hermite_grid(model.dim, order=6)

    def one_draw(eps):
        grad = definition(
            name, model.log_joint, params, eps[None], parameterization, entropy
        )
        return jnp.stack([grad.mean, grad.scale])

    draws = jax.vmap(one_draw)(nodes)
    mean = jnp.einsum("n,nbd->bd", weights, draws)
    var = jnp.einsum("n,nbd->bd", weights, (draws - mean) ** 2)

    quad = expansion_at(model, params, parameterization)
    want = theory.marginal_variances(quad, name, parameterization, entropy, 1)
    np.testing.assert_allclose(var[0], want.mean, rtol=1e-9)
    np.testing.assert_allclose(var[1], want.scale, rtol=1e-9)
    expected = theory.expected_gradient(quad, parameterization)
    np.testing.assert_allclose(mean[0], expected.mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mean[1], expected.scale, rtol=1e-9, atol=1e-12)


def random_expansion(rng, dim, definite):
    root = rng.standard_normal((dim, dim))
    hessian = -(root @ root.T) / dim if definite else (root + root.T) / 2
    return theory.scale_expansion(
        level=rng.uniform(-50, 50),
        gradient=jnp.asarray(rng.standard_normal(dim) * rng.uniform(0, 5)),
        hessian=jnp.asarray(hessian * rng.uniform(0.01, 10)),
        std=jnp.asarray(rng.uniform(0.05, 3.0, dim)),
    )


@pytest.mark.parametrize("parameterization", variational.PARAMETERIZATIONS)
@pytest.mark.parametrize("definite", [True, False])
def test_sf_dominates_rp_in_theory(parameterization, definite):
    # Holds for any symmetric Hessian, by the sum-of-squares form in harness.theory.
    rng = np.random.default_rng(11)
    for _ in range(300):
        quad = random_expansion(rng, int(rng.integers(1, 9)), definite)
        sf = theory.marginal_variances(quad, "sf", parameterization, "analytic", 1)
        rp = theory.marginal_variances(quad, "rp", parameterization, "analytic", 1)
        assert np.all(np.asarray(sf.mean) >= np.asarray(rp.mean))
        assert np.all(np.asarray(sf.scale) >= np.asarray(rp.scale))


def measure(model, params, names, parameterization, entropy, num_samples, seeds):
    built = [estimators.make_estimator(n, parameterization, entropy) for n in names]
    moments = variance.simulate(
        model,
        built,
        params,
        num_samples=num_samples,
        num_seeds=seeds,
        chunk_size=25_000,
        seed=7,
    )
    return moments


@pytest.mark.parametrize(("parameterization", "entropy"), COMBOS)
def test_measured_variance_and_mean_match_closed_forms(parameterization, entropy):
    names = ["rp", "stl", "sf", "sf_loo"]
    num_samples = 3
    for instance in range(2):
        model = quadratic(
            dim=4, curvature=1.5, condition_number=8.0, offset=1.2, seed=instance
        )
        params = point(model, parameterization, mean_offset=1.5, scale=0.6)
        moments = measure(
            model, params, names, parameterization, entropy, num_samples, 100_000
        )
        quad = expansion_at(model, params, parameterization)
        exact = variance.exact_gradient(model, params, parameterization)
        for e, name in enumerate(names):
            # Unbiasedness: within 4 standard errors of the exact gradient.
            z_mean = (moments.mean[e] - jnp.stack(exact)) / stats.mean_standard_error(
                moments
            )[e]
            assert float(jnp.max(jnp.abs(z_mean))) < 4, (name, instance, z_mean)
            if name not in theory.THEORY_ESTIMATORS:
                continue
            want = theory.marginal_variances(
                quad, name, parameterization, entropy, num_samples
            )
            z_var = (stats.variance(moments)[e] - jnp.stack(want)) / (
                stats.variance_standard_error(moments)[e] + 1e-300
            )
            assert float(jnp.max(jnp.abs(z_var))) < 4, (name, instance, z_var)


@pytest.mark.parametrize("parameterization", variational.PARAMETERIZATIONS)
def test_sf_dominates_rp_in_measurement(parameterization):
    rng = np.random.default_rng(5)
    for instance in range(3):
        model = quadratic(
            dim=int(rng.integers(2, 6)),
            curvature=float(rng.uniform(0.2, 5)),
            condition_number=float(rng.uniform(1, 20)),
            offset=float(rng.uniform(-5, 5)),
            seed=instance,
        )
        params = point(model, parameterization, float(rng.uniform(-1, 1)), 0.5)
        moments = measure(
            model, params, ["rp", "sf"], parameterization, "analytic", 2, 40_000
        )
        var = stats.variance(moments)
        se = stats.variance_standard_error(moments)
        gap = var[1] - var[0]
        assert bool(jnp.all(gap > -4 * jnp.sqrt(se[0] ** 2 + se[1] ** 2)))
        # The gap is not marginal: sf is worse by many standard errors everywhere.
        assert bool(jnp.all(gap > 4 * jnp.sqrt(se[0] ** 2 + se[1] ** 2)))


def test_sampled_entropy_sf_can_beat_rp_at_the_posterior():
    # At q = p for a normalized Gaussian target, log h − log q = log Z = 0 for
    # every draw: the sampled-entropy score function has zero variance.
    model0 = quadratic(dim=3, rotate=False, condition_number=4.0, offset=0.0)
    precision = np.diag(np.asarray(model0.data["precision"]))
    log_norm = -0.5 * 3 * math.log(2 * math.pi) + 0.5 * np.sum(np.log(precision))
    model = quadratic(dim=3, rotate=False, condition_number=4.0, offset=log_norm)
    params = point(model, "log_scale", mean_offset=0.0, scale="laplace")
    quad = expansion_at(model, params, "log_scale")
    sf = theory.marginal_variances(quad, "sf", "log_scale", "sampled", 1)
    rp = theory.marginal_variances(quad, "rp", "log_scale", "sampled", 1)
    np.testing.assert_allclose(jnp.stack(sf), 0.0, atol=1e-12)
    assert bool(jnp.all(jnp.stack(rp) > 0.1))
    moments = measure(model, params, ["rp", "sf"], "log_scale", "sampled", 1, 20_000)
    np.testing.assert_allclose(stats.variance(moments)[1], 0.0, atol=1e-20)
    assert bool(jnp.all(stats.variance(moments)[0] > 0.1))
