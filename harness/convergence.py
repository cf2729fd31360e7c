"""The convergence experiment: each estimator drives an optax optimizer.

One job is one model × one ``S`` × one optimizer setting. Every estimator
starts from the same point (the variance experiment's evaluation point,
:func:`harness.variance.evaluation_point`) and takes ``optim.steps`` steps of
gradient ascent on the ELBO, on ``num_seeds`` seeds at once.

Randomness: with root key ``k = key(seed)``, seed ``i`` draws the ``S × d``
normals of its step ``t`` from ``fold_in(fold_in(fold_in(k, 0), i), t)``, and
the fixed draws of a Monte Carlo ELBO come from ``fold_in(k, 1)``. A seed's
draws depend neither on how seeds are chunked nor on how steps are segmented,
and every estimator sees the same draws at its step ``t`` (common random
numbers at the common start).

Compilation: seeds run under ``vmap`` (in chunks of ``chunk_size``) and steps
under ``lax.scan``. A *segment* program scans a fixed number of evaluation
intervals of ``eval_every`` steps each and records the metrics
(:mod:`harness.elbo`) after each interval; Python calls it repeatedly,
advancing a progress bar in between. Steps past ``optim.steps`` in the last
segment are masked, so every call has the same shapes and the program is
compiled once per model, estimator and ``S``.

Safeguards: a step whose gradient estimate, update or new parameters are not
all finite is skipped (parameters, optimizer state and estimator state stay
as they were) and counted; a seed whose ELBO is ever non-finite is marked
diverged from then on.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from jax import Array
from tqdm.auto import tqdm

from harness import elbo as elbo_lib
from harness import estimators as estimators_lib
from harness.models import Model
from harness.optimizers import ConvergenceSettings, make_optimizer
from harness.variance import evaluation_point
from harness.variational import MeanFieldParams

log = logging.getLogger(__name__)
OPTIMIZATION_STREAM = 0
ELBO_STREAM = 1
# Segments per chunk of seeds, when the caller does not choose.
DEFAULT_SEGMENTS = 20
TRACE_COLUMNS = (
    "elbo",
    "mean_distance",
    "log_scale_distance",
    "kl",
    "skipped",
    "diverged",
)


class SeedState(NamedTuple):
    """The optimization state of one seed, carried through the scan.

    Attributes:
      params: the variational parameters ``λ``.
      optimizer_state: the optax state.
      estimator_state: the estimator's state (empty for stateless ones).
      skipped: steps skipped so far because something was not finite.
      diverged: whether the ELBO has been non-finite at an evaluation.
    """

    params: MeanFieldParams
    optimizer_state: Any
    estimator_state: Any
    skipped: Array
    diverged: Array


class Trace(NamedTuple):
    """The record of one evaluation: :class:`harness.elbo.Metrics` and flags."""

    elbo: Array
    mean_distance: Array
    log_scale_distance: Array
    kl: Array
    skipped: Array
    diverged: Array


@dataclasses.dataclass(frozen=True)
class ConvergenceResult:
    """What :func:`run` returns.

    Attributes:
      table: the tidy trace table, one row per estimator × seed × recorded step.
      traces: per estimator, a :class:`Trace` of arrays of shape
        ``(seeds, recorded steps)``.
      steps: the recorded steps, starting with 0 (the common start).
      compiles: per estimator, how many times its segment program was traced
        (compiled); one when nothing recompiles.
      seconds: per estimator, wall time including compilation.
    """

    table: pd.DataFrame
    traces: dict[str, Trace]
    steps: np.ndarray
    compiles: dict[str, int]
    seconds: dict[str, float]


def all_finite(tree) -> Array:
    """Whether every floating-point entry of ``tree`` is finite."""
    leaves = [
        jnp.all(jnp.isfinite(leaf))
        for leaf in jax.tree.leaves(tree)
        if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact)
    ]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def make_step_fn(model: Model, estimator, optimizer, num_samples: int, steps: int):
    """``(state, step_index, seed_key, data) -> state``: one guarded step."""
    parameterization = estimator.parameterization

    def step(state: SeedState, step_index, seed_key, data) -> SeedState:
        rng_key = jax.random.fold_in(seed_key, step_index)
        dtype = state.params.mean.dtype
        noise = estimators_lib.draw_noise(rng_key, num_samples, model.dim, dtype)

        evaluation = estimators_lib.evaluate(
            lambda theta: model.log_joint_fn(theta, data),
            state.params,
            noise,
            parameterization,
            value=estimator.needs_value,
            gradient=estimator.needs_gradient,
        )
        grad, estimator_state = estimator.estimate(
            state.params, evaluation, state.estimator_state
        )

        # optax minimizes; the ELBO is maximized.
        descent = jax.tree.map(jnp.negative, grad)
        updates, optimizer_state = optimizer.update(
            descent, state.optimizer_state, state.params
        )
        params = optax.apply_updates(state.params, updates)

        active = step_index < steps
        finite = all_finite((grad, updates, params, estimator_state))
        accept = active & finite
        proposed = (params, optimizer_state, estimator_state)
        current = (state.params, state.optimizer_state, state.estimator_state)
        params, optimizer_state, estimator_state = jax.tree.map(
            lambda new, old: jnp.where(accept, new, old), proposed, current
        )
        skipped = state.skipped + (active & ~finite).astype(state.skipped.dtype)
        return SeedState(
            params, optimizer_state, estimator_state, skipped, state.diverged
        )

    return step


def make_segment_fn(
    model: Model, estimator, optimizer, settings: ConvergenceSettings, intervals: int
):
    """A jitted ``(states, seed_keys, first_interval, data, noise)`` program.

    It maps ``intervals`` evaluation intervals over a batch of seeds and
    returns the new states and a :class:`Trace` of shape ``(seeds,
    intervals)``. The second value is a one-element list counting how many
    times the program was traced.
    """
    eval_every = settings.eval_every
    step = make_step_fn(
        model, estimator, optimizer, settings.run.num_samples, settings.optim.steps
    )
    metrics_fn = elbo_lib.make_metrics_fn(model, estimator.parameterization)
    traces = [0]

    def one_seed(state, seed_key, first_interval, data, noise):
        def interval(state, index):
            start = (first_interval + index) * eval_every
            step_indices = start + jnp.arange(eval_every, dtype=jnp.int32)
            state, _ = jax.lax.scan(
                lambda s, t: (step(s, t, seed_key, data), None), state, step_indices
            )

            metrics = metrics_fn(state.params, data, noise)
            diverged = state.diverged | ~jnp.isfinite(metrics.elbo)
            state = state._replace(diverged=diverged)
            return state, Trace(*metrics, state.skipped, diverged)

        return jax.lax.scan(interval, state, jnp.arange(intervals, dtype=jnp.int32))

    def segment(states, seed_keys, first_interval, data, noise):
        traces[0] += 1  # runs only while tracing
        batched = jax.vmap(one_seed, in_axes=(0, 0, None, None, None))
        return batched(states, seed_keys, first_interval, data, noise)

    return jax.jit(segment), traces


def initial_states(estimator, optimizer, params: MeanFieldParams, num_seeds: int):
    """The common start, replicated over ``num_seeds`` seeds."""

    def init(p):
        return SeedState(
            p,
            optimizer.init(p),
            estimator.init(p),
            jnp.zeros((), jnp.int32),
            jnp.zeros((), bool),
        )

    batched = jax.tree.map(lambda x: jnp.broadcast_to(x, (num_seeds, *x.shape)), params)
    return jax.vmap(init)(batched)


def seed_keys(seed: int, seed_indices) -> Array:
    """Per-seed keys of the optimization streams, ``fold_in(fold_in(k, 0), i)``."""
    root = jax.random.fold_in(jax.random.key(seed), OPTIMIZATION_STREAM)
    return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(
        root, jnp.asarray(seed_indices, dtype=jnp.uint32)
    )


def elbo_noise(seed: int, num_draws: int, dim: int) -> Array:
    """The fixed draws of the Monte Carlo ELBO, common to every run of ``seed``."""
    rng_key = jax.random.fold_in(jax.random.key(seed), ELBO_STREAM)
    return jax.random.normal(rng_key, (num_draws, dim), dtype=jnp.float64)


def build_estimator(name: str, settings: ConvergenceSettings):
    """The estimator ``name`` with the run's family settings and options."""
    vsettings = settings.run.variational
    options = {"baseline_decay": settings.baseline_decay} if name == "sf_ma" else {}
    return estimators_lib.make_estimator(
        name, vsettings.parameterization, vsettings.entropy, **options
    )


