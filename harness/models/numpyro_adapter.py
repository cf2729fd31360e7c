"""Any NumPyro model as a harness model, in unconstrained space.

A NumPyro model ``model_fn(**kwargs)`` with continuous latent sites ``z_k``
defines the log-joint ``log p(z, y)``. Each site's support ``S_k`` is mapped to
``R^{d_k}`` by the bijection ``T_k = biject_to(S_k)``, and the harness works on
``θ = (u_1, …, u_K)`` with ``z_k = T_k(u_k)``, whose density carries the
log-Jacobians of the transforms:

    log h(θ) = log p(T(u), y) + Σ_k log |det ∂T_k(u_k)/∂u_k|.

This is NumPyro's negative potential energy, evaluated here with
:func:`numpyro.infer.util.potential_energy`. Supports that depend on other
sites (``Uniform(0, x)``) are transformed at trace time with the values of
their parents, so they work too. :attr:`Model.constrain_fn` maps ``θ`` back
to the sites' values, which always lie in their supports.

From the command line, ``model=numpyro model.target=package.module:function``
builds the model named by ``target``, with the entries of ``model.data`` as its
keyword arguments: lists and floating-point numbers become arrays (read as
data, so models that differ only in them share a compiled program), while
integers, booleans and strings stay Python values (usable as shapes and
switches).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro import handlers
from numpyro.infer import init_to_median
from numpyro.infer.util import (
    constrain_fn,
    initialize_model,
    log_density,
    potential_energy,
)

from harness.errors import ConfigError, check_bool, check_int
from harness.models.base import Model, find_mode


def import_target(target, key: str = "model.target") -> Callable:
    """Imports ``package.module:attribute`` and returns the attribute.

    Raises :class:`ConfigError` naming ``key`` when the string is malformed,
    the module cannot be imported, the attribute is missing or not callable.
    """
    allowed = "expected 'package.module:function' naming an importable callable"
    if not isinstance(target, str) or target.count(":") != 1:
        raise ConfigError(f"{key}={target!r} is not allowed: {allowed}")
    module_name, attribute = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(
            f"{key}={target!r} is not allowed: cannot import {module_name!r} "
            f"({error}); {allowed}"
        ) from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ConfigError(
            f"{key}={target!r} is not allowed: {module_name!r} has no callable "
            f"{attribute!r}; {allowed}"
        )
    return function


def split_arguments(arguments: dict | None) -> tuple[dict, dict]:
    """Splits keyword arguments into array data and static Python values.

    Lists, tuples, floats and arrays become float or integer arrays (data);
    ints, bools, strings and ``None`` stay static.
    """
    data, static = {}, {}
    for name, value in (arguments or {}).items():
        if value is None or isinstance(value, (bool, int, str)):
            static[name] = value
        else:
            data[name] = jnp.asarray(np.asarray(value))
    return data, static


def _latent_sites(model_fn, data, key: str):
    """The model's latent sites, checked to be continuous and at least one.

    The model is traced abstractly (``jax.eval_shape``), which runs its Python
    code, shape checks included, without compiling anything.
    """
    sites = {}

    def probe(arrays):
        # log_density sums every site's log-probability, so that mismatched
        # shapes of data and distributions fail here.
        log_joint, trace = log_density(handlers.seed(model_fn, 0), (), arrays, {})
        sites.update(trace)
        return log_joint

    try:
        jax.eval_shape(probe, data)
    except Exception as error:
        raise ConfigError(
            f"{key}: the model could not be run with model.data keys "
            f"{sorted(data)} ({type(error).__name__}: {error}); "
            "expected keyword arguments of the right names and shapes"
        ) from None
    latent = {
        name: site
        for name, site in sites.items()
        if site["type"] == "sample" and not site["is_observed"]
    }
    if not latent:
        raise ConfigError(
            f"{key}: the target is not a NumPyro model with latent variables "
            "(its trace has no unobserved sample site); expected a function "
            "that calls numpyro.sample"
        )
    discrete = [name for name, site in latent.items() if site["fn"].is_discrete]
    if discrete:
        raise ConfigError(
            f"{key}: latent sites {discrete} are discrete; expected continuous "
            "latent sites only (marginalize discrete ones out by hand)"
        )
    return latent


def from_numpyro(
    model_fn: Callable,
    data: dict,
    static: dict | None = None,
    *,
    name: str = "numpyro",
    reference: str = "mode",
    seed: int = 0,
    key: str = "model.target",
) -> Model:
    """Wraps ``model_fn(**data, **static)`` as a :class:`Model` on ``R^d``.

    Args:
      model_fn: a NumPyro model with continuous latent sites.
      data: keyword arguments read as arrays (the model's data pytree).
      static: keyword arguments passed as Python values.
      name: the model's name.
      reference: ``"mode"`` (L-BFGS from the initial point to the mode of
        ``log h``) or ``"init"`` (the initial point itself, for targets whose
        unconstrained density has no mode, such as a centred hierarchy).
      seed: seed of the initial point (``init_to_median`` of the prior).
      key: the config key named by errors.

    Raises:
      ConfigError: when the model cannot run with these arguments, has no
        continuous latent site, or its log-joint is not finite at the start.
    """
    static = dict(static or {})
    data = _to_float64({k: jnp.asarray(v) for k, v in data.items()})

    def bound(**array_kwargs):
        return model_fn(**array_kwargs, **static)

    _latent_sites(bound, data, key)

    @jax.jit
    def initial_point(rng_key, arrays):
        # Under jit, initialize_model skips its own validity check; the
        # finiteness of the log-joint at this point is checked below.
        info = initialize_model(
            rng_key,
            bound,
            init_strategy=init_to_median(num_samples=15),
            model_kwargs=arrays,
        )
        return info.param_info.z

    init_flat, unravel = ravel_pytree(initial_point(jax.random.key(seed), data))
    init_flat = jnp.asarray(init_flat, jnp.float64)

    def log_joint_fn(theta, model_data):
        return -potential_energy(bound, (), model_data, unravel(theta))

    def constrain(theta, model_data):
        return constrain_fn(bound, (), model_data, unravel(theta))

    data64 = data
    start_value = float(jax.jit(log_joint_fn)(init_flat, data64))
    if not np.isfinite(start_value):
        raise ConfigError(
            f"{key}: the log-joint is {start_value} at the starting point; "
            "expected a finite value (check model.data)"
        )
    if reference == "mode":
        reference_mean = find_mode(lambda t: log_joint_fn(t, data64), init_flat)
    elif reference == "init":
        reference_mean = init_flat
    else:
        raise ConfigError(
            f"model.reference={reference!r} is not allowed: expected one of mode, init"
        )
    return Model(
        name=name,
        dim=int(init_flat.shape[0]),
        log_joint_fn=log_joint_fn,
        data=data64,
        reference_mean=reference_mean,
        constrain_fn=constrain,
    )


def _to_float64(tree: Any):
    def cast(leaf):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            return leaf.astype(jnp.float64)
        return leaf

    return jax.tree.map(cast, tree)


def build(cfg, dtype) -> Model:
    """Builds ``model=numpyro`` from ``model.target`` and ``model.data``."""
    model_fn = import_target(cfg.get("target"))
    arguments = cfg.get("data") or {}
    if not isinstance(arguments, dict):
        raise ConfigError(
            f"model.data={arguments!r} is not allowed: expected a mapping of "
            "keyword arguments"
        )
    seed = check_int(cfg.get("seed", 0), "model.seed", 0)
    find = check_bool(cfg.get("find_mode", True), "model.find_mode")
    data, static = split_arguments(arguments)
    model = from_numpyro(
        model_fn,
        data,
        static,
        name=cfg.get("label") or "numpyro",
        reference="mode" if find else "init",
        seed=seed,
    )
    return model.astype(dtype)
