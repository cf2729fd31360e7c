"""Small builders shared by the convergence tests."""

from __future__ import annotations

import copy

from harness import optimizers
from tests.helpers import QUADRATIC_MODEL, with_overrides

BASE_CONFIG = {
    "experiment": "convergence",
    "estimators": ["rp"],
    "num_samples": 4,
    "num_seeds": 4,
    "chunk_size": 1000,
    "seed": 0,
    "precision": "float64",
    "variational": {
        "parameterization": "log_scale",
        "entropy": "analytic",
        "mean_offset": 1.0,
        "scale": 0.3,
    },
    "optim": {
        "name": "adam",
        "learning_rate": 0.05,
        "steps": 40,
        "schedule": "constant",
        "final_fraction": 0.1,
        "warmup_steps": 0,
        "options": {},
    },
    "eval_every": 10,
    "tolerance": 0.1,
    "baseline_decay": 0.9,
    "elbo_samples": 4096,
    "model": QUADRATIC_MODEL,
}


def config(**changes) -> dict:
    """A copy of :data:`BASE_CONFIG`; ``optim__name="sgd"`` sets ``optim.name``."""
    return with_overrides(copy.deepcopy(BASE_CONFIG), changes, separator="__")


def settings(**changes) -> optimizers.ConvergenceSettings:
    return optimizers.convergence_settings(config(**changes))
