"""What the benchmarks share: result rows, timing, the models, the report.

Every figure is a ratio of two timings taken in the same process on the same
machine, so that it carries over between machines better than either timing.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import io
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import pandas as pd

from harness import estimators, records, variance
from harness.config import VariationalSettings
from harness.models import build_model

QUADRATIC = dict(
    name="quadratic",
    dim=100,
    curvature=1.0,
    condition_number=10.0,
    rotate=True,
    seed=0,
    log_density_offset=0.0,
)
LOGISTIC = dict(
    name="logistic", dataset="breast_cancer", num_data=None, prior_scale=1.0, seed=0
)
POINT = VariationalSettings("log_scale", "analytic", 0.5, 0.5)


@dataclasses.dataclass
class Row:
    """One benchmark figure.

    ``met`` is ``"yes"``, ``"no"``, ``"n/a"`` (a figure with no target) or
    ``"not run"``; ``detail`` says what was timed.
    """

    benchmark: str
    case: str
    value: float
    unit: str
    target: str
    met: str
    detail: str = ""


def check(value: float, *, at_most: float | None = None, at_least: float | None = None):
    """``"yes"`` or ``"no"`` for a value against its bound."""
    if at_most is not None:
        return "yes" if value <= at_most else "no"
    return "yes" if value >= at_least else "no"


def best_time(fn: Callable[[], object], repeats: int = 3) -> float:
    """Seconds of the fastest of ``repeats`` calls, after one untimed call.

    The untimed call compiles; every call is waited for to the end.
    """
    jax.block_until_ready(fn())
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - started)
    return best


def quadratic(dim: int, dtype=jnp.float32, **overrides):
    return build_model(dict(QUADRATIC, dim=dim, **overrides), dtype)


def logistic(dtype=jnp.float32):
    return build_model(LOGISTIC, dtype)


def harness_seconds(
    model,
    names,
    *,
    num_samples,
    num_seeds,
    entropy="analytic",
    chunk_size=1000,
    repeats=3,
):
    """Warm seconds of :func:`harness.variance.simulate` for ``names``."""
    point = dataclasses.replace(POINT, entropy=entropy)
    built = [estimators.make_estimator(n, "log_scale", entropy) for n in names]
    params = variance.evaluation_point(model, point)
    return best_time(
        lambda: variance.simulate(
            model,
            built,
            params,
            num_samples=num_samples,
            num_seeds=num_seeds,
            chunk_size=chunk_size,
            seed=0,
        ),
        repeats,
    )


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict:
    """The machine, device and versions the figures were measured on."""
    device = jax.devices()[0]
    return {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_count": os.cpu_count(),
        "device": f"{device.platform}:{getattr(device, 'device_kind', '')}",
        "device_count": jax.device_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": _version("jaxlib"),
        "numpyro": _version("numpyro"),
        "harness": _version("harness"),
        "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
    }


def write_report(rows: list[Row], out_dir: Path, info: dict, quick: bool) -> None:
    """Writes ``bench.csv`` (rows plus the machine) and ``bench.md``, atomically."""
    table = pd.DataFrame([dataclasses.asdict(r) for r in rows])
    for key, value in info.items():
        table[key] = value
    table["quick"] = quick
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    records.atomic_write_text(Path(out_dir) / "bench.csv", buffer.getvalue())

    lines = [
        "# Benchmarks",
        "",
        "Every value is a ratio of two timings (or a count, or memory) measured "
        "in the same run on the same machine"
        + (" (quick variant: fewer seeds and repeats)." if quick else "."),
        "",
        ", ".join(f"{k}: {v}" for k, v in info.items()),
        "",
        "| benchmark | case | value | unit | target | met | what was timed |",
        "|---|---|---:|---|---|---|---|",
    ]
    for r in rows:
        value = "" if r.value != r.value else f"{r.value:.3g}"
        lines.append(
            f"| {r.benchmark} | {r.case} | {value} | {r.unit} | {r.target} | "
            f"{r.met} | {r.detail} |"
        )
    records.atomic_write_text(Path(out_dir) / "bench.md", "\n".join(lines) + "\n")