def _schedule(settings: ConvergenceSettings, segments: int | None):
    """``(intervals per segment, segments)`` covering every step."""
    total = math.ceil(settings.optim.steps / settings.eval_every)
    wanted = DEFAULT_SEGMENTS if segments is None else segments
    per_segment = math.ceil(total / max(1, min(wanted, total)))
    return per_segment, math.ceil(total / per_segment), total


def run_estimator(
    model: Model,
    name: str,
    settings: ConvergenceSettings,
    seed_indices,
    *,
    segments: int | None = None,
    progress: bool = False,
):
    """Runs one estimator on ``seed_indices``; returns ``(Trace, traces)``.

    The Trace holds arrays of shape ``(seeds, intervals)`` (the recorded steps
    after the start); the second value counts tracings of the program.
    """
    estimator = build_estimator(name, settings)
    optimizer = make_optimizer(settings.optim)
    params = evaluation_point(model, settings.run.variational)
    per_segment, num_segments, total = _schedule(settings, segments)
    segment, traces = make_segment_fn(
        model, estimator, optimizer, settings, per_segment
    )
    noise = None
    if model.expected_log_joint_fn is None:
        noise = elbo_noise(settings.run.seed, settings.elbo_samples, model.dim)

    seed_indices = np.asarray(seed_indices)
    chunk = min(settings.run.chunk_size, len(seed_indices))
    num_chunks = math.ceil(len(seed_indices) / chunk)
    padded = np.resize(seed_indices, num_chunks * chunk)  # repeats fill the tail
    steps = settings.optim.steps
    bar = tqdm(
        total=steps * num_chunks,
        desc=name,
        unit="step",
        disable=not progress,
        leave=False,
    )
    outputs = []
    for c in range(num_chunks):
        keys = seed_keys(settings.run.seed, padded[c * chunk : (c + 1) * chunk])
        states = initial_states(estimator, optimizer, params, chunk)
        pieces = []
        for s in range(num_segments):
            first = jnp.asarray(s * per_segment, dtype=jnp.int32)
            states, trace = segment(states, keys, first, model.data, noise)
            pieces.append(jax.device_get(trace))  # waits for the segment
            done = min((s + 1) * per_segment * settings.eval_every, steps)
            bar.update(done - min(s * per_segment * settings.eval_every, steps))
        outputs.append(
            Trace(*(np.concatenate(f, axis=1) for f in zip(*pieces, strict=True)))
        )
    bar.close()

    trace = Trace(
        *(
            np.concatenate(f, axis=0)[: len(seed_indices), :total]
            for f in zip(*outputs, strict=True)
        )
    )
    return trace, traces[0]


