"""Tables and figures of the convergence experiment, from its job records.

:func:`reduce_convergence` (the ``convergence`` entry of
:data:`harness.reduce.REDUCERS`) writes, under the output directory:

- ``convergence_table.csv`` and ``convergence_table.md``: per job (model
  settings, ``S``, optimizer, learning rate) and estimator, statistics over
  seeds of the final ELBO gap, the steps to reach the tolerance, the
  fraction of diverged seeds and the cost; the Markdown file also compares the
  estimators each at its best learning rate, and at equal cost;
- ``convergence_traces.parquet``: per recorded step, quantiles over seeds of
  every recorded quantity;
- ``figures/convergence_<model>.png``: the median ELBO gap against the step,
  with an interquartile band, one line per estimator at its best learning rate.

The *gap* of a seed is ``L_ref − L(λ)``, with ``L_ref`` the ELBO at the known
mean-field optimum where the model has one, and otherwise the best ELBO that
any seed of any estimator reached on the same model settings (all on the same
fixed Monte Carlo draws, so ``gap ≥ 0``). A seed is *diverged* once its ELBO
has been non-finite; diverged seeds are counted, and left out of every
quantile, so no statistic is computed over a NaN.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness import records
from harness.reduce import swept_settings
from harness.tables import markdown_table, pyplot, save_figure, write_csv

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
QUANTITIES = ("elbo", "gap", "mean_distance", "log_scale_distance", "kl")
ALWAYS_SHOWN = ("num_samples", "optim.name", "optim.learning_rate")
SUMMARY_COLUMNS = (
    "final_elbo_median",
    "final_gap_median",
    "final_gap_iqr",
    "steps_to_tol_median",
    "reached_fraction",
    "diverged_fraction",
    "skipped_fraction",
    "grad_evals_per_step",
    "estimator_seconds",
    "wall_seconds",
    "seeds",
)


def setting_columns(frame: pd.DataFrame) -> list[str]:
    """Swept settings, plus ``S``, the optimizer and the learning rate."""
    settings = swept_settings(frame)
    for column in ALWAYS_SHOWN:
        if column in frame.columns and column not in settings:
            settings.append(column)
    return settings


def with_gaps(frame: pd.DataFrame, settings: list[str]) -> pd.DataFrame:
    """Adds ``reference`` and ``gap``; diverged rows get a NaN gap and ELBO."""
    frame = frame.copy()
    model_keys = [c for c in settings if c.startswith("model.")]
    finite = np.isfinite(frame["elbo"]) & ~frame["diverged"].astype(bool)
    frame["elbo"] = frame["elbo"].where(finite)
    best = frame.groupby(model_keys, dropna=False)["elbo"].transform("max")
    optimum = frame.get("elbo_optimum", pd.Series(np.nan, index=frame.index))
    known = np.isfinite(optimum.astype(float))
    frame["reference"] = np.where(known, optimum, best)
    frame["reference_source"] = np.where(known, "optimum", "best reached")
    frame["gap"] = frame["reference"] - frame["elbo"]
    return frame


def _quantile(values: np.ndarray, q: float) -> float:
    values = values[np.isfinite(values)]
    return float(np.quantile(values, q)) if values.size else float("nan")


def _summarize(group: pd.DataFrame) -> pd.Series:
    """Statistics over the seeds of one job and estimator."""
    last = group[group["step"] == group["step"].max()]
    final_gap = last["gap"].to_numpy(float)
    tolerance = float(group["tolerance"].iloc[0])

    within = group[group["gap"] <= tolerance]
    first = within.groupby("seed_index")["step"].min()
    seeds = group["seed_index"].unique()
    steps_to_tol = first.reindex(seeds).to_numpy(float)
    steps_to_tol = np.where(np.isnan(steps_to_tol), np.inf, steps_to_tol)
    total_steps = float(group["step"].max())

    return pd.Series(
        {
            "final_elbo_median": _quantile(last["elbo"].to_numpy(float), 0.5),
            "final_gap_median": _quantile(final_gap, 0.5),
            "final_gap_iqr": _quantile(final_gap, 0.75) - _quantile(final_gap, 0.25),
            # Seeds that never got within tolerance count as never (inf).
            "steps_to_tol_median": float(np.median(steps_to_tol)),
            "reached_fraction": float(np.mean(np.isfinite(steps_to_tol))),
            "diverged_fraction": float(last["diverged"].astype(bool).mean()),
            "skipped_fraction": float(last["skipped"].sum())
            / (len(last) * total_steps),
            "grad_evals_per_step": int(group["grad_evals_per_step"].iloc[0]),
            "estimator_seconds": float(group["estimator_seconds"].iloc[0]),
            "wall_seconds": float(group["wall_seconds"].iloc[0]),
            "seeds": len(seeds),
            "tolerance": tolerance,
            "reference_source": group["reference_source"].iloc[0],
        }
    )


def convergence_summary(frame: pd.DataFrame, settings: list[str]) -> pd.DataFrame:
    """One row per job and estimator."""
    keys = ["job", *settings, "estimator"]
    rows = []
    for values, group in frame.groupby(keys, sort=False, dropna=False):
        rows.append({**dict(zip(keys, values, strict=True)), **_summarize(group)})
    return pd.DataFrame(rows)


def convergence_traces(frame: pd.DataFrame, settings: list[str]) -> pd.DataFrame:
    """Per job, estimator, step and quantity: quantiles over non-diverged seeds."""
    keys = ["job", *settings, "estimator", "step"]
    grouped = frame.groupby(keys, sort=False, dropna=False)
    pieces = []
    for quantity in QUANTITIES:
        if quantity not in frame.columns:
            continue
        column = grouped[quantity]
        part = column.quantile(list(QUANTILES)).unstack()
        part.columns = [f"q{round(100 * q):02d}" for q in QUANTILES]
        part["count"] = column.count()
        part.insert(0, "quantity", quantity)
        pieces.append(part)
    traces = pd.concat(pieces).reset_index()
    flags = grouped.agg(
        diverged_fraction=("diverged", "mean"), skipped_mean=("skipped", "mean")
    ).reset_index()
    return traces.merge(flags, on=keys, how="left")


def best_learning_rates(summary: pd.DataFrame, settings: list[str]) -> pd.DataFrame:
    """Per setting and estimator, the learning rate of smallest final gap.

    Ties and runs whose median is undefined (most seeds diverged) are ranked by
    the fraction diverged; an undefined median ranks last.
    """
    others = [c for c in settings if c != "optim.learning_rate"]
    ranked = summary.assign(
        _undefined=summary["final_gap_median"].isna(),
    ).sort_values(["_undefined", "final_gap_median", "diverged_fraction"])
    best = ranked.groupby([*others, "estimator"], sort=False, dropna=False).head(1)
    return best.drop(columns=["_undefined"]).sort_values([*others, "estimator"])


def equal_cost_table(best: pd.DataFrame, settings: list[str]) -> pd.DataFrame:
    """Final gap medians at their best learning rate, one column per estimator.

    Rows are the settings other than ``S`` and the learning rate, and the cost
    in model evaluations per step (``S``; a gradient evaluation of ``log h``
    counted as one).
    """
    others = [c for c in settings if c not in ("optim.learning_rate", "num_samples")]
    cells = best.assign(
        cell=[
            f"{g:.3g} (η={lr:g})" if np.isfinite(g) else f"diverged (η={lr:g})"
            for g, lr in zip(
                best["final_gap_median"], best["optim.learning_rate"], strict=True
            )
        ]
    )
    index = [*others, "grad_evals_per_step"]
    cells[others] = cells[others].astype(object).where(cells[others].notna(), "")
    table = cells.pivot_table(
        index=index, columns="estimator", values="cell", aggfunc="first"
    )
    table = table.reset_index()
    table.columns.name = None
    table[others] = table[others].replace("", np.nan)  # blank settings, as before
    return table


def against_one_sample_pathwise(best: pd.DataFrame, settings: list[str]):
    """Each estimator at its ``S`` against ``rp`` with ``S = 1``, both at their best η.

    ``gap_over_rp_s1`` above one means that the estimator, with ``S`` times the
    model evaluations per step, still ends further from the reference than the
    one-sample pathwise estimator. Empty when no ``rp`` run has ``S = 1``.
    """
    others = [c for c in settings if c not in ("optim.learning_rate", "num_samples")]
    one_sample = best[(best["estimator"] == "rp") & (best["num_samples"] == 1)]
    if one_sample.empty:
        return pd.DataFrame()
    reference = one_sample[[*others, "final_gap_median"]].rename(
        columns={"final_gap_median": "rp_s1_final_gap_median"}
    )
    rows = best[~((best["estimator"] == "rp") & (best["num_samples"] == 1))]
    table = rows.merge(reference, on=others, how="inner")
    table["gap_over_rp_s1"] = (
        table["final_gap_median"] / table["rp_s1_final_gap_median"]
    )
    columns = [
        *others,
        "estimator",
        "num_samples",
        "grad_evals_per_step",
        "final_gap_median",
        "rp_s1_final_gap_median",
        "gap_over_rp_s1",
    ]
    return table[columns]


def _shown(frame: pd.DataFrame, columns) -> pd.DataFrame:
    """``columns`` of ``frame``, without those that are empty throughout."""
    columns = [c for c in dict.fromkeys(columns) if c in frame.columns]
    return frame[columns].dropna(axis=1, how="all")


def convergence_markdown(summary, best, equal_cost, settings, one_sample=None):
    """Per model: best learning rates, equal cost, then every run."""
    tolerance = ", ".join(f"{t:g}" for t in sorted(summary["tolerance"].unique()))
    columns = [*settings, "estimator", *SUMMARY_COLUMNS]
    best_columns = [c for c in columns if c not in ("wall_seconds", "skipped_fraction")]
    lines = [
        "# Convergence of ELBO-gradient estimators",
        "",
        "The gap is the ELBO at the reference minus the ELBO reached, in nats; "
        "the reference is the known mean-field optimum where there is one, "
        "otherwise the best ELBO any seed of any estimator reached on the same "
        "model settings. Medians and interquartile ranges (IQR) are over the "
        "seeds that did not diverge. `steps_to_tol_median` is the median over "
        f"all seeds of the first recorded step with gap ≤ {tolerance}, a seed "
        "that never got there counting as inf; `reached_fraction` is the "
        "fraction that did. `grad_evals_per_step` is S, the model evaluations "
        "of one gradient estimate; `estimator_seconds` includes compilation.",
        "",
    ]
    for model_name in sorted(summary["model.name"].unique()):

        def here(frame, model_name=model_name):
            return frame[frame["model.name"] == model_name]

        lines += [
            f"## {model_name}",
            "",
            f"Reference: {', '.join(here(summary)['reference_source'].unique())}.",
            "",
            "### Each estimator at its best learning rate",
            "",
            "The learning rate of smallest final gap median, per setting and "
            "estimator.",
            "",
            markdown_table(_shown(here(best), best_columns)),
            "### At equal cost",
            "",
            "Final gap median at the best learning rate (η), at equal model "
            "evaluations per step: within a row every estimator draws the same "
            "number of samples per step, so an S-sample score-function "
            "estimator meets a pathwise one of the same cost; down the rows, "
            "samples per step trade against cost.",
            "",
            markdown_table(_shown(here(equal_cost), equal_cost.columns)),
        ]
        if one_sample is not None and not here_or_empty(one_sample, model_name).empty:
            part = here_or_empty(one_sample, model_name)
            lines += [
                "### Against the one-sample pathwise estimator",
                "",
                "Each estimator with its S draws per step against `rp` with one, "
                "both at their best learning rate: `gap_over_rp_s1` above 1 "
                "means S times the model evaluations still end further from "
                "the reference.",
                "",
                markdown_table(_shown(part, part.columns)),
            ]
        lines += [
            "### Every run",
            "",
            markdown_table(_shown(here(summary), columns)),
        ]
    return "\n".join(lines)


def here_or_empty(frame: pd.DataFrame, model_name: str) -> pd.DataFrame:
    if frame.empty:
        return frame
    return frame[frame["model.name"] == model_name]


def _gap_floor(values: np.ndarray) -> float:
    positive = values[np.isfinite(values) & (values > 0)]
    if not positive.size:
        return 1e-12
    return 10.0 ** np.floor(np.log10(positive.min()))


def convergence_figures(traces, best, settings, out: Path) -> list[Path]:
    """``convergence_<model>.png``: median gap against step, IQR band, log y."""
    plt = pyplot()
    candidates = [c for c in settings if c not in ("model.name", "optim.learning_rate")]
    gaps = traces[traces["quantity"] == "gap"]
    extra = [] if "tolerance" in gaps.columns else ["tolerance"]
    chosen = best[["job", "estimator", *extra]]
    gaps = gaps.merge(chosen, on=["job", "estimator"], how="inner")
    written = []
    for model_name, part in gaps.groupby("model.name", sort=True):
        panel_keys = [
            c for c in candidates if part[c].astype(str).nunique(dropna=False) > 1
        ]
        panels = (
            list(part.groupby(panel_keys, sort=True, dropna=False))
            if panel_keys
            else [((), part)]
        )
        columns = min(3, len(panels))
        rows = int(np.ceil(len(panels) / columns))
        fig, axes = plt.subplots(
            rows,
            columns,
            figsize=(5.2 * columns, 4.0 * rows),
            squeeze=False,
            constrained_layout=True,
        )
        floor = _gap_floor(part[["q25", "q50"]].to_numpy(float).ravel())
        for ax, (values, panel) in zip(axes.ravel(), panels, strict=False):
            for name, line in panel.groupby("estimator", sort=True):
                line = line.sort_values("step")
                rate = line["optim.learning_rate"].iloc[0]
                median = np.maximum(line["q50"].to_numpy(float), floor)
                label = f"{name} (η={rate:g})"
                if not np.isfinite(median).any():
                    label += ": every seed diverged"
                (drawn,) = ax.plot(line["step"], median, lw=1.6, label=label)
                ax.fill_between(
                    line["step"],
                    np.maximum(line["q25"].to_numpy(float), floor),
                    np.maximum(line["q75"].to_numpy(float), floor),
                    color=drawn.get_color(),
                    alpha=0.2,
                    lw=0,
                )
            tolerance = float(panel["tolerance"].iloc[0])
            ax.axhline(tolerance, color="grey", ls="--", lw=1, label="tolerance")
            values = values if isinstance(values, tuple) else (values,)
            title = ", ".join(
                f"{k.removeprefix('model.')}={v}"
                for k, v in zip(panel_keys, values, strict=True)
            )
            if title:
                ax.set_title(title, fontsize=10)
            ax.set_yscale("log")
            ax.set_xlabel("optimization step")
            ax.set_ylabel("ELBO gap to reference (nats)")
            ax.grid(True, which="major", alpha=0.3)
            ax.legend(fontsize=8, title="median, IQR band", title_fontsize=8)
        for ax in axes.ravel()[len(panels) :]:
            ax.set_visible(False)
        fig.suptitle(f"Convergence on the {model_name} model")
        written.append(
            save_figure(fig, out / "figures" / f"convergence_{model_name}.png")
        )
    return written


def reduce_convergence(frame: pd.DataFrame, out: Path) -> list[Path]:
    """Writes the convergence tables and figures; returns their paths."""
    out = Path(out)
    settings = setting_columns(frame)
    frame = with_gaps(frame, settings)
    summary = convergence_summary(frame, settings)
    traces = convergence_traces(frame, settings)
    best = best_learning_rates(summary, settings)
    equal_cost = equal_cost_table(best, settings)
    one_sample = against_one_sample_pathwise(best, settings)

    written = [write_csv(out / "convergence_table.csv", summary)]
    md = out / "convergence_table.md"
    records.atomic_write_text(
        md, convergence_markdown(summary, best, equal_cost, settings, one_sample)
    )
    written.append(md)
    written.append(
        records.write_record(
            out / "convergence_traces.parquet",
            traces,
            {"quantiles": list(QUANTILES), "settings": settings},
        )
    )
    written.extend(convergence_figures(traces, best, settings, out))
    return written
