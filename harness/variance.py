"""The variance experiment: every estimator on common random numbers.

One job is one model × one evaluation point × one ``S``. Seed ``i`` of a run
with root key ``k`` draws its ``S × d`` normals from ``fold_in(k, i)``, so a
seed's draws do not depend on how the seeds are chunked, and runs with
different ``seed`` settings share no stream. All estimators read the same
draws and the same model evaluations. Seeds run under ``vmap`` in chunks of
``chunk_size``; per component, the moments of each estimate are accumulated
in float64 with pairwise merges (:mod:`harness.stats`).
"""

from __future__ import annotations

import logging
import time

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from harness import estimators as estimators_lib
from harness import stats, theory, variational
from harness.config import RunSettings, VariationalSettings
from harness.errors import ConfigError
from harness.models import Model
from harness.variational import MeanFieldParams

log = logging.getLogger(__name__)
BLOCKS = ("mean", "scale")
VARIANCE_ESTIMATORS = ("rp", "stl", "sf", "sf_loo", "sf_cv")


def laplace_std(model: Model) -> jax.Array:
    """``σ_i = (−H_ii)^{-1/2}`` with ``H`` the Hessian at the reference mean."""
    hessian = jax.jit(lambda mean, data: jax.hessian(model.log_joint_fn)(mean, data))
    hessian_diag = jnp.diagonal(hessian(model.reference_mean, model.data))
    if not bool(jnp.all(hessian_diag < 0)):
        raise ConfigError(
            "variational.scale='laplace' is not allowed for this model: the "
            "log-joint's Hessian diagonal at the reference mean is not negative "
            "everywhere; expected a positive number instead"
        )
    return 1.0 / jnp.sqrt(-hessian_diag)


def evaluation_point(model: Model, settings: VariationalSettings) -> MeanFieldParams:
    """``μ = μ_ref + δ·1`` and ``σ = s·1`` (or the Laplace scale)."""
    mean = model.reference_mean + settings.mean_offset
    if settings.scale == "laplace":
        std = laplace_std(model)
    else:
        std = jnp.full(model.dim, settings.scale, dtype=mean.dtype)
    return variational.from_mean_and_std(mean, std, settings.parameterization)


def make_seed_fn(model: Model, estimators, num_samples: int):
    """``(key, params, data) -> (E, 2, d)``: every estimate for one seed."""
    needs_value = any(e.needs_value for e in estimators)
    needs_gradient = any(e.needs_gradient for e in estimators)
    parameterization = estimators[0].parameterization

    def one_seed(rng_key, params, data):
        noise = estimators_lib.draw_noise(
            rng_key, num_samples, model.dim, params.mean.dtype
        )
        evaluation = estimators_lib.evaluate(
            lambda theta: model.log_joint_fn(theta, data),
            params,
            noise,
            parameterization,
            value=needs_value,
            gradient=needs_gradient,
        )
        blocks = []
        for estimator in estimators:
            grad, _ = estimator.estimate(params, evaluation, estimator.init(params))
            blocks.append(jnp.stack([grad.mean, grad.scale]))
        return jnp.stack(blocks)

    return one_seed


def make_chunk_fn(model: Model, estimators, num_samples: int, chunk_size: int):
    """A jitted ``(moments, root_key, start, num_seeds, params, data) -> moments``."""
    one_seed = make_seed_fn(model, estimators, num_samples)

    @jax.jit
    def chunk(moments, root_key, start, num_seeds, params, data):
        index = start + jnp.arange(chunk_size)
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(root_key, index)
        estimates = jax.vmap(one_seed, in_axes=(0, None, None))(keys, params, data)
        block = stats.block_moments(estimates, mask=index < num_seeds)
        return stats.merge(moments, block)

    return chunk


def empty_moments(shape) -> stats.Moments:
    zeros = jnp.zeros(shape, dtype=jnp.float64)
    return stats.Moments(zeros, zeros, zeros, zeros, zeros)


