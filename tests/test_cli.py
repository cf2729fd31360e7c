"""The command line: bad settings, a smoke run, sweeps and the reducer."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from harness import app, reduce
from harness.errors import ConfigError
from tests.helpers import base_config

ROOT = Path(__file__).resolve().parent.parent
TINY = ["num_seeds=64", "chunk_size=32", "num_samples=3", "model.dim=2"]


def harness(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


BAD = [
    ({"num_samples": 0}, "num_samples=0"),
    ({"num_seeds": 1}, "num_seeds=1"),
    ({"model.curvature": -1}, "model.curvature=-1"),
    ({"model.condition_number": 0.5}, "model.condition_number=0.5"),
    ({"estimators": ["nope"]}, "'nope'"),
    ({"estimators": ["sf_loo"], "num_samples": 1}, "num_samples=1"),
    ({"precision": "float16"}, "precision='float16'"),
    ({"variational.parameterization": "logit"}, "variational.parameterization"),
    ({"variational.entropy": "none"}, "variational.entropy='none'"),
    ({"variational.scale": -2.0}, "variational.scale=-2.0"),
    ({"chunk_size": 0}, "chunk_size=0"),
    ({"experiment": "nope"}, "experiment='nope'"),
]


@pytest.mark.parametrize(("overrides", "named"), BAD)
def test_bad_settings_are_refused_before_any_work(overrides, named, tmp_path):
    cfg = OmegaConf.create(base_config(**overrides))
    with pytest.raises(ConfigError, match="is not allowed") as error:
        app.run_job(cfg, tmp_path)
    assert named in str(error.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("model", "named"),
    [
        ({"num_data": 1000}, "model.num_data=1000"),
        ({"num_data": 0}, "model.num_data=0"),
        ({"dataset": "iris"}, "model.dataset='iris'"),
        ({"prior_scale": 0.0}, "model.prior_scale=0.0"),
    ],
)
def test_bad_logistic_settings_are_refused(model, named, tmp_path):
    cfg = base_config()
    cfg["model"] = {
        "name": "logistic",
        "dataset": "breast_cancer",
        "num_data": None,
        "prior_scale": 1.0,
        "seed": 0,
        **model,
    }
    with pytest.raises(ConfigError, match="is not allowed") as error:
        app.run_job(OmegaConf.create(cfg), tmp_path)
    assert named in str(error.value)
    assert "569" in str(error.value) or "num_data" not in named


def test_cli_reports_a_bad_setting_in_one_line(tmp_path):
    result = harness("num_samples=0", f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert errors[-1] == (
        "harness: error: num_samples=0 is not allowed: expected an integer ≥ 1"
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "record.parquet").exists()


def test_smoke_run_and_reduce(tmp_path):
    result = harness(*TINY, f"hydra.run.dir={tmp_path}/runs/one", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    record = tmp_path / "runs" / "one" / "record.parquet"
    table = pd.read_parquet(record)
    assert set(table["estimator"]) == {"rp", "stl", "sf", "sf_loo", "sf_cv"}
    assert len(table) == 5 * 2 * 2
    assert {"jax_version", "harness_version", "device", "seed"} <= set(table.columns)

    written = reduce.reduce(tmp_path / "runs", tmp_path / "results")
    names = {p.name for p in written}
    assert {"variance_table.csv", "variance_table.md"} <= names
    csv = pd.read_csv(tmp_path / "results" / "variance_table.csv")
    for column in [
        "estimator",
        "block",
        "component",
        "grad_mean",
        "grad_true",
        "mc_variance",
        "mc_variance_se",
        "theory_variance",
        "ratio_to_rp",
    ]:
        assert column in csv.columns
    rp = csv[csv["estimator"] == "rp"]
    assert (rp["ratio_to_rp"] == 1.0).all()
    assert csv.loc[csv["estimator"] == "sf_loo", "theory_variance"].isna().all()


def test_sweep_keeps_finished_jobs_when_one_fails(tmp_path):
    result = harness(
        "-m",
        *TINY,
        "model.curvature=1,-1",
        f"hydra.sweep.dir={tmp_path}/sweep",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "model.curvature=-1 is not allowed" in result.stderr
    records = sorted((tmp_path / "sweep").rglob("record.parquet"))
    assert len(records) == 1
    assert pd.read_parquet(records[0])["model.curvature"].iloc[0] == 1.0


def test_named_sweep_and_reducer_columns(tmp_path):
    result = harness(
        "+sweep=curvature", *TINY, f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "sweep").rglob("record.parquet"))) == 3
    reduce.reduce(tmp_path / "sweep", tmp_path / "out")
    csv = pd.read_csv(tmp_path / "out" / "variance_table.csv")
    assert sorted(csv["model.curvature"].unique()) == [0.1, 1.0, 10.0]
    summary = (tmp_path / "out" / "variance_table.md").read_text()
    assert "model.curvature" in summary


def test_reducer_refuses_an_empty_directory(tmp_path):
    assert reduce.main([str(tmp_path)]) == 2


def test_reducer_handles_models_without_a_known_gradient(tmp_path):
    cfg = base_config(num_seeds=40)
    cfg["model"] = {
        "name": "logistic",
        "dataset": "breast_cancer",
        "num_data": 50,
        "prior_scale": 1.0,
        "seed": 0,
        "backend": "jax",
    }
    app.run_job(OmegaConf.create(cfg), tmp_path / "runs" / "logistic")
    reduce.reduce(tmp_path / "runs", tmp_path / "out")
    csv = pd.read_csv(tmp_path / "out" / "variance_table.csv")
    assert csv["grad_true"].isna().all()
    assert (csv.loc[csv["estimator"] == "rp", "ratio_to_rp"] == 1.0).all()


def test_reducer_skips_unreadable_records(tmp_path, caplog):
    app.run_job(OmegaConf.create(base_config(num_seeds=20)), tmp_path / "runs" / "good")
    for name, payload in (("corrupt", b"garbage"), ("empty", b"")):
        (tmp_path / "runs" / name).mkdir()
        (tmp_path / "runs" / name / "record.parquet").write_bytes(payload)
    with caplog.at_level("WARNING", logger="harness.reduce"):
        written = reduce.reduce(tmp_path / "runs", tmp_path / "out")
    assert any(p.name == "variance_table.csv" for p in written)
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 2 and any("corrupt" in m for m in skipped)


def test_records_are_readable_by_others_under_the_umask(tmp_path):
    path = app.run_job(OmegaConf.create(base_config(num_seeds=20)), tmp_path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
