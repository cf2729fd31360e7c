"""The reducer: ``python -m harness.reduce DIR [--out OUT]``.

Gathers every job record under ``DIR`` and writes, under ``OUT`` (default
``results/``):

- ``variance_table.csv``: long format, one row per job × estimator × block ×
  component, with a column for each setting that varies across the jobs;
- ``variance_table.md``: per job and block, each estimator's median and
  maximum variance ratio to ``rp`` over components, measured and predicted;
- ``figures/variance_measured_vs_theory.png``: measured against closed-form
  variance, log-log, with the ``y = x`` line;
- for convergence records, the tables and figures described in
  :mod:`harness.convergence_report`.
- for ``experiment=theory_check`` records, the files listed in
  :mod:`harness.theory_tables` (``theory_vs_practice.*``, ``data_size.*``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from harness import records
from harness.tables import format_value, markdown_table, pyplot, save_figure, write_csv
from harness.theory_tables import reduce_theory_check

log = logging.getLogger("harness.reduce")

ROW_COLUMNS = [
    "estimator",
    "block",
    "component",
    "grad_mean",
    "grad_mean_se",
    "grad_true",
    "mc_variance",
    "mc_variance_se",
    "theory_variance",
]
# Config keys that never describe what was swept.
NOT_SETTINGS = {"chunk_size", "estimators", "experiment"}
PROVENANCE = {
    "harness_version",
    "jax_version",
    "device",
    "device_count",
    "python_version",
    "hostname",
    "finished_at",
}


def load_records(root: Path) -> pd.DataFrame:
    """Concatenates every record under ``root``, tagging rows with their job.

    A file that cannot be read as a record (truncated, corrupt, or without an
    ``experiment`` column) is skipped with a warning that names it, so that one
    broken job does not hide the others.
    """
    frames = []
    for path in records.find_records(root):
        try:
            table, _ = records.read_record(path)
        except Exception as error:  # pyarrow raises several types for bad files
            log.warning("skipped %s: not a readable record (%s)", path, error)
            continue
        if "experiment" not in table.columns or table.empty:
            log.warning("skipped %s: not a harness record (no experiment)", path)
            continue
        table.insert(0, "job", str(path.parent.relative_to(root)) or ".")
        frames.append(table)
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def config_columns(frame: pd.DataFrame) -> list[str]:
    """Columns that hold config settings (flattened keys)."""
    config_like = [
        c
        for c in frame.columns
        if "." in c or c in ("num_samples", "num_seeds", "seed", "precision")
    ]
    return [c for c in config_like if c not in NOT_SETTINGS and c not in PROVENANCE]


def swept_settings(frame: pd.DataFrame) -> list[str]:
    """Settings whose value differs between jobs, ``model.name`` first."""
    per_job = frame.groupby("job").first()
    swept = [
        c
        for c in config_columns(frame)
        if per_job[c].astype(str).nunique(dropna=False) > 1
    ]
    return ["model.name"] + [c for c in swept if c != "model.name"]


def variance_table(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The long variance table with ratios to ``rp`` on the same job and component."""
    settings = swept_settings(frame)
    # Columns that are empty throughout (no model with a known gradient, say)
    # may have been dropped; they come back as NaN.
    table = frame.reindex(columns=["job", *settings, *ROW_COLUMNS]).copy()
    keys = ["job", "block", "component"]
    rp = table[table["estimator"] == "rp"][
        [*keys, "mc_variance", "theory_variance"]
    ].rename(columns={"mc_variance": "_rp_mc", "theory_variance": "_rp_theory"})
    table = table.merge(rp, on=keys, how="left")
    with np.errstate(divide="ignore", invalid="ignore"):
        table["ratio_to_rp"] = table["mc_variance"] / table["_rp_mc"]
        table["theory_ratio_to_rp"] = table["theory_variance"] / table["_rp_theory"]
    table = table.drop(columns=["_rp_mc", "_rp_theory"])
    return table, settings


def _pair(measured: float, predicted: float) -> str:
    text = format_value(float(measured))
    if not np.isnan(predicted):
        text += f" ({format_value(float(predicted))})"
    return text