def simulate(
    model: Model,
    estimators,
    params: MeanFieldParams,
    *,
    num_samples: int,
    num_seeds: int,
    chunk_size: int,
    seed: int,
    progress: bool = False,
    rng_key: jax.Array | None = None,
    chunk_fn=None,
) -> stats.Moments:
    """Moments over ``num_seeds`` seeds of every estimator, shape ``(E, 2, d)``.

    The seeds' keys fold their index into ``rng_key``, or into
    ``jax.random.key(seed)`` when no key is given. ``chunk_fn``, from
    :func:`make_chunk_fn` with ``min(chunk_size, num_seeds)``, lets callers
    that measure many points of one model compile it once.
    """
    chunk_size = min(chunk_size, num_seeds)
    if chunk_fn is None:
        chunk_fn = make_chunk_fn(model, estimators, num_samples, chunk_size)
    chunk = chunk_fn
    root_key = jax.random.key(seed) if rng_key is None else rng_key
    moments = empty_moments((len(estimators), 2, model.dim))
    starts = range(0, num_seeds, chunk_size)
    for start in tqdm(starts, desc="seeds", unit="chunk", disable=not progress):
        moments = chunk(moments, root_key, start, num_seeds, params, model.data)
        if progress:  # so that the bar follows the computation, not the dispatch
            moments = jax.block_until_ready(moments)
    return jax.block_until_ready(moments)


def theory_variances(model: Model, params, settings: RunSettings, names):
    """Closed-form variances at ``params`` under the local quadratic, in float64."""
    model64 = model.astype(jnp.float64)
    params64 = jax.tree.map(lambda x: x.astype(jnp.float64), params)
    parameterization = settings.variational.parameterization
    std = variational.std_dev(params64, parameterization)
    expansion = jax.jit(
        lambda mean, data: theory.local_expansion(
            lambda theta: model64.log_joint_fn(theta, data), mean
        )
    )
    level, gradient, hessian = expansion(params64.mean, model64.data)
    quad = theory.scale_expansion(level, gradient, hessian, std)
    result = {}
    for name in names:
        if name in theory.THEORY_ESTIMATORS:
            result[name] = theory.marginal_variances(
                quad,
                name,
                parameterization,
                settings.variational.entropy,
                settings.num_samples,
            )
    return quad, result


def exact_gradient(model: Model, params, parameterization: str):
    """``∇_λ L`` in closed form, where the model knows ``E_q[log h]``."""
    if model.expected_log_joint_fn is None:
        return None
    model64 = model.astype(jnp.float64)
    params64 = jax.tree.map(lambda x: x.astype(jnp.float64), params)

    def elbo(p):
        std = variational.std_dev(p, parameterization)
        expected = model64.expected_log_joint_fn(p.mean, std, model64.data)
        return expected + variational.entropy(p, parameterization)

    return jax.grad(elbo)(params64)


def run(model: Model, settings: RunSettings, *, progress: bool = False) -> pd.DataFrame:
    """Runs one variance job and returns its tidy table.

    One row per estimator × block × component, with the measured mean and
    variance of the estimate and their standard errors, the exact gradient
    where known, and the closed-form variance under the local quadratic
    expansion where one exists.
    """
    names = settings.estimators
    vsettings = settings.variational
    built = [
        estimators_lib.make_estimator(
            name, vsettings.parameterization, vsettings.entropy
        )
        for name in names
    ]
    params = evaluation_point(model, vsettings)
    started = time.perf_counter()
    moments = simulate(
        model,
        built,
        params,
        num_samples=settings.num_samples,
        num_seeds=settings.num_seeds,
        chunk_size=settings.chunk_size,
        seed=settings.seed,
        progress=progress,
    )
    compute_seconds = time.perf_counter() - started
    quad, predicted = theory_variances(model, params, settings, names)
    true_grad = exact_gradient(model, params, vsettings.parameterization)

    grad_mean = np.asarray(moments.mean)
    grad_mean_se = np.asarray(stats.mean_standard_error(moments))
    mc_variance = np.asarray(stats.variance(moments))
    mc_variance_se = np.asarray(stats.variance_standard_error(moments))
    std = np.asarray(variational.std_dev(params, vsettings.parameterization))
    rows = []
    for e, name in enumerate(names):
        for b, block in enumerate(BLOCKS):
            block_params = np.asarray(params[b])
            for i in range(model.dim):
                rows.append(
                    {
                        "estimator": name,
                        "block": block,
                        "component": i,
                        "param_value": float(block_params[i]),
                        "std": float(std[i]),
                        "grad_mean": grad_mean[e, b, i],
                        "grad_mean_se": grad_mean_se[e, b, i],
                        "grad_true": (
                            float(np.asarray(true_grad[b])[i])
                            if true_grad is not None
                            else np.nan
                        ),
                        "mc_variance": mc_variance[e, b, i],
                        "mc_variance_se": mc_variance_se[e, b, i],
                        "theory_variance": (
                            float(np.asarray(predicted[name][b])[i])
                            if name in predicted
                            else np.nan
                        ),
                    }
                )
    table = pd.DataFrame(rows)
    table["level"] = float(quad.level)
    table["compute_seconds"] = compute_seconds
    return table
