"""Shared builders for the tests."""

from __future__ import annotations

import jax.numpy as jnp
from omegaconf import OmegaConf

from harness import app, variance
from harness.config import VariationalSettings
from harness.models import build_model


def quadratic(
    dim=4,
    curvature=1.3,
    condition_number=5.0,
    rotate=True,
    seed=0,
    offset=2.0,
    dtype=jnp.float64,
):
    return build_model(
        {
            "name": "quadratic",
            "dim": dim,
            "curvature": curvature,
            "condition_number": condition_number,
            "rotate": rotate,
            "seed": seed,
            "log_density_offset": offset,
        },
        dtype,
    )


def point(model, parameterization="log_scale", mean_offset=0.3, scale=0.7):
    settings = VariationalSettings(parameterization, "analytic", mean_offset, scale)
    return variance.evaluation_point(model, settings)


QUADRATIC_MODEL = {
    "name": "quadratic",
    "dim": 3,
    "curvature": 1.0,
    "condition_number": 1.0,
    "rotate": False,
    "seed": 0,
    "log_density_offset": 0.0,
}


def with_overrides(cfg: dict, overrides: dict, separator: str = ".") -> dict:
    """Sets nested keys of ``cfg`` in place: ``{"model.dim": 5}``; returns it."""
    for key, value in overrides.items():
        target = cfg
        *parents, last = key.split(separator)
        for parent in parents:
            target = target[parent]
        target[last] = value
    return cfg


def base_config(**overrides):
    """A complete, valid run config as a plain dict (as Hydra would resolve it)."""
    cfg = {
        "experiment": "variance",
        "estimators": "all",
        "num_samples": 4,
        "num_seeds": 200,
        "chunk_size": 64,
        "seed": 0,
        "precision": "float64",
        "variational": {
            "parameterization": "log_scale",
            "entropy": "analytic",
            "mean_offset": 0.5,
            "scale": 1.0,
        },
        "model": dict(QUADRATIC_MODEL),
    }
    return with_overrides(cfg, overrides)


def compose_config(overrides: list[str]):
    """The run config that ``python -m harness OVERRIDES`` would see."""
    return OmegaConf.create(app.compose_config(overrides))
