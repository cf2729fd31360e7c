"""The memory budget sets the chunk size; the chunk function compiles once a shape."""

import jax.numpy as jnp
import pytest

from harness import estimators, variance
from harness.config import parse_bytes, run_settings
from harness.errors import ConfigError
from harness.models import build_model

QUADRATIC = dict(
    name="quadratic",
    dim=20,
    curvature=1.0,
    condition_number=1.0,
    rotate=False,
    seed=0,
    log_density_offset=0.0,
)
POINT = dict(parameterization="log_scale", entropy="analytic", mean_offset=0.5)


def _settings(**overrides):
    cfg = dict(
        experiment="variance",
        estimators=["rp", "sf"],
        num_samples=4,
        num_seeds=300,
        chunk_size=1000,
        seed=0,
        precision="float32",
        variational=dict(POINT, scale=1.0),
    )
    cfg.update(overrides)
    return run_settings(cfg, variance.VARIANCE_ESTIMATORS)


def test_parse_bytes_units_and_refusals():
    assert parse_bytes("2GiB", "memory_budget") == 2 * 2**30
    assert parse_bytes("1.5 MB", "memory_budget") == 1_500_000
    assert parse_bytes(4096, "memory_budget") == 4096
    assert parse_bytes(None, "memory_budget") is None
    for bad in ("lots", "2 parsecs", 0, -5, True, "0B"):
        with pytest.raises(ConfigError, match=r"memory_budget=.* is not allowed"):
            parse_bytes(bad, "memory_budget")


def test_chunk_size_follows_from_budget():
    model = build_model(QUADRATIC, jnp.float32)
    settings = _settings()
    built = [estimators.make_estimator(n) for n in settings.estimators]
    params = variance.evaluation_point(model, settings.variational)

    def used(chunk):
        return variance.chunk_memory_bytes(model, built, params, 4, chunk)

    plan = dict(num_samples=4, num_seeds=300, chunk_size=1000)
    per_seed = (used(64) - used(16)) / 48
    budget = int(used(16) + 40.5 * per_seed)
    chunk = variance.plan_chunk_size(model, built, params, memory_budget=budget, **plan)
    # About 16 + 40 seeds fit; the program at the chosen chunk is in budget and
    # not far below it.
    assert 40 <= chunk <= 56
    assert used(chunk) <= budget < used(chunk + 8)


def test_budget_too_small_for_one_seed_is_refused_before_work():
    model = build_model(QUADRATIC, jnp.float32)
    settings = _settings(memory_budget="1KiB")
    assert settings.memory_budget == 1024
    with pytest.raises(ConfigError) as raised:
        variance.run(model, settings)
    message = str(raised.value)
    assert "memory_budget=1024" in message
    assert "expected a budget of at least" in message


def test_budgeted_run_matches_unbudgeted_counts():
    model = build_model(QUADRATIC, jnp.float32)
    table = variance.run(model, _settings(memory_budget="400KiB"))
    assert int(table["chunk_size_used"].iloc[0]) < 300
    reference = variance.run(model, _settings())
    # Unbudgeted, the chunk is chunk_size=1000 capped at the 300 seeds.
    assert int(reference["chunk_size_used"].iloc[0]) == 300
    # Seeds keep their keys whatever the chunking: same means to float64 merges.
    assert table["grad_mean"].to_numpy() == pytest.approx(
        reference["grad_mean"].to_numpy(), rel=1e-10, abs=1e-10
    )


def test_chunk_function_compiles_once_per_shape():
    variance._cached_chunk_fn.cache_clear()
    for curvature in (0.1, 1.0, 10.0):
        for offset in (0.0, 0.5):
            model = build_model(dict(QUADRATIC, curvature=curvature), jnp.float32)
            settings = _settings(variational=dict(POINT, mean_offset=offset, scale=0.7))
            variance.run(model, settings)
    assert variance._cached_chunk_fn.cache_info().currsize == 1
    chunk = variance._cached_chunk_fn(
        model.log_joint_fn,
        tuple((n, "log_scale", "analytic") for n in settings.estimators),
        4,
        300,
        None,
    )
    assert chunk._cache_size() == 1
    # A new dimension is a new shape: one more compilation, same function.
    variance.run(build_model(dict(QUADRATIC, dim=5), jnp.float32), settings)
    assert chunk._cache_size() == 2
