"""Models: log-joint densities on unconstrained ``R^d`` and their registry.

A model is built from its config group (``conf/model/<name>.yaml``) by a
builder ``(cfg, dtype) -> Model`` registered under its name in
:data:`BUILDERS`; :func:`register` adds one.
"""

from __future__ import annotations

from collections.abc import Callable

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
    return BUILDERS[name](cfg, dtype)


__all__ = ["BUILDERS", "Model", "build_model", "find_mode", "register"]
