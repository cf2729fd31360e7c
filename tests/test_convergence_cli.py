"""Smoke runs of `python -m harness experiment=convergence` and of the reducer."""

import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from harness import app, records
from harness.convergence_report import convergence_summary, with_gaps
from harness.reduce import main as reduce_main

ROOT = Path(__file__).resolve().parent.parent
TINY = [
    "optim.steps=20",
    "eval_every=10",
    "num_seeds=3",
    "num_samples=3",
    "model.dim=2",
]


def _harness(*overrides, cwd):
    return subprocess.run(
        [sys.executable, "-m", "harness", *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_sweep_and_reducer(tmp_path):
    sweep_dir = tmp_path / "records" / "quadratic"
    result = _harness(
        "+sweep=learning_rate",
        "optim.learning_rate=0.01,0.1",
        "estimators=[rp,sf_cv,sf_ma]",
        *TINY,
        f"hydra.sweep.dir={sweep_dir}",
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = records.find_records(sweep_dir)
    assert len(found) == 2
    table, metadata = records.read_record(found[0])
    assert metadata["experiment"] == "convergence"
    assert set(table["estimator"]) == {"rp", "sf_cv", "sf_ma"}
    assert sorted(table["step"].unique()) == [0, 10, 20]
    assert len(table) == 3 * 3 * 3
    for column in ("elbo", "mean_distance", "log_scale_distance", "kl", "skipped"):
        assert column in table.columns
    assert (table["grad_evals_per_step"] == 3).all()

    # A logistic job in-process, whose ELBO is estimated on fixed draws.
    container = app.compose_config(
        [
            "experiment=convergence",
            "model=logistic",
            "model.num_data=20",
            "estimators=[rp,sf]",
            *[o for o in TINY if not o.startswith("model.dim")],
        ]
    )
    assert container["num_seeds"] == 3 and container["experiment"] == "convergence"
    app.run_job(OmegaConf.create(container), tmp_path / "records" / "logistic")

    out = tmp_path / "results"
    assert reduce_main([str(tmp_path / "records"), "--out", str(out)]) == 0
    summary = pd.read_csv(out / "convergence_table.csv")
    for column in (
        "final_elbo_median",
        "final_gap_median",
        "final_gap_iqr",
        "steps_to_tol_median",
        "reached_fraction",
        "diverged_fraction",
        "grad_evals_per_step",
        "estimator_seconds",
    ):
        assert column in summary.columns
    assert len(summary) == 2 * 3 + 2
    assert set(summary["reference_source"]) == {"optimum", "best reached"}
    logistic = summary[summary["model.name"] == "logistic"]
    assert (logistic["final_gap_median"] >= 0).all()
    markdown = (out / "convergence_table.md").read_text()
    assert "## quadratic" in markdown and "at its best learning rate" in markdown
    assert "At equal cost" in markdown
    traces, _ = records.read_record(out / "convergence_traces.parquet")
    assert {"q25", "q50", "q75", "quantity", "step"} <= set(traces.columns)
    for model in ("quadratic", "logistic"):
        assert (out / "figures" / f"convergence_{model}.png").stat().st_size > 0


def test_cli_refuses_sf_ma_in_the_variance_experiment(tmp_path):
    result = _harness("estimators=[rp,sf_ma]", f"hydra.run.dir={tmp_path}", cwd=ROOT)
    assert result.returncode != 0
    assert "'sf_ma' is not allowed in the variance experiment" in result.stderr
    assert not (tmp_path / records.RECORD_NAME).exists()


def _frame(elbo, diverged, step):
    frame = pd.DataFrame(
        {
            "job": "a",
            "model.name": "quadratic",
            "estimator": "rp",
            "seed_index": np.repeat(np.arange(4), 2),
            "step": np.tile(step, 4),
            "elbo": elbo,
            "diverged": diverged,
            "skipped": 0,
            "grad_evals_per_step": 1,
            "estimator_seconds": 1.0,
            "wall_seconds": 1.0,
            "tolerance": 0.5,
            "elbo_optimum": 0.0,
        }
    )
    return frame


def test_summary_leaves_diverged_seeds_out_and_counts_them():
    elbo = np.array([-3.0, -0.1, -3.0, -0.3, -3.0, -2.0, -3.0, jnp.nan])
    diverged = np.array([False, False, False, False, False, False, False, True])
    frame = with_gaps(_frame(elbo, diverged, [0, 10]), ["model.name"])
    row = convergence_summary(frame, ["model.name"]).iloc[0]
    assert row["diverged_fraction"] == 0.25
    # Final gaps of the three live seeds: 0.1, 0.3, 2.0.
    assert row["final_gap_median"] == pytest.approx(0.3)
    assert row["final_gap_iqr"] == pytest.approx(1.15 - 0.2)
    assert row["reached_fraction"] == 0.5  # two of four got within 0.5
    assert row["steps_to_tol_median"] == np.inf  # half never did
    assert row["final_elbo_median"] == pytest.approx(-0.3)


def test_against_one_sample_pathwise_pairs_each_estimator_with_rp_at_one_draw():
    import pandas as pd

    from harness.convergence_report import against_one_sample_pathwise

    best = pd.DataFrame(
        {
            "model.name": ["quadratic"] * 4,
            "model.dim": [3, 3, 3, 5],
            "estimator": ["rp", "sf", "rp", "sf"],
            "num_samples": [1, 10, 10, 10],
            "optim.learning_rate": [0.1, 0.01, 0.1, 0.01],
            "grad_evals_per_step": [1, 10, 10, 10],
            "final_gap_median": [0.2, 3.0, 0.05, 7.0],
        }
    )
    settings = ["model.name", "model.dim", "num_samples", "optim.learning_rate"]
    table = against_one_sample_pathwise(best, settings)
    # d = 5 has no one-sample rp run, so only the d = 3 rows are compared.
    assert list(table["estimator"]) == ["sf", "rp"]
    assert list(table["gap_over_rp_s1"]) == [3.0 / 0.2, 0.05 / 0.2]
    assert against_one_sample_pathwise(best[best["num_samples"] == 10], settings).empty
