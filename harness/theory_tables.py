"""Tables and figures of the theory-check experiment (the ``theory_check`` reducer).

From the records of ``experiment=theory_check`` jobs it writes, under ``OUT``:

- ``theory_vs_practice.csv`` and ``.md``: per model, path point, estimator and
  block, the median and the 10% and 90% quantiles over components of
  measured / predicted variance, the fraction of components whose measurement
  lies within 4 standard errors of the prediction, and the fraction of
  components where ``sf`` has a larger variance than ``rp``, measured and
  predicted;
- ``figures/theory_vs_practice.png``: measured against predicted variance,
  log-log, one panel per model, with the ``y = x`` line;
- where the records hold logistic regression at several ``model.num_data``
  (``+sweep=data_size``): ``data_size.csv``, ``data_size.md`` and
  ``figures/data_size.png``, the ``sf``/``rp`` ratio and the theory's accuracy
  against the number of rows ``N``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from harness import records
from harness.tables import markdown_table, pyplot, save_figure, write_csv

# Settings of the model group that do not tell two variants of a model apart.
NOT_VARIANTS = {"model.name", "model.seed", "model.label", "model.target"}
WITHIN_SE = 4.0


def model_labels(frame: pd.DataFrame) -> pd.Series:
    """Per job: the model's name plus the model settings that vary within it."""
    per_job = frame.groupby("job").first()
    model_keys = [c for c in per_job.columns if c.startswith("model.")]
    name_column = "model_label" if "model_label" in per_job.columns else "model.name"
    labels = {}
    for name, jobs in per_job.groupby(name_column):
        varying = [
            c
            for c in model_keys
            if c not in NOT_VARIANTS and jobs[c].astype(str).nunique(dropna=False) > 1
        ]
        for job, row in jobs.iterrows():
            parts = [str(name)] + [
                f"{c.removeprefix('model.')}={_setting(row[c])}" for c in varying
            ]
            labels[job] = " ".join(parts)
    return frame["job"].map(labels)


