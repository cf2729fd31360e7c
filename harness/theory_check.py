"""The theory-vs-practice experiment: closed forms against measurement on a path.

One job optimizes the ELBO of one model with the pathwise estimator and Adam
[kingma2015] along a single trajectory (a jitted ``lax.scan``), and stops at
chosen fractions of its steps (by default the start, 10%, 50% and the end).
At each such point ``λ = (μ, σ)`` it

- measures every estimator's marginal variances over ``num_seeds`` seeds with
  :func:`harness.variance.simulate`, and
- predicts them from the quadratic expansion of ``log h`` at ``μ``
  (:mod:`harness.theory`): from the dense Hessian when ``d`` is at most
  ``theory_check.dense_hessian_max_dim``, otherwise from Hessian-vector
  products (:func:`harness.theory.hvp_expansion`).

The closed forms are exact for a quadratic log-joint; on a real model their
error at a point measures how far ``log h`` is from quadratic over the region
``q`` covers. Keys: the run's root ``jax.random.key(seed)`` is split into one
key for the optimizer (split again per step, ahead of the scan), one for the
ELBO estimates and one for the measurements, and the index of each path point
is folded into the last two, so no two draws share a stream.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from harness import estimators as estimators_lib
from harness import theory, variance, variational
from harness.config import RunSettings
from harness.errors import ConfigError, check_choice, check_float, check_int
from harness.models import Model
from harness.variational import MeanFieldParams

log = logging.getLogger(__name__)
STARTS = ("zero", "reference")
ELBO_DRAWS = 1000


@dataclasses.dataclass(frozen=True)
class PathSettings:
    """Settings of the optimization path and of the prediction.

    Attributes:
      num_steps: Adam steps ``T``.
      learning_rate: Adam's step size.
      num_samples: ``S`` of the pathwise gradient that drives the optimizer.
      path_points: fractions of ``T`` at which to measure, in ``[0, 1]``.
      start: ``zero`` (``μ₀ = 0``) or ``reference`` (``μ₀ = μ_ref + δ·1``); ``σ₀``
        is ``variational.scale`` either way.
      dense_hessian_max_dim: largest ``d`` for which the dense Hessian is
        formed; above it the expansion uses Hessian-vector products.
    """

    num_steps: int
    learning_rate: float
    num_samples: int
    path_points: tuple[float, ...]
    start: str
    dense_hessian_max_dim: int


def path_settings(cfg, key: str = "theory_check") -> PathSettings:
    """Validates the ``theory_check`` group."""
    cfg = cfg or {}
    num_steps = check_int(cfg.get("num_steps"), f"{key}.num_steps", 1)
    learning_rate = check_float(
        cfg.get("learning_rate"), f"{key}.learning_rate", greater_than=0
    )
    num_samples = check_int(cfg.get("num_samples"), f"{key}.num_samples", 1)
    points = cfg.get("path_points")
    allowed = "expected a non-empty list of distinct fractions in [0, 1]"
    if isinstance(points, str) or not isinstance(points, Sequence) or not points:
        raise ConfigError(f"{key}.path_points={points!r} is not allowed: {allowed}")
    fractions = []
    for point in points:
        try:
            fraction = check_float(point, f"{key}.path_points", at_least=0)
        except ConfigError:
            raise ConfigError(
                f"{key}.path_points={points!r} is not allowed: {allowed}"
            ) from None
        if fraction > 1:
            raise ConfigError(f"{key}.path_points={points!r} is not allowed: {allowed}")
        fractions.append(fraction)
    if len(set(fractions)) != len(fractions):
        raise ConfigError(f"{key}.path_points={points!r} is not allowed: {allowed}")
    steps = [round(f * num_steps) for f in fractions]
    if len(set(steps)) != len(steps):
        raise ConfigError(
            f"{key}.path_points={points!r} is not allowed with "
            f"{key}.num_steps={num_steps}: they fall on steps {steps}, some "
            "twice; expected fractions that round to distinct steps"
        )
    start = check_choice(cfg.get("start"), f"{key}.start", STARTS)
    dense_max = check_int(
        cfg.get("dense_hessian_max_dim"), f"{key}.dense_hessian_max_dim", 0
    )
    return PathSettings(
        num_steps, learning_rate, num_samples, tuple(fractions), start, dense_max
    )


def path_steps(path: PathSettings) -> list[int]:
    """The step index of each path point, ``round(fraction · T)``."""
    return [round(f * path.num_steps) for f in path.path_points]


def starting_point(model: Model, settings: RunSettings, path: PathSettings):
    """``λ₀``, checked to have a finite log-joint at its mean."""
    params = variance.evaluation_point(model, settings.variational)
    if path.start == "zero":
        params = MeanFieldParams(jnp.zeros_like(params.mean), params.scale)
    value = float(jax.jit(model.log_joint_fn)(params.mean, model.data))
    if not np.isfinite(value):
        raise ConfigError(
            f"theory_check.start={path.start!r} is not allowed for model "
            f"{model.name}: the log-joint is {value} at the starting mean; "
            f"expected a start where it is finite (one of {', '.join(STARTS)})"
        )
    return params


def optimize_path(
    rng_key,
    model: Model,
    params: MeanFieldParams,
    *,
    num_steps: int,
    learning_rate: float,
    num_samples: int,
    parameterization: str,
    entropy: str,
) -> MeanFieldParams:
    """Runs ``num_steps`` of Adam on the ``rp`` gradient from ``params``.

    Returns the whole path, ``λ_0 … λ_T`` stacked along a leading axis of
    length ``T + 1``.
    """
    estimator = estimators_lib.make_estimator("rp", parameterization, entropy)
    optimizer = optax.adam(learning_rate)
    keys = jax.random.split(rng_key, num_steps)

    @jax.jit
    def run(params, data, keys):
        def step(carry, key):
            params, opt_state = carry
            noise = estimators_lib.draw_noise(
                key, num_samples, model.dim, params.mean.dtype
            )
            evaluation = estimators_lib.evaluate(
                lambda theta: model.log_joint_fn(theta, data),
                params,
                noise,
                parameterization,
                value=False,
            )
            grad, _ = estimator.estimate(params, evaluation, ())
            descent = jax.tree.map(jnp.negative, grad)
            updates, opt_state = optimizer.update(descent, opt_state, params)
            params = optax.apply_updates(params, updates)
            return (params, opt_state), params

        _, path = jax.lax.scan(step, (params, optimizer.init(params)), keys)
        return jax.tree.map(lambda p0, p: jnp.concatenate([p0[None], p]), params, path)

    return run(params, model.data, keys)


def elbo_estimate(rng_key, model: Model, params, parameterization: str) -> float:
    """``mean_s log h(θ_s) + H[q]`` over :data:`ELBO_DRAWS` draws."""

    @jax.jit
    def estimate(rng_key, params, data):
        noise = estimators_lib.draw_noise(
            rng_key, ELBO_DRAWS, model.dim, params.mean.dtype
        )
        theta = variational.sample(params, noise, parameterization)
        values = jax.vmap(model.log_joint_fn, in_axes=(0, None))(theta, data)
        return jnp.mean(values.astype(jnp.float64)) + variational.entropy(
            params, parameterization
        )

    return float(estimate(rng_key, params, model.data))


def local_quadratic(
    model: Model, params, parameterization: str, dense_max_dim: int
) -> tuple[theory.ScaledQuadratic, str]:
    """The expansion at ``params`` in float64, and which route computed it."""
    model64 = model.astype(jnp.float64)
    params64 = jax.tree.map(lambda x: x.astype(jnp.float64), params)
    std = variational.std_dev(params64, parameterization)
    if model.dim <= dense_max_dim:
        expansion = jax.jit(
            lambda m, data: theory.local_expansion(
                lambda t: model.log_joint_fn(t, data), m
            )
        )
        level, gradient, hessian = expansion(params64.mean, model64.data)
        return theory.scale_expansion(level, gradient, hessian, std), "dense"
    expansion = jax.jit(
        lambda m, s, data: theory.hvp_expansion(
            lambda t: model.log_joint_fn(t, data), m, s
        )
    )
    return expansion(params64.mean, std, model64.data), "hvp"


def run(
    model: Model, settings: RunSettings, path: PathSettings, *, progress: bool = False
) -> pd.DataFrame:
    """Runs one theory-check job and returns its tidy table.

    One row per path point × estimator × block × component, with the measured
    variance and its standard error and the closed-form prediction under the
    local quadratic (``NaN`` for estimators without one, such as ``sf_loo``).
    """
    vsettings = settings.variational
    parameterization = vsettings.parameterization
    names = settings.estimators
    built = [
        estimators_lib.make_estimator(name, parameterization, vsettings.entropy)
        for name in names
    ]
    start = starting_point(model, settings, path)
    optimizer_key, elbo_key, measure_key = jax.random.split(
        jax.random.key(settings.seed), 3
    )

    started = time.perf_counter()
    trajectory = optimize_path(
        optimizer_key,
        model,
        start,
        num_steps=path.num_steps,
        learning_rate=path.learning_rate,
        num_samples=path.num_samples,
        parameterization=parameterization,
        entropy=vsettings.entropy,
    )
    if not bool(jnp.all(jnp.isfinite(trajectory.mean[-1]))):
        raise FloatingPointError(
            f"the optimization of {model.name} diverged; lower "
            f"theory_check.learning_rate (now {path.learning_rate})"
        )
    log.info("path: %d steps in %.1f s", path.num_steps, time.perf_counter() - started)

    tables = []
    for index, (fraction, step) in enumerate(
        zip(path.path_points, path_steps(path), strict=True)
    ):
        params = jax.tree.map(lambda p, s=step: p[s], trajectory)
        point_started = time.perf_counter()
        moments = variance.simulate(
            model,
            built,
            params,
            num_samples=settings.num_samples,
            num_seeds=settings.num_seeds,
            chunk_size=settings.chunk_size,
            seed=settings.seed,
            progress=progress,
            rng_key=jax.random.fold_in(measure_key, index),
        )
        quad, route = local_quadratic(
            model, params, parameterization, path.dense_hessian_max_dim
        )
        predicted = {
            name: theory.marginal_variances(
                quad, name, parameterization, vsettings.entropy, settings.num_samples
            )
            for name in names
            if name in theory.THEORY_ESTIMATORS
        }
        table = variance.component_table(
            names, params, parameterization, moments, predicted
        )
        table["model_label"] = model.name
        table["path_point"] = fraction
        table["step"] = step
        table["level"] = float(quad.level)
        table["elbo"] = elbo_estimate(
            jax.random.fold_in(elbo_key, index), model, params, parameterization
        )
        table["hessian"] = route
        table["compute_seconds"] = time.perf_counter() - point_started
        tables.append(table)
        log.info(
            "path point %g (step %d): ELBO %.4g, measured in %.1f s",
            fraction,
            step,
            table["elbo"].iloc[0],
            table["compute_seconds"].iloc[0],
        )
    return pd.concat(tables, ignore_index=True)