def recorded_steps(settings: ConvergenceSettings) -> np.ndarray:
    """0, then every ``eval_every`` steps, then the last step."""
    steps, every = settings.optim.steps, settings.eval_every
    total = math.ceil(steps / every)
    return np.concatenate([[0], np.minimum(np.arange(1, total + 1) * every, steps)])


def start_trace(model: Model, settings: ConvergenceSettings, num_seeds: int) -> Trace:
    """The metrics at the common start, replicated over seeds."""
    vsettings = settings.run.variational
    params = evaluation_point(model, vsettings)
    noise = None
    if model.expected_log_joint_fn is None:
        noise = elbo_noise(settings.run.seed, settings.elbo_samples, model.dim)
    metrics_fn = elbo_lib.make_metrics_fn(model, vsettings.parameterization)
    metrics = jax.jit(metrics_fn)(params, model.data, noise)
    column = lambda value: np.full((num_seeds, 1), np.asarray(value))  # noqa: E731
    return Trace(
        *(column(m) for m in metrics),
        np.zeros((num_seeds, 1), np.int32),
        column(~np.isfinite(np.asarray(metrics.elbo))),
    )


def trace_table(name: str, trace: Trace, steps, seed_indices) -> pd.DataFrame:
    """The long table of one estimator's traces."""
    num_seeds, num_steps = trace.elbo.shape
    table = pd.DataFrame(
        {
            "estimator": name,
            "seed_index": np.repeat(np.asarray(seed_indices), num_steps),
            "step": np.tile(steps, num_seeds),
        }
    )
    for column, values in zip(TRACE_COLUMNS, trace, strict=True):
        values = np.asarray(values).reshape(-1)
        if column in ("skipped",):
            values = values.astype(np.int64)
        elif column == "diverged":
            values = values.astype(bool)
        else:
            values = values.astype(np.float64)
        table[column] = values
    return table


