"""The variance experiment: every estimator on common random numbers.

One job is one model × one evaluation point × one ``S``. Seed ``i`` of a run
with root key ``k`` draws its ``S × d`` normals from ``fold_in(k, i)``, so a
seed's draws do not depend on how the seeds are chunked, and runs with
different ``seed`` settings share no stream. All estimators read the same
draws and the same model evaluations. Seeds run under ``vmap`` in chunks of
``chunk_size``; per component, the moments of each estimate are accumulated
in float64 with pairwise merges (:mod:`harness.stats`).

The jitted chunk function is built once per model function, estimator set,
``S`` and chunk size, and reused across jobs of one process; everything else
(the model's data, the evaluation point, the seed) is traced, so a sweep over
settings that do not change shapes compiles once per shape. With several local
devices, each chunk's seeds are sharded across them; which key a seed gets,
and the order of the float64 reductions, do not depend on the device count.
A memory budget, when given, fixes the chunk size from the compiled program's
memory use (:func:`plan_chunk_size`).
"""

from __future__ import annotations

import functools
import logging
import time

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
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
        dim = params.mean.shape[-1]
        noise = estimators_lib.draw_noise(rng_key, num_samples, dim, params.mean.dtype)
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


def make_chunk_fn(
    model: Model, estimators, num_samples: int, chunk_size: int, mesh=None
):
    """A jitted ``(moments, root_key, start, num_seeds, params, data) -> moments``.

    With a ``mesh`` (one axis, ``"seeds"``), the chunk's seeds are split across
    its devices; the estimates are then gathered before their moments are
    taken, so that the float64 sums run in the same order as on one device.
    """
    one_seed = make_seed_fn(model, estimators, num_samples)

    @jax.jit
    def chunk(moments, root_key, start, num_seeds, params, data):
        index = start + jnp.arange(chunk_size)
        seeds = index
        if mesh is not None:
            seeds = jax.lax.with_sharding_constraint(
                index, NamedSharding(mesh, P("seeds"))
            )
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(root_key, seeds)
        estimates = jax.vmap(one_seed, in_axes=(0, None, None))(keys, params, data)
        mask = index < num_seeds
        if mesh is not None:
            replicated = NamedSharding(mesh, P())
            estimates = jax.lax.with_sharding_constraint(estimates, replicated)
            mask = jax.lax.with_sharding_constraint(mask, replicated)
        block = stats.block_moments(estimates, mask=mask)
        return stats.merge(moments, block)

    return chunk


@functools.lru_cache(maxsize=256)
def _cached_chunk_fn(log_joint_fn, specs, num_samples, chunk_size, mesh):
    built = [estimators_lib.make_estimator(*spec) for spec in specs]
    # Only the log-joint is read from the model when tracing; its dimension
    # comes from the parameters' shape.
    stub = Model("cached", 0, log_joint_fn, (), jnp.zeros(0))
    return make_chunk_fn(stub, built, num_samples, chunk_size, mesh)


def shared_chunk_fn(
    model: Model, estimators, num_samples: int, chunk_size: int, mesh=None
):
    """The jitted chunk function, shared by every job with the same statics.

    The key is the model's ``log_joint_fn``, the estimators' names and
    settings, ``S``, the chunk size and the mesh: two jobs that differ only in
    numbers (a curvature, a data subsample, an evaluation point) reuse one
    jitted function, which compiles once per shape. Estimators that are not in
    the registry get a fresh function.
    """
    specs = tuple((e.name, e.parameterization, e.entropy) for e in estimators)
    registered = all(
        name in estimators_lib.ESTIMATORS
        and estimators_lib.make_estimator(name, param, entropy)[:7] == e[:7]
        for (name, param, entropy), e in zip(specs, estimators, strict=True)
    )
    if not registered:
        return make_chunk_fn(model, estimators, num_samples, chunk_size, mesh)
    return _cached_chunk_fn(model.log_joint_fn, specs, num_samples, chunk_size, mesh)


def seed_mesh(devices=None):
    """A one-axis mesh ``("seeds",)`` over ``devices``, or ``None`` for one device."""
    devices = jax.local_devices() if devices is None else list(devices)
    if len(devices) < 2:
        return None
    return Mesh(np.array(devices), ("seeds",))


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def chunk_memory_bytes(
    model: Model, estimators, params, num_samples: int, chunk_size: int
) -> int:
    """Bytes the compiled chunk program uses: arguments, outputs and temporaries.

    Read from XLA's memory analysis of the program compiled (ahead of time, not
    run) at this chunk size.
    """
    chunk = make_chunk_fn(model, estimators, num_samples, chunk_size)
    moments = empty_moments((len(estimators), 2, model.dim))
    compiled = chunk.lower(
        moments, jax.random.key(0), 0, chunk_size, params, model.data
    ).compile()
    analysis = compiled.memory_analysis()
    return int(
        analysis.argument_size_in_bytes
        + analysis.output_size_in_bytes
        + analysis.temp_size_in_bytes
        - analysis.alias_size_in_bytes
    )


