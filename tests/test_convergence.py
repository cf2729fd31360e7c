"""The convergence runner: optimum recovery, vectorization, guards, compilation."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from harness import convergence, elbo, estimators, optimizers, variational
from harness.models import Model, build_model, quadratic
from tests.convergence_helpers import config, settings


def _model(cfg):
    return build_model(cfg["model"], jnp.float64)


def test_rp_with_adam_reaches_the_known_optimum_on_every_seed():
    cfg = config(
        num_samples=16,
        num_seeds=16,
        optim__learning_rate=0.05,
        optim__steps=800,
        optim__schedule="cosine",
        optim__final_fraction=0.01,
        eval_every=100,
        model__dim=4,
        model__curvature=2.0,
        model__condition_number=4.0,
    )
    model = _model(cfg)
    result = convergence.run(model, optimizers.convergence_settings(cfg))
    trace = result.traces["rp"]
    elbo_star = elbo.optimum_elbo(model)

    # L* = a + (d/2) log 2π − ½ Σ log P_ii for the diagonal P = c diag(1..κ).
    diag = 2.0 * np.geomspace(1.0, 4.0, 4)
    assert elbo_star == pytest.approx(2 * np.log(2 * np.pi) - 0.5 * np.log(diag).sum())
    # Stated tolerance, on every seed: from ‖μ₀ − μ*‖ = 2 to ‖μ − μ*‖ < 0.06,
    # ‖log σ − log σ*‖ < 0.08 and an ELBO gap below 5e-3 nats. (Adam's steps do
    # not shrink with the gradient noise, so the iterates settle at a spread
    # set by the step size; 16 seeds reach at most about half these bounds.)
    assert np.all(trace.mean_distance[:, 0] == pytest.approx(2.0))
    assert np.all(trace.mean_distance[:, -1] < 0.06)
    assert np.all(trace.log_scale_distance[:, -1] < 0.08)
    assert np.all(elbo_star - trace.elbo[:, -1] < 5e-3)
    assert np.all(elbo_star - trace.elbo[:, -1] > -1e-12)  # L ≤ L*
    # A diagonal P: the family holds the target, so KL* = 0 and KL = L* − L.
    np.testing.assert_allclose(trace.kl, elbo_star - trace.elbo, atol=1e-10)
    assert not trace.diverged.any() and not trace.skipped.any()


def test_closed_form_elbo_agrees_with_monte_carlo_within_4_standard_errors():
    model = quadratic.build(
        config(model__rotate=True, model__condition_number=10.0)["model"],
        jnp.float64,
    )
    params = variational.from_mean_and_std(
        jnp.array([0.3, -1.0, 0.5]), jnp.array([0.4, 0.9, 1.3]), "log_scale"
    )
    exact = elbo.closed_form_elbo(model, model.data, params, "log_scale")
    noise = convergence.elbo_noise(0, 4096, 3)
    estimate, standard_error = elbo.monte_carlo_elbo(
        model.log_joint_fn, model.data, params, noise, "log_scale"
    )
    assert abs(float(estimate) - float(exact)) < 4 * float(standard_error)
    assert 0 < float(standard_error) < 0.1


def test_quadratic_log_normalizer_and_kl_at_the_optimum():
    model = quadratic.build(
        config(model__rotate=True, model__condition_number=10.0)["model"],
        jnp.float64,
    )
    precision = np.asarray(model.data["precision"])
    sign, log_det = np.linalg.slogdet(precision)
    assert sign > 0
    assert model.log_normalizer == pytest.approx(1.5 * np.log(2 * np.pi) - log_det / 2)
    # KL* = ½ (Σ log P_ii − log |P|) > 0 for a rotated P (Hadamard).
    kl_star = model.log_normalizer - elbo.optimum_elbo(model)
    assert kl_star == pytest.approx(
        0.5 * (np.log(np.diagonal(precision)).sum() - log_det), rel=1e-10
    )
    assert kl_star > 0


@pytest.mark.parametrize("name", ["rp", "sf_ma"])
def test_one_seed_of_the_vectorized_run_equals_that_seed_alone(name):
    cfg = config(estimators=[name], num_seeds=4, optim__steps=30, eval_every=10)
    run_settings = optimizers.convergence_settings(cfg)
    model = _model(cfg)
    together = convergence.run(model, run_settings, segments=2)
    alone = convergence.run(model, run_settings, seed_indices=[2], segments=3)
    for field in convergence.Trace._fields:
        np.testing.assert_allclose(
            getattr(alone.traces[name], field)[0],
            getattr(together.traces[name], field)[2],
            rtol=1e-12,
            atol=1e-12,
        )
    # Different seeds do differ.
    assert not np.allclose(together.traces[name].elbo[0], together.traces[name].elbo[1])


def _scaled_quadratic(theta, data):
    """``−½ c ‖θ‖²``; ``c = NaN`` makes the value and the gradient NaN."""
    return -0.5 * data["curvature"] * jnp.sum(theta**2)


NAN_MODEL = Model("nan", 3, _scaled_quadratic, {"curvature": jnp.nan}, jnp.zeros(3))


def test_a_non_finite_step_leaves_the_state_unchanged_and_is_counted():
    run_settings = settings(estimators=["rp"], optim__name="adam")
    estimator = estimators.make_estimator("rp")
    optimizer = optimizers.make_optimizer(run_settings.optim)
    model = NAN_MODEL
    step = convergence.make_step_fn(model, estimator, optimizer, 4, steps=10)
    params = variational.from_mean_and_std(jnp.ones(3), jnp.ones(3), "log_scale")
    state = convergence.initial_states(estimator, optimizer, params, 1)
    state = jax.tree.map(lambda x: x[0], state)
    key = jax.random.key(0)

    nan_data = {"curvature": jnp.asarray(jnp.nan)}
    after = step(state, 0, key, nan_data)
    assert int(after.skipped) == 1
    for new, old in zip(
        jax.tree.leaves((after.params, after.optimizer_state)),
        jax.tree.leaves((state.params, state.optimizer_state)),
        strict=True,
    ):
        np.testing.assert_array_equal(new, old)

    finite_data = {"curvature": jnp.asarray(1.0)}
    after = step(state, 0, key, finite_data)
    assert int(after.skipped) == 0
    assert not np.allclose(after.params.mean, state.params.mean)
    assert int(optimizer_count(after.optimizer_state)) == 1

    inactive = step(state, 10, key, nan_data)  # past optim.steps: a no-op
    assert int(inactive.skipped) == 0


def optimizer_count(optimizer_state):
    """The step count of an adam state."""
    return next(s.count for s in optimizer_state if hasattr(s, "count"))


def test_a_seed_with_a_non_finite_elbo_is_marked_diverged():
    cfg = config(estimators=["rp", "sf"], num_seeds=3, optim__steps=20)
    run_settings = optimizers.convergence_settings(cfg)
    # No closed form: the Monte Carlo ELBO on the fixed draws is NaN.
    result = convergence.run(NAN_MODEL, run_settings)
    for name in ("rp", "sf"):
        trace = result.traces[name]
        assert trace.diverged.all()
        np.testing.assert_array_equal(trace.skipped[:, -1], 20)
        np.testing.assert_array_equal(trace.skipped[:, 0], 0)


def test_the_segment_program_compiles_once():
    cfg = config(
        estimators=["rp", "sf_ma"],
        num_seeds=6,
        chunk_size=4,  # two chunks, the second padded
        optim__steps=70,  # 7 intervals in 4 segments of 2: the last one masked
        eval_every=10,
    )
    result = convergence.run(
        _model(cfg), optimizers.convergence_settings(cfg), segments=4
    )
    assert result.compiles == {"rp": 1, "sf_ma": 1}
    np.testing.assert_array_equal(result.steps, [0, 10, 20, 30, 40, 50, 60, 70])
    assert result.traces["rp"].elbo.shape == (6, 8)

    # Direct calls with new values of the same shapes do not recompile either.
    run_settings = optimizers.convergence_settings(cfg)
    model = _model(cfg)
    estimator = estimators.make_estimator("rp")
    optimizer = optimizers.make_optimizer(run_settings.optim)
    segment, traces = convergence.make_segment_fn(
        model, estimator, optimizer, run_settings, 2
    )
    params = variational.from_mean_and_std(jnp.ones(3), jnp.ones(3), "log_scale")
    states = convergence.initial_states(estimator, optimizer, params, 4)
    keys = convergence.seed_keys(0, np.arange(4))
    for first in range(3):
        factor = 1.0 + first
        data = jax.tree.map(lambda x, f=factor: x * f, model.data)
        states, _ = segment(states, keys, jnp.asarray(first, jnp.int32), data, None)
    assert traces[0] == 1
    assert segment._cache_size() == 1


def test_sf_ma_runs_with_its_configured_decay():
    run_settings = settings(estimators=["sf_ma"], baseline_decay=0.5)
    estimator = convergence.build_estimator("sf_ma", run_settings)
    assert estimator.name == "sf_ma" and not estimator.stateless
    assert dataclasses.replace(run_settings, baseline_decay=0.25).baseline_decay == 0.25
