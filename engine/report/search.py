"""Search sweeps in the report: the best point of each study beside the grid and fine-tuning,
the aggregated search history, and the "Search" HTML section."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.report import html
from engine.report.export import Outputs
from engine.report.load import FOLD_KEYS
from engine.report.plots import plt, safe_name
from engine.report.reference import REFERENCE_METHOD, ordered_methods
from engine.report.scores import PRIMARY_METRIC
from engine.report.selection import SELECTION_COLUMN, select_by_validation
from engine.storage.results_schema import HIGHER_IS_BETTER

STUDY_KEYS: list[str] = ["method", *FOLD_KEYS, "sweep", "source", "search"]
"""One Optuna study of one sweep (its name is ``search``; ``source`` is the sweep folder)."""
POINT_COLUMNS = ["synthetic_scale", "mix_ratio", "lr", "finetune_steps"]
TEST_COLUMN = f"test_{PRIMARY_METRIC}"
IMPROVEMENT = "normalized_improvement_pct"


def search_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The rows of search trials (``search`` names their study; '' in a grid)."""
    if "search" not in results.columns:
        return results.iloc[0:0]
    return results[results["search"].fillna("").astype(str) != ""]


def best_points(results: pd.DataFrame) -> pd.DataFrame:
    """Per study: trials run, stopped early and failed, the point with the best validation
    score (its validation and test score, not the best test score), and for the same
    dataset-fold the grid's validation-selected point of the method and plain fine-tuning."""
    rows = search_rows(results)
    if rows.empty:
        return pd.DataFrame()
    counts = rows.groupby(STUDY_KEYS, dropna=False).agg(
        trials=("trial_id", "size"),
        stopped_early=("stopped_early", "sum"),
        failed=("status", lambda s: int((s != "ok").sum())),
    ).reset_index()
    best = select_by_validation(rows, by=["sweep", "source", "search"])
    keep = [*STUDY_KEYS, "search_number", *POINT_COLUMNS, SELECTION_COLUMN, TEST_COLUMN,
            IMPROVEMENT, f"zero_shot_{TEST_COLUMN}"]
    best = best[[c for c in keep if c in best.columns]].rename(
        columns={"search_number": "best_trial"})
    table = counts.merge(best, on=STUDY_KEYS, how="left")
    table["best_trial"] = table["best_trial"].round().astype("Int64")
    table["finetune_steps"] = table["finetune_steps"].round().astype("Int64")
    ids = rows[["source", "search", "search_number", "trial_id", "stopped_early"]].rename(
        columns={"search_number": "best_trial", "trial_id": "best_trial_id",
                 "stopped_early": "best_stopped_early"})
    ids["best_trial"] = ids["best_trial"].astype("Int64")
    table = table.merge(ids, on=["source", "search", "best_trial"], how="left")
    table = table.merge(_reference(results[results["search"] == ""], "grid", by_method=True),
                        on=["method", *FOLD_KEYS], how="left")
    plain = results[results["method"] == REFERENCE_METHOD]
    table = table.merge(_reference(plain, REFERENCE_METHOD, by_method=False),
                        on=FOLD_KEYS, how="left")
    order = {m: i for i, m in enumerate(ordered_methods(table["method"]))}
    return table.sort_values(["method", *FOLD_KEYS, "sweep"], key=lambda s: s.map(order)
                             if s.name == "method" else s, ignore_index=True)


def _reference(rows: pd.DataFrame, prefix: str, by_method: bool) -> pd.DataFrame:
    """The validation-selected row per (method and) dataset-fold, as ``<prefix>_`` columns."""
    keys = ["method", *FOLD_KEYS] if by_method else FOLD_KEYS
    columns = [f"{prefix}_{c}" for c in (SELECTION_COLUMN, TEST_COLUMN, IMPROVEMENT)]
    chosen = select_by_validation(rows) if not rows.empty else pd.DataFrame()
    if chosen.empty:
        return pd.DataFrame(columns=[*keys, *columns])
    out = chosen[[*keys, SELECTION_COLUMN, TEST_COLUMN, IMPROVEMENT]]
    return out.rename(columns=dict(zip([SELECTION_COLUMN, TEST_COLUMN, IMPROVEMENT], columns,
                                       strict=True)))


