"""Optimizer and convergence settings: optax optimizers chosen by name.

The optimizer is ``getattr(optax, optim.name)(learning_rate=schedule,
**optim.options)``, where the schedule is built from ``optim.learning_rate``
``η``, ``optim.steps`` ``T`` and ``optim.final_fraction`` ``r``:

``constant``
  ``η``.
``cosine``
  ``η [r + (1 − r) ½ (1 + cos(π t/T))]`` [loshchilov2017].
``exponential``
  ``η r^{t/T}`` (needs ``r > 0``).
``linear``
  from ``η`` at ``t = 0`` to ``r η`` at ``t = T``.
``warmup_cosine``
  linear from 0 to ``η`` over ``optim.warmup_steps`` steps, then a cosine decay
  to ``r η`` at ``t = T``.

The optimizer maximizes the ELBO: it is given the negated gradient estimate.
Every setting is checked here, before a model is built or anything compiled;
the optimizer is probed abstractly (:func:`jax.eval_shape`) so that a name
that is not an optimizer factory, or an optimizer whose update needs more than
``(updates, state, params)``, is refused up front.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from harness.config import RunSettings, run_settings
from harness.errors import ConfigError, check_choice, check_float, check_int
from harness.variational import MeanFieldParams

SCHEDULES = ("constant", "cosine", "exponential", "linear", "warmup_cosine")
CONVERGENCE_ESTIMATORS = ("rp", "stl", "sf", "sf_loo", "sf_cv", "sf_ma")
# The fixed draws of a Monte Carlo ELBO: at least this many.
MIN_ELBO_SAMPLES = 4096
EXAMPLES = "sgd, adam, adamw, rmsprop, adagrad"


@dataclasses.dataclass(frozen=True)
class OptimizerSettings:
    """The ``optim`` group: which optax optimizer, how fast, for how long."""

    name: str
    learning_rate: float
    steps: int
    schedule: str = "constant"
    final_fraction: float = 0.1
    warmup_steps: int = 0
    options: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ConvergenceSettings:
    """Everything a convergence job needs, validated.

    Attributes:
      run: the settings shared with the variance experiment; the start of
        every optimization is ``run.variational``'s evaluation point.
      optim: the optimizer.
      eval_every: steps between two recordings of the ELBO and distances.
      tolerance: the ELBO gap (in nats) counted as converged.
      baseline_decay: ``β`` of the ``sf_ma`` moving average.
      elbo_samples: fixed draws of the Monte Carlo ELBO, for models without a
        closed form.
    """

    run: RunSettings
    optim: OptimizerSettings
    eval_every: int = 10
    tolerance: float = 0.1
    baseline_decay: float = 0.9
    elbo_samples: int = MIN_ELBO_SAMPLES


def learning_rate_schedule(optim: OptimizerSettings):
    """The learning rate (a float or an optax schedule) of ``optim``."""
    rate, steps, final = optim.learning_rate, optim.steps, optim.final_fraction
    if optim.schedule == "constant":
        return rate
    if optim.schedule == "cosine":
        return optax.cosine_decay_schedule(rate, steps, alpha=final)
    if optim.schedule == "exponential":
        return optax.exponential_decay(rate, transition_steps=steps, decay_rate=final)
    if optim.schedule == "linear":
        return optax.linear_schedule(rate, rate * final, steps)
    return optax.warmup_cosine_decay_schedule(
        0.0, rate, optim.warmup_steps, steps, end_value=rate * final
    )


def make_optimizer(optim: OptimizerSettings) -> optax.GradientTransformation:
    """``optax.<name>(learning_rate=schedule, **options)``."""
    factory = getattr(optax, optim.name)
    return factory(learning_rate=learning_rate_schedule(optim), **optim.options)


def _probe(optimizer: optax.GradientTransformation) -> None:
    """Traces one ``init`` and ``update`` on abstract parameters."""
    params = MeanFieldParams(jnp.zeros(2), jnp.zeros(2))

    def one_update(p):
        updates, _ = optimizer.update(p, optimizer.init(p), p)
        return optax.apply_updates(p, updates)

    jax.eval_shape(one_update, params)


def check_optimizer(optim: OptimizerSettings) -> optax.GradientTransformation:
    """Builds the optimizer of ``optim``, or raises naming what is wrong."""
    name = optim.name
    factory = getattr(optax, name, None) if isinstance(name, str) else None
    if (
        factory is None
        or name.startswith("_")
        or isinstance(factory, type)
        or not callable(factory)
    ):
        raise ConfigError(
            f"optim.name={name!r} is not allowed: expected the name of an optax "
            f"optimizer factory, such as {EXAMPLES}"
        )
    try:
        optimizer = make_optimizer(optim)
    except Exception as error:  # the factory's own complaint, reworded
        complaint = f"{type(error).__name__}: {error}"
        if optim.options:
            raise ConfigError(
                f"optim.options={optim.options!r} is not allowed with "
                f"optim.name={name!r}: optax.{name}(learning_rate=..., **options) "
                f"fails ({complaint}); expected keyword arguments of optax.{name}"
            ) from None
        raise ConfigError(
            f"optim.name={name!r} is not allowed: optax.{name}(learning_rate=...) "
            f"fails ({complaint}); expected an optax optimizer factory, such as "
            f"{EXAMPLES}"
        ) from None
    if not isinstance(optimizer, optax.GradientTransformation):
        raise ConfigError(
            f"optim.name={name!r} is not allowed: optax.{name} does not return a "
            f"gradient transformation; expected an optimizer such as {EXAMPLES}"
        )
    try:
        _probe(optimizer)
    except Exception as error:
        raise ConfigError(
            f"optim.name={name!r} is not allowed: its update does not run as "
            f"update(updates, state, params) ({type(error).__name__}: {error}); "
            f"expected a first-order optimizer such as {EXAMPLES}"
        ) from None
    return optimizer


def optimizer_settings(cfg, key: str = "optim") -> OptimizerSettings:
    """Validates an ``optim`` group."""
    if not isinstance(cfg, dict):
        raise ConfigError(
            f"{key}={cfg!r} is not allowed: expected a group with name, "
            "learning_rate and steps"
        )
    name = cfg.get("name")
    learning_rate = check_float(
        cfg.get("learning_rate"), f"{key}.learning_rate", greater_than=0
    )
    steps = check_int(cfg.get("steps"), f"{key}.steps", 1)
    schedule = check_choice(
        cfg.get("schedule", "constant"), f"{key}.schedule", SCHEDULES
    )
    final_fraction = check_float(
        cfg.get("final_fraction", 0.1), f"{key}.final_fraction", at_least=0
    )
    if schedule == "exponential" and final_fraction <= 0:
        raise ConfigError(
            f"{key}.final_fraction={final_fraction!r} is not allowed with "
            f"{key}.schedule=exponential: expected a finite number > 0"
        )
    warmup_steps = check_int(cfg.get("warmup_steps", 0), f"{key}.warmup_steps", 0)
    if schedule == "warmup_cosine" and warmup_steps >= steps:
        raise ConfigError(
            f"{key}.warmup_steps={warmup_steps} is not allowed with "
            f"{key}.steps={steps}: expected an integer from 0 to {steps - 1}"
        )
    options = cfg.get("options") or {}
    if not isinstance(options, dict):
        raise ConfigError(
            f"{key}.options={options!r} is not allowed: expected a mapping of "
            f"keyword arguments for optax.{name}"
        )
    optim = OptimizerSettings(
        name, learning_rate, steps, schedule, final_fraction, warmup_steps, options
    )
    check_optimizer(optim)
    return optim


def check_baseline_decay(value, key: str = "baseline_decay") -> float:
    """Returns ``value`` if it is a number in ``[0, 1)``, or raises."""
    decay = check_float(value, key, at_least=0)
    if decay >= 1:
        raise ConfigError(
            f"{key}={value!r} is not allowed: expected a number in [0, 1)"
        )
    return decay


def convergence_settings(cfg: dict[str, Any]) -> ConvergenceSettings:
    """Validates a convergence job's config, before any work starts."""
    run = run_settings(cfg, CONVERGENCE_ESTIMATORS)
    optim = optimizer_settings(cfg.get("optim"))
    eval_every = check_int(cfg.get("eval_every"), "eval_every", 1)
    if eval_every > optim.steps:
        raise ConfigError(
            f"eval_every={eval_every} is not allowed with optim.steps={optim.steps}: "
            f"expected an integer from 1 to {optim.steps}"
        )
    tolerance = check_float(cfg.get("tolerance"), "tolerance", greater_than=0)
    baseline_decay = check_baseline_decay(cfg.get("baseline_decay"))
    elbo_samples = check_int(cfg.get("elbo_samples"), "elbo_samples", MIN_ELBO_SAMPLES)
    return ConvergenceSettings(
        run, optim, eval_every, tolerance, baseline_decay, elbo_samples
    )
