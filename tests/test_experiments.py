"""The example scripts under experiments/ run end to end with tiny settings."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def run_script(name, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(ROOT / "experiments" / name), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_level_and_gradient(tmp_path):
    result = run_script(
        "level_and_gradient.py", "--out", str(tmp_path), "--num-seeds", "400"
    )
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(tmp_path / "level_and_gradient.csv")
    assert (tmp_path / "figures" / "level_and_gradient.png").exists()
    # The closed form grows with |level| at a fixed gradient.
    by_level = table[table["mean_offset"] == 0.0].sort_values("level", ascending=False)
    assert by_level["predicted_ratio"].is_monotonic_increasing
