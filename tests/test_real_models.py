"""Every real model runs both experiments end to end, at tiny sizes."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from harness import app, records, reduce, theory_check, variance
from harness.config import run_settings
from harness.errors import ConfigError
from harness.models import build_model
from tests.helpers import compose_config

TINY = [
    "num_seeds=40",
    "chunk_size=20",
    "num_samples=3",
    "theory_check.num_steps=10",
    "theory_check.learning_rate=0.01",
]
MODELS = {
    "logistic": ["model=logistic", "model.num_data=40"],
    "eight_schools_centered": [
        "model=eight_schools",
        "model.parameterization=centered",
        "variational.mean_offset=0.0",
    ],
    "eight_schools_noncentered": ["model=eight_schools"],
    "glmm": ["model=glmm"],
    "bnn": ["model=bnn", "model.hidden=3", "model.num_data=50"],
}


@pytest.fixture(scope="module")
def run_root(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


def write_like_the_app(table, container, experiment, directory):
    """A record as :func:`harness.app.run_job` writes it, for the reducer."""
    for key, value in records.flatten(container).items():
        table[key] = value
    table["experiment"] = experiment
    return records.write_record(
        directory / records.RECORD_NAME, table, {"experiment": experiment}
    )


@pytest.mark.parametrize("name", list(MODELS))
def test_model_runs_both_experiments(run_root, name):
    container = OmegaConf.to_container(
        compose_config(["experiment=theory_check", *TINY, *MODELS[name]])
    )
    settings = run_settings(container, variance.VARIANCE_ESTIMATORS)
    path = theory_check.path_settings(container["theory_check"])
    model = build_model(container["model"], settings.dtype)

    for table in (
        variance.run(model, settings),
        theory_check.run(model, settings, path),
    ):
        assert np.all(np.isfinite(table["mc_variance"]))
        assert np.all(table["mc_variance"] > 0)
        known = table.dropna(subset=["theory_variance"])
        assert set(known["estimator"]) == {"rp", "stl", "sf"}
        assert np.all(known["theory_variance"] >= 0)
    assert sorted(table["step"].unique()) == [0, 1, 5, 10]
    write_like_the_app(table, container, "theory_check", run_root / name)


def test_app_and_reducer_write_theory_tables_and_figure(run_root, tmp_path):
    # The example custom model through the command-line path, and two logistic
    # sizes (with the run above) for the data-size table.
    for label, overrides in (
        ("custom", ["model=custom", "model.target=experiments.custom_model:build"]),
        ("logistic80", ["model=logistic", "model.num_data=80"]),
    ):
        overrides = ["experiment=theory_check", *TINY, *overrides]
        path = app.run_job(compose_config(overrides), run_root / label)
        _, metadata = records.read_record(path)
        assert metadata["experiment"] == "theory_check"
    written = reduce.reduce(run_root, tmp_path)
    names = {p.name for p in written}
    assert {
        "theory_vs_practice.csv",
        "theory_vs_practice.md",
        "theory_vs_practice.png",
        "data_size.csv",
        "data_size.png",
    } <= names
    summary = pd.read_csv(tmp_path / "theory_vs_practice.csv")
    for column in (
        "model",
        "path_point",
        "estimator",
        "block",
        "measured_over_predicted_median",
        "sf_gt_rp_measured",
        "sf_gt_rp_predicted",
    ):
        assert column in summary.columns
    assert {"bnn", "glmm", "eight_schools", "banana"} <= set(
        m.split()[0] for m in summary["model"]
    )
    assert summary["sf_gt_rp_measured"].between(0, 1).all()
    sizes = pd.read_csv(tmp_path / "data_size.csv")
    assert set(sizes["num_data"].astype(str)) == {"40", "80"}


def test_bnn_with_two_thousand_parameters_uses_hessian_vector_products(tmp_path):
    overrides = [
        "experiment=theory_check",
        *TINY,
        "num_seeds=8",
        "chunk_size=8",
        "model=bnn",
        "model.hidden=167",
        "model.num_data=60",
        "theory_check.num_steps=2",
        "theory_check.path_points=[0.0,1.0]",
    ]
    path = app.run_job(compose_config(overrides), tmp_path)
    table, _ = records.read_record(path)
    assert table["component"].nunique() == 12 * 167 + 2
    assert set(table["hessian"]) == {"hvp"}
    assert np.all(np.isfinite(table["theory_variance"].dropna()))


def test_numpyro_target_from_the_command_line():
    overrides = [
        "model=numpyro",
        "model.target=harness.models.numpyro_models:eight_schools_noncentered",
        "+model.data.estimates=[1.0,2.0,-1.0]",
        "+model.data.standard_errors=[1.0,1.5,2.0]",
        "model.label=three_schools",
        "model.find_mode=false",
    ]
    container = OmegaConf.to_container(compose_config(overrides))
    model = build_model(container["model"], jnp.float64)
    # mu, log tau and three eta.
    assert (model.name, model.dim) == ("three_schools", 5)
    values = model.constrain_fn(model.reference_mean, model.data)
    assert values["eta"].shape == (3,) and float(values["tau"]) > 0


def test_custom_target_must_return_a_model():
    with pytest.raises(ConfigError, match=r"model\.target"):
        build_model({"name": "custom", "target": "numpy:zeros_like"}, jnp.float64)


def test_bad_model_settings_fail_before_work(tmp_path):
    for overrides in (
        ["model=numpyro", "model.target=does.not.exist:model"],
        ["model=bnn", "model.hidden=0"],
        ["model=glmm", "model.dataset=iris"],
        ["experiment=theory_check", "theory_check.num_steps=0"],
    ):
        with pytest.raises(ConfigError):
            app.run_job(compose_config(overrides), tmp_path)
        assert not (tmp_path / records.RECORD_NAME).exists()


def test_path_points_follow_the_steps():
    path = theory_check.PathSettings(200, 0.1, 5, (0.0, 0.1, 0.5, 1.0), "zero", 10)
    assert theory_check.path_steps(path) == [0, 20, 100, 200]
