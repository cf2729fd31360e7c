"""How the score function's excess variance grows with the level and the gradient.

On a rotated quadratic model, moves the log-density level ``a = log h(μ)``
at the optimum, then the gradient ``g`` (through the mean offset ``δ``) with
the level held at zero, and plots the measured and predicted ratio of marginal
variances ``sf / rp`` for the mean block. Uses the harness as a library.

    python experiments/level_and_gradient.py [--out results] [--num-seeds 10000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from harness import estimators, stats, theory, variance, variational
from harness.config import VariationalSettings
from harness.models import build_model
from harness.tables import write_csv


def quadratic(offset: float):
    cfg = {
        "name": "quadratic",
        "dim": 5,
        "curvature": 1.0,
        "condition_number": 10.0,
        "rotate": True,
        "seed": 0,
        "log_density_offset": offset,
    }
    return build_model(cfg, jnp.float64)


def ratio(level: float, mean_offset: float, num_seeds: int) -> dict:
    """Measured and predicted ``sf/rp`` at ``μ = δ·1`` with ``log h(μ) = level``."""
    point = VariationalSettings("log_scale", "analytic", mean_offset, 0.5)
    params = variance.evaluation_point(quadratic(0.0), point)
    model = quadratic(level - float(quadratic(0.0).log_joint(params.mean)))
    built = [estimators.make_estimator(n) for n in ("rp", "sf")]
    moments = variance.simulate(
        model,
        built,
        params,
        num_samples=1,
        num_seeds=num_seeds,
        chunk_size=num_seeds,
        seed=0,
    )
    measured = stats.variance(moments)[:, 0]
    quad = theory.scale_expansion(
        *theory.local_expansion(model.log_joint, params.mean),
        variational.std_dev(params, "log_scale"),
    )
    predicted = [
        theory.marginal_variances(quad, n, "log_scale", "analytic", 1).mean
        for n in ("rp", "sf")
    ]
    return {
        "mean_offset": mean_offset,
        "level": float(quad.level),
        "gradient_norm": float(jnp.linalg.norm(quad.linear / quad.std)),
        "measured_ratio": float(jnp.median(measured[1] / measured[0])),
        "predicted_ratio": float(jnp.median(predicted[1] / predicted[0])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--num-seeds", type=int, default=10_000)
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)

    levels = [0.0, -2.0, -5.0, -10.0, -20.0, -50.0]
    rows = [ratio(a, 0.0, args.num_seeds) for a in levels]
    rows += [ratio(0.0, d, args.num_seeds) for d in (0.25, 0.5, 1.0, 2.0, 4.0)]
    table = pd.DataFrame(rows)
    write_csv(args.out / "level_and_gradient.csv", table)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), constrained_layout=True)
    by_level = table[table["mean_offset"] == 0.0]
    by_gradient = table[table["level"] == 0.0]
    for ax, part, x, label in (
        (axes[0], by_level, np.abs(by_level["level"]), "|log h(μ)|"),
        (axes[1], by_gradient, by_gradient["gradient_norm"], "‖∇ log h(μ)‖"),
    ):
        ax.plot(x, part["predicted_ratio"], "-", color="black", label="closed form")
        ax.plot(x, part["measured_ratio"], "o", label="measured")
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("Var sf / Var rp (mean block, median)")
        ax.legend()
    axes[0].set_title("level grows, gradient zero (μ = θ*)")
    axes[1].set_title("gradient grows, level zero")
    fig.suptitle(
        "Score function against pathwise: rotated quadratic, d = 5, κ = 10, "
        "σ = 0.5, S = 1",
        fontsize=10,
    )
    figure = args.out / "figures" / "level_and_gradient.png"
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=120)
    print(table.to_string(index=False))
    print(f"wrote {args.out / 'level_and_gradient.csv'} and {figure}")


if __name__ == "__main__":
    main()
