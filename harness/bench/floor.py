"""The floor: the least array work a variance job must do, against the harness.

For ``N`` seeds at ``S`` draws in ``d`` dimensions a job must at least draw
``N·S·d`` standard normals and evaluate ``log h`` and ``∇ log h`` once at each
draw. The floor does just that, as one jitted array program over all seeds
(one normal draw, one ``vmap`` of ``value_and_grad``, a sum so that nothing is
dropped), over the seeds in chunks of the harness's size, so that both work
on arrays of the same shapes. The harness does that plus a key per seed, the estimators'
arithmetic and float64 moments. The profile rows time those pieces apart.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from harness import variance
from harness.bench import common
from harness.bench.common import Row

ALL = ("rp", "stl", "sf", "sf_loo")
NUM_SAMPLES = 10
# The floor and the harness are close; more repeats steady their ratio.
REPEATS = 5


CHUNK = 1000


def floor_fn(model, num_seeds: int, num_samples: int, value: bool = True):
    """``(key, params, data) -> sums``: normals and one gradient (and value) each.

    ``rp`` alone needs only ``∇ log h``; ``sf`` needs ``log h``, so the floor of
    several estimators evaluates both.
    """
    if value:
        evaluate = jax.value_and_grad(model.log_joint_fn)
    else:
        evaluate = jax.grad(model.log_joint_fn)
    evaluate = jax.vmap(jax.vmap(evaluate, (0, None)), (0, None))

    @jax.jit
    def floor(rng_key, params, data):
        noise = jax.random.normal(
            rng_key, (num_seeds, num_samples, model.dim), params.mean.dtype
        )
        theta = params.mean + jnp.exp(params.scale) * noise
        return jax.tree.map(lambda x: jnp.sum(x, axis=(0, 1)), evaluate(theta, data))

    return floor


def _cases(quick: bool):
    seeds = 2_000 if quick else 10_000
    yield "quadratic d=100", common.quadratic(100), seeds
    yield "quadratic d=1000", common.quadratic(1000), 1_000 if quick else 2_000
    yield "logistic (569×31)", common.logistic(), seeds


def _profile(name, model, num_seeds, floor_seconds) -> list[Row]:
    """Seconds of the floor's two halves, and of the normals under other PRNGs.

    Timed on one chunk and scaled to ``num_seeds``.
    """
    params = variance.evaluation_point(model, common.POINT)
    shape = (CHUNK, NUM_SAMPLES, model.dim)
    dtype = params.mean.dtype

    def normals(impl):
        key = jax.random.key(0, impl=impl)
        draw = jax.jit(lambda k: jnp.sum(jax.random.normal(k, shape, dtype)))
        return common.best_time(lambda: draw(key))

    noise = jax.random.normal(jax.random.key(1), shape, dtype)
    value_and_grad = jax.vmap(
        jax.vmap(jax.value_and_grad(model.log_joint_fn), (0, None)), (0, None)
    )
    evaluate = jax.jit(
        lambda eps, p, data: jax.tree.map(
            jnp.sum, value_and_grad(p.mean + jnp.exp(p.scale) * eps, data)
        )
    )
    evaluation = common.best_time(lambda: evaluate(noise, params, model.data))
    threefry = normals("threefry2x32")
    rbg = normals("rbg")
    per_seed = 1e6 / CHUNK
    rows = []
    if "precision" in model.data:
        product = jax.jit(lambda eps, p: jnp.sum(eps @ p))
        matmul = common.best_time(lambda: product(noise, model.data["precision"]))
        rows.append(
            Row(
                "profile",
                f"{name}: one product θP",
                matmul * per_seed,
                "µs/seed",
                "n/a",
                "n/a",
                f"({NUM_SAMPLES}×d)(d×d) per seed; autodiff of log h needs two",
            )
        )
    floor_per_chunk = floor_seconds * CHUNK / num_seeds
    return [
        *rows,
        Row(
            "profile",
            f"{name}: normals (threefry)",
            threefry * per_seed,
            "µs/seed",
            "n/a",
            "n/a",
            f"{NUM_SAMPLES}×d float32 normals per seed",
        ),
        Row(
            "profile",
            f"{name}: log h and ∇ log h",
            evaluation * per_seed,
            "µs/seed",
            "n/a",
            "n/a",
            f"vmap(value_and_grad) at {NUM_SAMPLES} draws",
        ),
        Row(
            "profile",
            f"{name}: normals share of floor",
            threefry / floor_per_chunk,
            "fraction",
            "n/a",
            "n/a",
            "normals alone / floor with log h and ∇ log h",
        ),
        Row(
            "profile",
            f"{name}: rbg / threefry normals",
            rbg / threefry,
            "ratio",
            "n/a",
            "n/a",
            "jax.random 'rbg' keys (other streams; not used)",
        ),
    ]


def floor_seconds(model, num_seeds: int, value: bool) -> float:
    """Warm seconds of the floor over ``num_seeds`` seeds, chunk after chunk."""
    params = variance.evaluation_point(model, common.POINT)
    floor = floor_fn(model, CHUNK, NUM_SAMPLES, value)
    keys = jax.random.split(jax.random.key(0), num_seeds // CHUNK)
    return common.best_time(
        lambda: [floor(k, params, model.data) for k in keys], REPEATS
    )


def run(quick: bool) -> list[Row]:
    rows = []
    for name, model, num_seeds in _cases(quick):
        floor = floor_seconds(model, num_seeds, value=False)
        floor_both = floor_seconds(model, num_seeds, value=True)
        one = common.harness_seconds(
            model, ["rp"], num_samples=NUM_SAMPLES, num_seeds=num_seeds, repeats=REPEATS
        )
        every = common.harness_seconds(
            model, ALL, num_samples=NUM_SAMPLES, num_seeds=num_seeds, repeats=REPEATS
        )
        ratio_one = one / floor
        per_estimator = every / len(ALL) / one
        what = (
            f"S={NUM_SAMPLES}, {num_seeds} seeds, chunks of {CHUNK}, float32; "
            "floor with ∇ log h only"
        )
        rows += [
            Row(
                "floor",
                f"{name}: harness rp / floor",
                ratio_one,
                "ratio",
                "≤ 1.5",
                common.check(ratio_one, at_most=1.5),
                what,
            ),
            Row(
                "floor",
                f"{name}: harness 4 estimators / floor",
                every / floor_both,
                "ratio",
                "n/a",
                "n/a",
                "rp, stl, sf, sf_loo on common draws; floor with log h and ∇ log h",
            ),
            Row(
                "floor",
                f"{name}: per estimator, 4 together / rp alone",
                per_estimator,
                "ratio",
                "< 1",
                "yes" if per_estimator < 1 else "no",
                "harness time with 4 estimators / 4, over harness time with rp",
            ),
        ]
        rows += _profile(name, model, num_seeds, floor_both)
    return rows
