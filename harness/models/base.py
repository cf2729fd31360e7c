"""The model interface: a log-joint density on unconstrained ``R^d``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array

from harness.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Model:
    """A target for variational inference.

    The log-joint is split into a pure function and its data, ``log h(θ) =
    log_joint_fn(θ, data)``, so that compiled programs take the data as an
    argument: two models that differ only in their numbers (a curvature, a
    subsample) share one compiled program.

    Attributes:
      name: the model's name, as in ``conf/model/<name>.yaml``.
      dim: ``d``, the dimension of ``θ``.
      log_joint_fn: ``(θ, data) ↦ log h(θ)`` for one ``θ`` of shape ``(d,)``;
        jit-, vmap- and grad-compatible. Define it once at module level, not
        inside a builder, so that it is the same object for every build.
      data: a pytree of arrays (or ``()``) that the log-joint reads.
      reference_mean: ``μ_ref``, where evaluation points are anchored: the
        known optimum when there is one, otherwise the posterior mode.
      expected_log_joint_fn: optional ``(μ, σ, data) ↦ E_q[log h(θ)]`` in
        closed form, which gives the exact ELBO and its gradient.
      optimum: optional ``(μ*, σ*)`` maximizing the mean-field ELBO.
      log_normalizer: optional ``log Z = log ∫ h(θ) dθ`` in closed form (a
        float), which gives ``KL(q ‖ p) = log Z − L(λ)`` for ``p = h/Z``.
      constrain_fn: optional ``(θ, data) ↦`` the model's variables in their
        own (constrained) space, for models defined through transforms such as
        :mod:`harness.models.numpyro_adapter`.
    """

    name: str
    dim: int
    log_joint_fn: Callable[[Array, Any], Array]
    data: Any
    reference_mean: Array
    expected_log_joint_fn: Callable[[Array, Array, Any], Array] | None = None
    optimum: tuple[Array, Array] | None = None
    log_normalizer: float | None = None
    constrain_fn: Callable[[Array, Any], Any] | None = None

    def log_joint(self, theta: Array) -> Array:
        """``log h(θ)`` with this model's data."""
        return self.log_joint_fn(theta, self.data)

    def astype(self, dtype) -> Model:
        """The same model with its floating-point arrays cast to ``dtype``."""
        return dataclasses.replace(
            self,
            data=cast_floating(self.data, dtype),
            reference_mean=self.reference_mean.astype(dtype),
            optimum=cast_floating(self.optimum, dtype),
        )


def cast_floating(tree, dtype):
    """Casts the floating-point leaves of ``tree`` to ``dtype``."""

    def cast(leaf):
        leaf = jnp.asarray(leaf)
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            return leaf.astype(dtype)
        return leaf

    return jax.tree.map(cast, tree)


def find_mode(
    log_joint: Callable[[Array], Array],
    init: Array,
    *,
    max_steps: int = 500,
    tolerance: float = 1e-6,
) -> Array:
    """Maximizes ``log_joint`` with L-BFGS from ``init`` (for the posterior mode).

    Runs in the dtype of ``init``; pass float64 (with x64 enabled) for a mode
    accurate to the tolerance.
    """
    objective = lambda theta: -log_joint(theta)  # noqa: E731
    solver = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(objective)

    def step(carry):
        theta, state, _ = carry
        value, grad = value_and_grad(theta, state=state)
        updates, state = solver.update(
            grad, state, theta, value=value, grad=grad, value_fn=objective
        )
        return optax.apply_updates(theta, updates), state, jnp.max(jnp.abs(grad))

    def not_done(carry):
        _, state, grad_norm = carry
        count = optax.tree_utils.tree_get(state, "count")
        return (count < max_steps) & (grad_norm > tolerance)

    init_state = solver.init(init)
    carry = (init, init_state, jnp.asarray(jnp.inf, init.dtype))
    theta, _, _ = jax.jit(lambda c: jax.lax.while_loop(not_done, step, c))(carry)
    if not np.isfinite(float(jax.jit(log_joint)(theta))):
        raise ConfigError(
            "the log-joint is not finite at the mode found by L-BFGS; "
            "check the model's data and settings"
        )
    return theta