def plan_chunk_size(
    model: Model,
    estimators,
    params,
    *,
    num_samples: int,
    num_seeds: int,
    chunk_size: int,
    memory_budget: int,
    num_devices: int = 1,
) -> int:
    """The largest chunk, at most ``chunk_size``, whose program fits the budget.

    The program's memory is measured at two small chunk sizes and modelled as
    ``fixed + per_seed · chunk``, which holds because every per-seed array
    scales with the chunk. ``memory_budget`` is the budget in bytes for all
    devices together (on CPU they share the host's memory). Raises
    :class:`ConfigError` when not even one seed per device fits.
    """
    small, large = 16, 64
    used_small = chunk_memory_bytes(model, estimators, params, num_samples, small)
    used_large = chunk_memory_bytes(model, estimators, params, num_samples, large)
    per_seed = max((used_large - used_small) / (large - small), 1.0)
    fixed = max(used_small - small * per_seed, 0.0)
    fits = int((memory_budget - fixed) // per_seed)
    needed = int(fixed + per_seed * num_devices)
    if fits < num_devices:
        raise ConfigError(
            f"memory_budget={memory_budget} bytes is not allowed for this job: one "
            f"seed at S={num_samples}, d={model.dim} with {len(estimators)} "
            f"estimator(s) needs about {needed} bytes; expected a budget of at "
            f"least {needed} bytes, or null for no budget"
        )
    chunk = min(chunk_size, num_seeds, fits)
    chunk = max(num_devices, chunk - chunk % num_devices)
    # Temporaries need not scale exactly linearly; check the chosen chunk and
    # shrink it in proportion while the compiled program is over budget.
    for _ in range(4):
        used = chunk_memory_bytes(model, estimators, params, num_samples, chunk)
        if used <= memory_budget or chunk == num_devices:
            break
        shrunk = int(chunk * (memory_budget - fixed) / max(used - fixed, 1.0))
        shrunk = min(shrunk, chunk - num_devices)
        chunk = max(num_devices, shrunk - shrunk % num_devices)
    log.info(
        "memory budget %d bytes: about %d fixed + %d per seed, chunk of %d seeds",
        memory_budget,
        int(fixed),
        int(per_seed),
        chunk,
    )
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
    devices=None,
) -> stats.Moments:
    """Moments over ``num_seeds`` seeds of every estimator, shape ``(E, 2, d)``.

    The seeds' keys fold their index into ``rng_key``, or into
    ``jax.random.key(seed)`` when no key is given. ``devices`` defaults to every
    local device; with more than one, the chunk size is rounded up to a multiple
    of their number and each chunk's seeds are split evenly across them. A
    ``chunk_fn`` from :func:`make_chunk_fn`, built for the chunk size used here,
    replaces the shared one of :func:`shared_chunk_fn`.
    """
    mesh = seed_mesh(devices) if chunk_fn is None else None
    num_devices = 1 if mesh is None else mesh.size
    chunk_size = _round_up(min(chunk_size, num_seeds), num_devices)
    chunk = chunk_fn
    if chunk is None:
        chunk = shared_chunk_fn(model, estimators, num_samples, chunk_size, mesh)
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


def component_table(
    names, params, parameterization: str, moments, predicted, true_grad=None
) -> pd.DataFrame:
    """One row per estimator × block × component of measured moments.

    Args:
      names: the estimators, in the order of the moments' first axis.
      params: the evaluation point.
      parameterization: of ``params``.
      moments: :class:`harness.stats.Moments` of shape ``(E, 2, d)``.
      predicted: closed-form variances by estimator name (missing: NaN).
      true_grad: the exact gradient, or ``None`` where unknown (NaN).
    """
    num_estimators, num_blocks, dim = moments.mean.shape
    shape = (num_estimators, num_blocks, dim)
    nan = np.full((num_blocks, dim), np.nan)
    exact = nan if true_grad is None else np.stack([np.asarray(g) for g in true_grad])
    theory_rows = np.stack(
        [
            np.stack([np.asarray(v) for v in predicted[n]]) if n in predicted else nan
            for n in names
        ]
    )
    values = np.stack([np.asarray(p) for p in params])
    std = np.asarray(variational.std_dev(params, parameterization))
    index = np.indices(shape).reshape(3, -1)
    return pd.DataFrame(
        {
            "estimator": np.asarray(names)[index[0]],
            "block": np.asarray(BLOCKS)[index[1]],
            "component": index[2],
            "param_value": np.broadcast_to(values, shape).ravel(),
            "std": np.broadcast_to(std, shape).ravel(),
            "grad_mean": np.asarray(moments.mean).ravel(),
            "grad_mean_se": np.asarray(stats.mean_standard_error(moments)).ravel(),
            "grad_true": np.broadcast_to(exact, shape).ravel(),
            "mc_variance": np.asarray(stats.variance(moments)).ravel(),
            "mc_variance_se": np.asarray(
                stats.variance_standard_error(moments)
            ).ravel(),
            "theory_variance": theory_rows.ravel(),
        }
    )


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
    chunk_size = settings.chunk_size
    memory_budget = getattr(settings, "memory_budget", None)
    if memory_budget is not None:
        chunk_size = plan_chunk_size(
            model,
            built,
            params,
            num_samples=settings.num_samples,
            num_seeds=settings.num_seeds,
            chunk_size=chunk_size,
            memory_budget=memory_budget,
            num_devices=len(jax.local_devices()),
        )
    started = time.perf_counter()
    moments = simulate(
        model,
        built,
        params,
        num_samples=settings.num_samples,
        num_seeds=settings.num_seeds,
        chunk_size=chunk_size,
        seed=settings.seed,
        progress=progress,
    )
    compute_seconds = time.perf_counter() - started
    quad, predicted = theory_variances(model, params, settings, names)
    true_grad = exact_gradient(model, params, vsettings.parameterization)

    table = component_table(
        names, params, vsettings.parameterization, moments, predicted, true_grad
    )
    table["level"] = float(quad.level)
    table["compute_seconds"] = compute_seconds
    table["chunk_size_used"] = _round_up(
        min(chunk_size, settings.num_seeds), len(jax.local_devices())
    )
    return table