def _setting(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "all"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _sf_over_rp(frame: pd.DataFrame) -> pd.DataFrame:
    """Per job, path point, block and component: sf/rp, measured and predicted."""
    keys = ["job", "path_point", "block", "component"]
    columns = [*keys, "mc_variance", "theory_variance"]
    sf = frame[frame["estimator"] == "sf"][columns]
    rp = frame[frame["estimator"] == "rp"][columns]
    both = sf.merge(rp, on=keys, suffixes=("_sf", "_rp"))
    both["sf_over_rp_measured"] = _ratio(both["mc_variance_sf"], both["mc_variance_rp"])
    both["sf_over_rp_predicted"] = _ratio(
        both["theory_variance_sf"], both["theory_variance_rp"]
    )
    return both


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """``numerator / denominator`` where the denominator is positive, else NaN."""
    positive = denominator > 0
    return (numerator / denominator.where(positive)).where(positive)


def theory_vs_practice(frame: pd.DataFrame) -> pd.DataFrame:
    """The summary table, one row per model × path point × estimator × block."""
    frame = frame.copy()
    frame["model"] = model_labels(frame)
    frame["ratio"] = _ratio(frame["mc_variance"], frame["theory_variance"])
    frame["within"] = (
        np.abs(frame["mc_variance"] - frame["theory_variance"])
        <= WITHIN_SE * frame["mc_variance_se"]
    )
    known = frame.dropna(subset=["theory_variance"])
    keys = ["model", "path_point", "estimator", "block"]
    summary = (
        known.groupby(keys, sort=True)
        .agg(
            step=("step", "first"),
            dim=("component", "nunique"),
            measured_over_predicted_median=("ratio", "median"),
            measured_over_predicted_q10=("ratio", lambda r: r.quantile(0.1)),
            measured_over_predicted_q90=("ratio", lambda r: r.quantile(0.9)),
            within_4se=("within", "mean"),
        )
        .reset_index()
    )
    pairs = _sf_over_rp(frame)
    pairs["model"] = pairs["job"].map(frame.groupby("job")["model"].first())
    order = (
        pairs.assign(
            measured=pairs["sf_over_rp_measured"] > 1,
            predicted=pairs["sf_over_rp_predicted"] > 1,
        )
        .groupby(["model", "path_point", "block"])
        .agg(
            sf_gt_rp_measured=("measured", "mean"),
            sf_gt_rp_predicted=("predicted", "mean"),
        )
        .reset_index()
    )
    return summary.merge(order, on=["model", "path_point", "block"], how="left")


def theory_markdown(summary: pd.DataFrame) -> str:
    lines = [
        "# Closed-form variances against measurement along optimization paths",
        "",
        "Per model, path point (fraction of the rp + Adam steps), estimator and "
        "block: measured / predicted marginal variance over components (median, "
        "10% and 90% quantiles), the fraction of components whose measurement is "
        f"within {WITHIN_SE:g} standard errors of the prediction, and the fraction "
        "of components where sf has the larger variance than rp, measured and "
        "under the local quadratic. Estimators without a closed form are left "
        "out.",
        "",
        markdown_table(summary),
    ]
    return "\n".join(lines)


def natural_order(label: str):
    """Sort key that orders ``num_data=40`` before ``num_data=160``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", label)]


def theory_figure(frame: pd.DataFrame, path: Path) -> Path | None:
    """Measured against predicted variance, log-log, one panel per model."""
    plt = pyplot()
    frame = frame.copy()
    frame["model"] = model_labels(frame)
    known = frame.dropna(subset=["theory_variance"])
    known = known[(known["theory_variance"] > 0) & (known["mc_variance"] > 0)]
    if known.empty:
        return None
    models = sorted(known["model"].unique(), key=natural_order)
    columns = min(3, len(models))
    rows = -(-len(models) // columns)
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(4.6 * columns, 4.2 * rows),
        squeeze=False,
        constrained_layout=True,
    )
    markers = {"mean": "o", "scale": "^"}
    colours = {"rp": "C0", "stl": "C2", "sf": "C1"}
    for ax, model in zip(axes.flat, models, strict=False):
        part = known[known["model"] == model]
        # sf first and rp last, so that rp is drawn over stl where they agree.
        for name in ("sf", "stl", "rp"):
            group = part[part["estimator"] == name]
            for block, marker in markers.items():
                cells = group[group["block"] == block]
                ax.scatter(
                    cells["theory_variance"],
                    cells["mc_variance"],
                    s=10,
                    alpha=0.45,
                    marker=marker,
                    color=colours.get(name, "C3"),
                    label=f"{name} ({block})",
                )
        values = np.concatenate([part["theory_variance"], part["mc_variance"]])
        # Limits from the 0.5% and 100% quantiles: a few predictions near zero
        # (stl where A + I nearly vanishes) would otherwise squash the panel.
        low, high = np.quantile(values, 0.005) / 2, values.max() * 2
        ax.plot([low, high], [low, high], color="black", lw=1, label="y = x")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(model, fontsize=10)
        ax.set_xlabel("predicted variance (local quadratic)")
        ax.set_ylabel("measured variance")
    for ax in list(axes.flat)[len(models) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    axes.flat[0].legend(handles, labels, fontsize=7, loc="upper left")
    fig.suptitle(
        "Measured against predicted marginal variance: every path point and "
        "component (circles: mean block, triangles: scale block)",
        fontsize=10,
    )
    save_figure(fig, path)
    return path


def data_size_table(frame: pd.DataFrame) -> pd.DataFrame | None:
    """Logistic regression across ``model.num_data``: sf/rp and theory accuracy."""
    if "model.num_data" not in frame.columns:
        return None
    logistic = frame[frame["model.name"] == "logistic"].copy()
    if logistic.groupby("job")["model.num_data"].first().nunique(dropna=False) < 2:
        return None
    logistic["ratio"] = _ratio(logistic["mc_variance"], logistic["theory_variance"])
    sizes = logistic.groupby("job")["model.num_data"].first().map(_setting)
    pairs = _sf_over_rp(logistic)
    pairs["num_data"] = pairs["job"].map(sizes)
    keys = ["num_data", "path_point", "block"]
    table = (
        pairs.groupby(keys)
        .agg(
            sf_over_rp_measured_median=("sf_over_rp_measured", "median"),
            sf_over_rp_predicted_median=("sf_over_rp_predicted", "median"),
        )
        .reset_index()
    )
    logistic["num_data"] = logistic["job"].map(sizes)
    for name in ("rp", "sf"):
        accuracy = (
            logistic[logistic["estimator"] == name]
            .groupby(keys)["ratio"]
            .median()
            .rename(f"{name}_measured_over_predicted_median")
            .reset_index()
        )
        table = table.merge(accuracy, on=keys, how="left")
    table["rows"] = pd.to_numeric(table["num_data"], errors="coerce")
    table = table.sort_values(["block", "path_point", "rows"]).drop(columns="rows")
    return table.reset_index(drop=True)


def data_size_figure(table: pd.DataFrame, path: Path) -> Path:
    """sf/rp and measured/predicted against ``N`` at the first and last path point."""
    plt = pyplot()
    table = table[table["num_data"] != "all"].copy()
    table["rows"] = table["num_data"].astype(int)
    points = sorted(table["path_point"].unique())
    shown = [points[0], points[-1]] if len(points) > 1 else points
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.4), constrained_layout=True)
    for c, (point, block) in enumerate(
        (p, b) for p in shown for b in ("mean", "scale")
    ):
        part = table[(table["path_point"] == point) & (table["block"] == block)]
        part = part.sort_values("rows")
        where = {0.0: "start", 1.0: "end"}.get(float(point), f"{point:g} of path")
        label = f"{where}, {block}"
        left.plot(
            part["rows"],
            part["sf_over_rp_measured_median"],
            "o-",
            color=f"C{c}",
            label=f"{label}: measured",
        )
        left.plot(
            part["rows"],
            part["sf_over_rp_predicted_median"],
            "x--",
            color=f"C{c}",
            label=f"{label}: predicted",
        )
        for name, style in (("rp", "o-"), ("sf", "s:")):
            right.plot(
                part["rows"],
                part[f"{name}_measured_over_predicted_median"],
                style,
                color=f"C{c}",
                label=f"{name}, {label}",
            )
    sizes = sorted(table["rows"].unique())
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
        ax.set_xlabel("rows N")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    left.set_ylabel("median over components of Var[sf] / Var[rp]")
    right.axhline(1.0, color="black", lw=1)
    right.set_ylabel("median of measured / predicted variance")
    fig.suptitle("Logistic regression on breast_cancer against data size", fontsize=10)
    save_figure(fig, path)
    return path


def data_size_markdown(table: pd.DataFrame) -> str:
    lines = [
        "# Logistic regression against data size N",
        "",
        "Median over components of Var[sf]/Var[rp] (measured and predicted by the "
        "local quadratic) and of measured/predicted variance for rp and sf, per "
        "N, path point and block.",
        "",
        markdown_table(table),
    ]
    return "\n".join(lines)


def reduce_theory_check(frame: pd.DataFrame, out: Path) -> list[Path]:
    """The ``theory_check`` reducer: writes the files listed in the module doc."""
    out = Path(out)
    summary = theory_vs_practice(frame)
    written = [write_csv(out / "theory_vs_practice.csv", summary)]
    md = out / "theory_vs_practice.md"
    records.atomic_write_text(md, theory_markdown(summary))
    written.append(md)
    figure = theory_figure(frame, out / "figures" / "theory_vs_practice.png")
    if figure is not None:
        written.append(figure)
    sizes = data_size_table(frame)
    if sizes is not None:
        written.append(write_csv(out / "data_size.csv", sizes))
        md = out / "data_size.md"
        records.atomic_write_text(md, data_size_markdown(sizes))
        written.append(md)
        written.append(data_size_figure(sizes, out / "figures" / "data_size.png"))
    return written
