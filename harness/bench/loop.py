"""The loop a user writes first: one jitted single-seed estimate per seed.

Seed ``i`` gets ``fold_in(root, i)``, as in the harness; the estimates are
collected and reduced at the end. The loop is timed over fewer seeds than the
harness and scaled linearly to the harness's seed count, since each iteration
costs the same.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from harness import estimators, variance
from harness.bench import common
from harness.bench.common import Row

NUM_SAMPLES = 10
TARGET = 50.0


def loop_seconds(model, num_seeds: int) -> float:
    """Seconds of a Python loop of ``num_seeds`` jitted single-seed ``rp`` estimates."""
    rp = estimators.make_estimator("rp")
    params = variance.evaluation_point(model, common.POINT)

    @jax.jit
    def one_seed(rng_key, params, data):
        grad, _ = estimators.estimate_gradient(
            rng_key,
            lambda theta: model.log_joint_fn(theta, data),
            params,
            rp,
            NUM_SAMPLES,
        )
        return grad

    root = jax.random.key(0)

    def loop(count):
        grads = [
            one_seed(jax.random.fold_in(root, i), params, model.data)
            for i in range(count)
        ]
        stacked = jax.tree.map(lambda *g: jnp.stack(g), *grads)
        return jax.tree.map(lambda g: jnp.var(g, axis=0), stacked)

    jax.block_until_ready(loop(num_seeds))  # compiles, the stack included
    started = time.perf_counter()
    jax.block_until_ready(loop(num_seeds))
    return time.perf_counter() - started


def run(quick: bool) -> list[Row]:
    num_seeds = 10_000
    timed = 200 if quick else 1_000
    rows = []
    cases = [
        ("logistic (569×31)", common.logistic()),
        ("quadratic d=10", common.quadratic(10)),
        ("quadratic d=100", common.quadratic(100)),
    ]
    for name, model in cases:
        loop = loop_seconds(model, timed) * num_seeds / timed
        harness = common.harness_seconds(
            model, ["rp"], num_samples=NUM_SAMPLES, num_seeds=num_seeds
        )
        ratio = loop / harness
        rows.append(
            Row(
                "loop",
                f"{name}: loop / harness at 10,000 seeds",
                ratio,
                "×",
                f"≥ {TARGET:g}",
                common.check(ratio, at_least=TARGET),
                f"rp, S={NUM_SAMPLES}; loop timed over {timed} seeds and scaled "
                "×" + f"{num_seeds // timed}; harness run over all 10,000",
            )
        )
    return rows