def variance_summary(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per model: one row per job and block, two columns per estimator.

    Each cell holds the measured ratio to ``rp`` with the predicted one in
    brackets: the median over components, and the maximum.
    """
    summaries = {}
    for model, part in table.groupby("model.name", sort=True):
        part = part.dropna(axis=1, how="all")
        settings = [c for c in swept_settings(part) if c != "model.name"]
        estimators = [e for e in part["estimator"].unique() if e != "rp"]
        rows = []
        for (_, block), group in part.groupby(["job", "block"], sort=False):
            row = {c: group[c].iloc[0] for c in settings}
            row["block"] = block
            for name in estimators:
                est = group[group["estimator"] == name]
                if est.empty:
                    row[f"{name} median"] = row[f"{name} max"] = ""
                    continue
                row[f"{name} median"] = _pair(
                    est["ratio_to_rp"].median(), est["theory_ratio_to_rp"].median()
                )
                row[f"{name} max"] = _pair(
                    est["ratio_to_rp"].max(), est["theory_ratio_to_rp"].max()
                )
            rows.append(row)
        summary = pd.DataFrame(rows)
        if settings:
            summary = summary.sort_values([*settings, "block"], kind="stable")
        summaries[str(model)] = summary
    return summaries


def fixed_settings(frame: pd.DataFrame) -> dict[str, str]:
    """Per model, the settings shared by all of its jobs, as ``key=value`` text."""
    fixed = {}
    for model, part in frame.groupby("model.name", sort=True):
        per_job = part.groupby("job").first()
        shared = [
            f"`{c}={per_job[c].iloc[0]}`"
            for c in config_columns(part)
            if c != "model.name"
            and c.split(".")[0] not in ("optim", "theory_check", "device_memory")
            and per_job[c].notna().all()
            and per_job[c].astype(str).nunique() == 1
        ]
        fixed[str(model)] = ", ".join(shared)
    return fixed


def variance_markdown(
    summaries: dict[str, pd.DataFrame], fixed: dict[str, str] | None = None
) -> str:
    lines = [
        "# Variance of ELBO-gradient estimators, relative to rp",
        "",
        "Each cell is a ratio of marginal variances, estimator over `rp`, on the same "
        "job, block and component: the median and the maximum over components. The "
        "first number is measured over the seeds; the one in brackets is predicted "
        "by the closed forms under the local quadratic expansion (none for "
        "`sf_loo` and `sf_cv`). Columns before `block` are the settings that "
        "vary between jobs.",
        "",
    ]
    for model, summary in summaries.items():
        lines += [f"## {model}", ""]
        if fixed and fixed.get(model):
            lines += [f"Shared by every job: {fixed[model]}.", ""]
        lines.append(markdown_table(summary))
    return "\n".join(lines)


def variance_figure(table: pd.DataFrame, path: Path) -> Path | None:
    """Measured against predicted variance, log-log.

    One colour per estimator and one marker per model.
    """
    plt = pyplot()
    known = table.dropna(subset=["theory_variance"])
    known = known[(known["theory_variance"] > 0) & (known["mc_variance"] > 0)]
    if known.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), constrained_layout=True)
    for ax, block in zip(axes, ("mean", "scale"), strict=True):
        part = known[known["block"] == block]
        markers = dict(
            zip(sorted(part["model.name"].unique()), "o^sDvP*X", strict=False)
        )
        colors = {}
        for (model, name), group in part.groupby(["model.name", "estimator"]):
            color = colors.setdefault(name, f"C{len(colors)}")
            ax.scatter(
                group["theory_variance"],
                group["mc_variance"],
                s=10,
                alpha=0.6,
                color=color,
                marker=markers[model],
                label=f"{name}, {model}",
            )
        if not part.empty:
            low = min(part["theory_variance"].min(), part["mc_variance"].min())
            high = max(part["theory_variance"].max(), part["mc_variance"].max())
            ax.plot([low, high], [low, high], color="black", lw=1, label="y = x")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("closed-form variance (local quadratic)")
        ax.set_ylabel("measured variance")
        ax.set_title(f"{block} block")
        ax.legend()
    return save_figure(fig, path)


def reduce_variance(frame: pd.DataFrame, out: Path) -> list[Path]:
    table, _ = variance_table(frame)
    written = [write_csv(out / "variance_table.csv", table)]
    md = out / "variance_table.md"
    records.atomic_write_text(
        md, variance_markdown(variance_summary(table), fixed_settings(frame))
    )
    written.append(md)
    figure = variance_figure(table, out / "figures" / "variance_measured_vs_theory.png")
    if figure is not None:
        written.append(figure)
    return written


def reduce_convergence(frame: pd.DataFrame, out: Path) -> list[Path]:
    """The convergence tables and figures (:mod:`harness.convergence_report`)."""
    from harness import convergence_report

    return convergence_report.reduce_convergence(frame, out)


REDUCERS = {
    "variance": reduce_variance,
    "convergence": reduce_convergence,
    "theory_check": reduce_theory_check,
}


def reduce(root: Path, out: Path) -> list[Path]:
    """Writes every table and figure for the records under ``root``."""
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise FileNotFoundError(f"DIR={str(root)!r} is not a directory")
    frame = load_records(root)
    if frame.empty:
        raise FileNotFoundError(
            f"DIR={str(root)!r} holds no {records.RECORD_NAME}; run the harness first"
        )
    written = []
    for experiment, part in frame.groupby("experiment"):
        if experiment in REDUCERS:
            part = part.dropna(axis=1, how="all")
            written.extend(REDUCERS[experiment](part, out))
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.reduce",
        description="Gather job records into tables and figures.",
    )
    parser.add_argument("dir", type=Path, help="directory searched for records")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("results"),
        help="output directory (default: results)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        written = reduce(args.dir, args.out)
    except FileNotFoundError as error:
        print(f"harness.reduce: error: {error}", file=sys.stderr)
        return 2
    for path in written:
        log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
