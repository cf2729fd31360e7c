"""Sweeps through the joblib and submitit launchers match the basic launcher."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from harness import records

NUMBERS = ["grad_mean", "grad_mean_se", "mc_variance", "mc_variance_se", "grad_true"]
KEYS = ["model.curvature", "estimator", "block", "component"]


def _sweep(tmp_path, launcher: str | None) -> pd.DataFrame:
    out = tmp_path / (launcher or "basic")
    command = [
        sys.executable,
        "-m",
        "harness",
        "-m",
        "model.curvature=0.5,2",
        "model.dim=3",
        "num_samples=2",
        "num_seeds=40",
        "chunk_size=16",
        f"compilation_cache_dir={tmp_path / 'jax_cache'}",
        f"hydra.sweep.dir={out}",
    ]
    if launcher is not None:
        command.append(f"hydra/launcher={launcher}")
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    found = records.find_records(out)
    assert len(found) == 2
    table = pd.concat([records.read_record(path)[0] for path in found])
    return table.sort_values(KEYS).reset_index(drop=True)


@pytest.fixture(scope="module")
def basic(tmp_path_factory):
    return _sweep(tmp_path_factory.mktemp("basic"), None)


@pytest.mark.parametrize("launcher", ["parallel", "slurm_local"])
def test_launcher_records_match_basic(basic, launcher, tmp_path):
    other = _sweep(tmp_path, launcher)
    assert list(other[KEYS].itertuples(index=False)) == list(
        basic[KEYS].itertuples(index=False)
    )
    for column in NUMBERS:
        np.testing.assert_array_equal(
            other[column].to_numpy(), basic[column].to_numpy()
        )
    assert set(basic["model.curvature"]) == {0.5, 2.0}
