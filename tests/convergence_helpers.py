"""Small builders shared by the convergence tests."""

from __future__ import annotations

import copy

from harness import optimizers

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
    "model": {
        "name": "quadratic",
        "dim": 3,
        "curvature": 1.0,
        "condition_number": 1.0,
        "rotate": False,
        "seed": 0,
        "log_density_offset": 0.0,
    },
}


def config(**changes) -> dict:
    """A copy of :data:`BASE_CONFIG`; ``optim__name="sgd"`` sets ``optim.name``."""
    cfg = copy.deepcopy(BASE_CONFIG)
    for key, value in changes.items():
        *parents, leaf = key.split("__")
        node = cfg
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    return cfg


def settings(**changes) -> optimizers.ConvergenceSettings:
    return optimizers.convergence_settings(config(**changes))
