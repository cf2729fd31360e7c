"""Validation of the run config into typed settings, before any work starts.

Every check raises :class:`harness.errors.ConfigError` with the setting, the
value given and what is allowed.
"""

from __future__ import annotations

import dataclasses
import re

import jax.numpy as jnp

from harness import estimators as estimators_lib
from harness import variational
from harness.errors import ConfigError, check_choice, check_float, check_int

PRECISIONS = {"float32": jnp.float32, "float64": jnp.float64}
EXPERIMENTS = ("variance", "convergence", "theory_check")


@dataclasses.dataclass(frozen=True)
class VariationalSettings:
    """The variational family's settings and the evaluation point.

    ``μ = μ_ref + mean_offset · 1``; ``σ = scale · 1``, or ``σ_i = (−H_ii)^{-1/2}``
    at the reference mean when ``scale == "laplace"``.
    """

    parameterization: str
    entropy: str
    mean_offset: float
    scale: float | str


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """Settings shared by the experiments."""

    experiment: str
    estimators: tuple[str, ...]
    num_samples: int
    num_seeds: int
    chunk_size: int
    seed: int
    precision: str
    variational: VariationalSettings
    memory_budget: int | None = None

    @property
    def dtype(self):
        return PRECISIONS[self.precision]


BYTE_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}
_BYTES = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")


def parse_bytes(value, key: str) -> int | None:
    """``"2GiB"``, ``"512MB"`` or a whole number of bytes; ``None`` stays ``None``."""
    if value is None:
        return None
    allowed = (
        "null, a positive number of bytes, or a size such as 2GiB or 512MB "
        f"(units: {', '.join(u for u in BYTE_UNITS if u)})"
    )
    if isinstance(value, bool):
        raise ConfigError(f"{key}={value!r} is not allowed: expected {allowed}")
    if isinstance(value, int):
        number, unit = value, ""
    else:
        match = _BYTES.match(str(value))
        if match is None or match.group(2) not in BYTE_UNITS:
            raise ConfigError(f"{key}={value!r} is not allowed: expected {allowed}")
        number, unit = float(match.group(1)), match.group(2)
    size = int(number * BYTE_UNITS[unit])
    if size < 1:
        raise ConfigError(f"{key}={value!r} is not allowed: expected {allowed}")
    return size


def variational_settings(cfg, key: str = "variational") -> VariationalSettings:
    """Validates a ``variational`` group."""
    parameterization = check_choice(
        cfg.get("parameterization"),
        f"{key}.parameterization",
        variational.PARAMETERIZATIONS,
    )
    entropy = check_choice(
        cfg.get("entropy"), f"{key}.entropy", estimators_lib.ENTROPY_MODES
    )
    mean_offset = check_float(cfg.get("mean_offset"), f"{key}.mean_offset")
    scale = cfg.get("scale")
    if scale != "laplace":
        try:
            scale = check_float(scale, f"{key}.scale", greater_than=0)
        except ConfigError:
            raise ConfigError(
                f"{key}.scale={scale!r} is not allowed: expected a finite number > 0 "
                "or laplace"
            ) from None
    return VariationalSettings(parameterization, entropy, mean_offset, scale)


def _not_allowed(name, allowed, experiment) -> str:
    """The message for an estimator that this experiment does not run."""
    message = f"estimators: {name!r} is not allowed"
    if experiment is not None:
        message += f" in the {experiment} experiment"
    known = name in estimators_lib.ESTIMATORS
    if known and not estimators_lib.make_estimator(name).stateless:
        message += (
            ": it carries a state from one optimization step to the next, so the "
            "variance of a single step is not defined without an optimization "
            "history"
        )
    return message + f"; expected all, or names from {', '.join(allowed)}"


def resolve_estimators(
    value, num_samples: int, allowed, experiment: str | None = None
) -> tuple[str, ...]:
    """``"all"`` becomes every estimator in ``allowed`` that applies at ``S``.

    An estimator listed explicitly must be in ``allowed`` and defined at ``S``;
    ``experiment`` only words the error messages.
    """
    if value in (None, "all"):
        names = [
            name
            for name in allowed
            if num_samples >= estimators_lib.make_estimator(name).min_samples
        ]
        return tuple(names)
    if isinstance(value, str):
        value = [value]
    try:
        names = list(value)
    except TypeError:
        raise ConfigError(
            f"estimators={value!r} is not allowed: expected all or a list drawn "
            f"from {', '.join(allowed)}"
        ) from None
    if not names:
        raise ConfigError(
            f"estimators={names!r} is not allowed: expected all or a non-empty "
            f"list drawn from {', '.join(allowed)}"
        )
    for name in names:
        if name not in allowed:
            raise ConfigError(_not_allowed(name, allowed, experiment))
        needed = estimators_lib.make_estimator(name).min_samples
        if num_samples < needed:
            raise ConfigError(
                f"num_samples={num_samples} is not allowed with estimator {name}: "
                f"it needs num_samples ≥ {needed}"
            )
    if len(set(names)) != len(names):
        raise ConfigError(f"estimators={names!r} is not allowed: names repeat")
    return tuple(names)


def run_settings(cfg, allowed_estimators) -> RunSettings:
    """Validates the top-level settings of a run."""
    experiment = cfg.get("experiment")
    num_samples = check_int(cfg.get("num_samples"), "num_samples", 1)
    num_seeds = check_int(cfg.get("num_seeds"), "num_seeds", 2)
    chunk_size = check_int(cfg.get("chunk_size"), "chunk_size", 1)
    seed = check_int(cfg.get("seed"), "seed", 0)
    precision = check_choice(cfg.get("precision"), "precision", tuple(PRECISIONS))
    names = resolve_estimators(
        cfg.get("estimators"), num_samples, allowed_estimators, experiment
    )
    return RunSettings(
        experiment=experiment,
        estimators=names,
        num_samples=num_samples,
        num_seeds=num_seeds,
        chunk_size=chunk_size,
        seed=seed,
        precision=precision,
        variational=variational_settings(cfg.get("variational") or {}),
        memory_budget=parse_bytes(cfg.get("memory_budget"), "memory_budget"),
    )