def run(
    model: Model,
    settings: ConvergenceSettings,
    *,
    seed_indices=None,
    segments: int | None = None,
    progress: bool = False,
) -> ConvergenceResult:
    """Runs every estimator of ``settings`` and returns their traces.

    Callable without Hydra's app, e.g. for a benchmark (enable x64 first, as
    the command line does, for float64 statistics)::

        jax.config.update("jax_enable_x64", True)
        cfg = app.compose_config(["experiment=convergence", "model=logistic"])
        settings = optimizers.convergence_settings(cfg)
        model = models.build_model(cfg["model"], settings.run.dtype)
        result = convergence.run(model, settings)

    Args:
      model: the target.
      settings: validated settings (:func:`harness.optimizers.convergence_settings`).
      seed_indices: which seeds to run (default ``range(num_seeds)``); a seed's
        trace does not depend on which others run with it.
      segments: segments per chunk of seeds (default 20); progress granularity.
      progress: show a progress bar.
    """
    if seed_indices is None:
        seed_indices = np.arange(settings.run.num_seeds)
    seed_indices = np.asarray(seed_indices)
    steps = recorded_steps(settings)
    start = start_trace(model, settings, len(seed_indices))
    optimum = elbo_lib.optimum_elbo(model)

    tables, traces, compiles, seconds = [], {}, {}, {}
    for name in settings.run.estimators:
        started = time.perf_counter()
        trace, count = run_estimator(
            model,
            name,
            settings,
            seed_indices,
            segments=segments,
            progress=progress,
        )
        seconds[name] = time.perf_counter() - started
        compiles[name] = count
        trace = Trace(
            *(np.concatenate([s, t], axis=1) for s, t in zip(start, trace, strict=True))
        )
        traces[name] = trace

        table = trace_table(name, trace, steps, seed_indices)
        table["grad_evals_per_step"] = settings.run.num_samples
        table["estimator_seconds"] = seconds[name]
        tables.append(table)
        final = trace.elbo[:, -1][~trace.diverged[:, -1]]
        log.info(
            "%s: %d steps × %d seeds in %.1f s; final ELBO median %s, %d diverged",
            name,
            settings.optim.steps,
            len(seed_indices),
            seconds[name],
            f"{np.median(final):.6g}" if final.size else "n/a",
            len(seed_indices) - final.size,
        )

    table = pd.concat(tables, ignore_index=True)
    table["elbo_optimum"] = optimum
    table["log_normalizer"] = (
        np.nan if model.log_normalizer is None else model.log_normalizer
    )
    return ConvergenceResult(table, traces, steps, compiles, seconds)
