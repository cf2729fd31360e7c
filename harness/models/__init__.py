"""Models: log-joint densities on unconstrained ``R^d`` and their registry.

A model is built from its config group (``conf/model/<name>.yaml``) by a
builder ``(cfg, dtype) -> Model`` registered under its name in
:data:`BUILDERS`; :func:`register` adds one.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from harness.errors import ConfigError
from harness.models import (
    bnn,
    custom,
    eight_schools,
    glmm,
    logistic,
    numpyro_adapter,
    quadratic,
)
from harness.models.base import Model, find_mode

BUILDERS: dict[str, Callable] = {
    "quadratic": quadratic.build,
    "logistic": logistic.build,
    "eight_schools": eight_schools.build,
    "glmm": glmm.build,
    "bnn": bnn.build,
    "numpyro": numpyro_adapter.build,
    "custom": custom.build,
}


def register(name: str, builder: Callable) -> Callable:
    """Registers ``builder(cfg, dtype) -> Model`` under ``name``; returns it."""
    BUILDERS[name] = builder
    return builder


def build_model(cfg, dtype) -> Model:
    """Builds the model named by ``cfg["name"]``, validating its settings."""
    name = cfg.get("name")
    if name not in BUILDERS:
        raise ConfigError(
            f"model.name={name!r} is not allowed: expected one of {', '.join(BUILDERS)}"
        )
    return check_model(BUILDERS[name](cfg, dtype), f"model={name}")


def check_model(model: Model, where: str) -> Model:
    """Checks that ``log h`` is a finite scalar at the reference mean, of ``dim``.

    Catches a declared dimension that does not match the log-joint, a vector
    instead of a scalar, and a log-joint that is not finite where runs start,
    before any work.
    """
    mean = jnp.asarray(model.reference_mean)
    if mean.shape != (model.dim,):
        raise ConfigError(
            f"{where}: the reference mean has shape {mean.shape}, but the model "
            f"declares dim={model.dim}; expected shape ({model.dim},)"
        )
    try:
        value = jax.jit(model.log_joint_fn)(mean, model.data)
    except Exception as error:
        raise ConfigError(
            f"{where}: the log-joint cannot be evaluated at the reference mean of "
            f"dim={model.dim} ({type(error).__name__}: {error}); expected a "
            "function of a vector of that length returning a scalar"
        ) from None
    if jnp.shape(value) != ():
        raise ConfigError(
            f"{where}: the log-joint returned shape {jnp.shape(value)} at the "
            "reference mean; expected a scalar"
        )
    if not bool(jnp.isfinite(value)):
        raise ConfigError(
            f"{where}: the log-joint is {float(value)} at the reference mean; "
            "expected a finite value where runs start"
        )
    return model


__all__ = ["BUILDERS", "Model", "build_model", "find_mode", "register"]
