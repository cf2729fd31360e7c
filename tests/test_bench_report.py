"""The benchmark report's files and command line (no benchmark is run here)."""

import pandas as pd
import pytest

from harness.bench import __main__ as bench_main
from harness.bench import common


def test_report_has_the_columns_and_the_machine(tmp_path):
    rows = [
        common.Row("floor", "a", 1.2, "ratio", "≤ 1.5", common.check(1.2, at_most=1.5)),
        common.Row("loop", "b", 12.0, "×", "≥ 50", common.check(12.0, at_least=50)),
        common.Row("convergence", "c", float("nan"), "×", "≥ 20", "not run"),
    ]
    common.write_report(rows, tmp_path, {"device": "cpu:test", "jax": "0"}, True)
    table = pd.read_csv(tmp_path / "bench.csv")
    for column in ("benchmark", "value", "unit", "target", "met", "device", "jax"):
        assert column in table.columns
    assert list(table["met"]) == ["yes", "no", "not run"]
    text = (tmp_path / "bench.md").read_text()
    assert "| loop | b | 12 | × | ≥ 50 | no |" in text
    assert "device: cpu:test" in text


def test_unknown_family_is_refused():
    with pytest.raises(SystemExit):
        bench_main.main(["--only", "floor,warp"])
