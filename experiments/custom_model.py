"""A model of one's own: a banana-shaped 2-d target, registered via config."""

import jax.numpy as jnp

from harness.models import Model, find_mode


def log_joint(theta, data):
    x, y = theta
    return -0.5 * (x**2 / data["width"] ** 2 + (y - data["bend"] * x**2) ** 2)


def build(cfg, dtype):
    data = {"width": jnp.asarray(2.0), "bend": jnp.asarray(cfg.get("bend", 0.5))}
    mode = find_mode(lambda t: log_joint(t, data), jnp.zeros(2))
    return Model("banana", 2, log_joint, data, mode)