def search_history(results: pd.DataFrame) -> pd.DataFrame:
    """Per study and trial index (1 = first asked), the best validation score so far and the
    regret to the study's final best (failed trials spend an index and change nothing)."""
    rows = search_rows(results)
    if rows.empty:
        return pd.DataFrame()
    higher = HIGHER_IS_BETTER[PRIMARY_METRIC]
    frames = []
    for _, study in rows.groupby(STUDY_KEYS, dropna=False, sort=True):
        study = study.sort_values("search_number", kind="stable")
        val = study[SELECTION_COLUMN].where(study["status"] == "ok").astype(float)
        so_far = (val.cummax() if higher else val.cummin()).ffill()
        final = so_far.iloc[-1]
        frames.append(pd.DataFrame({
            **{k: study[k].to_numpy() for k in STUDY_KEYS},
            "trial": np.arange(1, len(study) + 1),
            "best_so_far": so_far.to_numpy(),
            "regret": (final - so_far if higher else so_far - final).to_numpy(),
        }))
    return pd.concat(frames, ignore_index=True)


def history_summary(history: pd.DataFrame) -> pd.DataFrame:
    """Per method and trial index: median and quartiles of the regret over studies."""
    if history.empty:
        return pd.DataFrame()
    grouped = history.dropna(subset=["regret"]).groupby(["method", "trial"])
    return grouped.agg(
        n_studies=("regret", "size"),
        median_best_so_far=("best_so_far", "median"),
        median_regret=("regret", "median"),
        q25_regret=("regret", lambda s: s.quantile(0.25)),
        q75_regret=("regret", lambda s: s.quantile(0.75)),
    ).reset_index()


def history_figure(summary: pd.DataFrame, method: str) -> plt.Figure:
    """Median regret (band: interquartile range over studies) against the trial index."""
    rows = summary[summary["method"] == method]
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ax.fill_between(rows["trial"], rows["q25_regret"], rows["q75_regret"], alpha=0.25,
                    color="tab:blue", linewidth=0, label="IQR over studies")
    ax.plot(rows["trial"], rows["median_regret"], marker="o", color="tab:blue",
            label="median")
    ax.set_xlabel("trial (order asked)")
    ax.set_ylabel(f"regret: study best − best so far\n(validation {PRIMARY_METRIC})")
    ax.set_title(f"{method}: search progress over {int(rows['n_studies'].max())} studies")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(frameon=False, fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def search_section(results: pd.DataFrame, outputs: Outputs) -> html.Section | None:
    """Tables, figures and the "Search" HTML section; None when no row comes from a search."""
    from engine.report.search_optuna import optuna_blocks

    if search_rows(results).empty:
        return None
    best = outputs.table("search_best_points", best_points(results))
    history = search_history(results)
    summary = outputs.table("search_history", history_summary(history))
    section = html.Section("Search", [
        html.paragraph(
            f"Per Optuna study (one per dataset-fold-method): the trial with the best validation "
            f"{PRIMARY_METRIC} (ties: smaller scale, smaller mix, earlier trial) and its test "
            f"score; grid_* = the grid point of the same method selected by validation on the "
            f"same dataset-fold (when grid rows are in the report); finetune_* = plain "
            f"fine-tuning selected by validation. Stopped-early trials (ASHA) hold their best "
            f"scores so far and may be chosen."),
        html.table(_shown(best)),
    ])
    for method in ordered_methods(summary["method"]) if not summary.empty else []:
        name = f"search_history_{safe_name(method)}"
        outputs.figure(name, history_figure(summary, method))
        section.blocks.append(html.image(outputs.images[name], (
            f"{method}: median regret of the best validation {PRIMARY_METRIC} so far to the "
            "study's final best, against the trial index; band = IQR over studies.")))
    section.blocks += optuna_blocks(best, outputs)
    return section


def _shown(best: pd.DataFrame) -> pd.DataFrame:
    """The best-points table as shown in the HTML (the CSV has every column)."""
    drop = ["source", "search", "seed", "best_trial_id", f"zero_shot_{TEST_COLUMN}"]
    if best["sweep"].nunique() <= 1:
        drop.append("sweep")
    return best.drop(columns=[c for c in drop if c in best.columns])
