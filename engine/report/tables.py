"""Summary tables: per method (validation-selected configuration) and per grid point."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.report.load import CONFIG_KEYS, FOLD_KEYS
from engine.report.reference import (
    REFERENCE_GAP,
    REFERENCE_MEDIAN_IMPROVEMENT,
    REFERENCE_METHOD,
    REFERENCE_STD_IMPROVEMENT,
    ordered_methods,
)
from engine.report.scores import PRIMARY_METRIC, SCORE_KINDS, score_column
from engine.report.stats import average_ranks, block_matrix, holm, wilcoxon_test, win_rate
from engine.storage.results_schema import METRICS


def describe(values: pd.Series) -> dict[str, float]:
    """n, median, mean, sample std, quartiles (linear interpolation) and IQR of finite values."""
    v = values.dropna().to_numpy(dtype=float)
    if len(v) == 0:
        nan = float("nan")
        return dict(n=0, median=nan, mean=nan, std=nan, q25=nan, q75=nan, iqr=nan)
    q25, q75 = np.quantile(v, [0.25, 0.75])
    std = float(np.std(v, ddof=1)) if len(v) > 1 else float("nan")
    return dict(n=len(v), median=float(np.median(v)), mean=float(np.mean(v)), std=std,
                q25=float(q25), q75=float(q75), iqr=float(q75 - q25))


def _versus_reference(values: object, reference: object | None, higher: bool) -> dict:
    """Win rate and Wilcoxon test of ``values`` against the reference (aligned by fold)."""
    if reference is None:
        nan = float("nan")
        return dict(win_rate_vs_finetune=nan, n_pairs=0, wilcoxon_stat=nan, p_value=nan)
    stat, p, n = wilcoxon_test(values, reference)
    return dict(win_rate_vs_finetune=win_rate(values, reference, higher), n_pairs=n,
                wilcoxon_stat=stat, p_value=p)


def method_summary(results: pd.DataFrame, selected: pd.DataFrame) -> pd.DataFrame:
    """Per metric x score kind x method statistics of the validation-selected configurations.

    Average ranks use dataset-folds on which every method has a score (complete blocks);
    win rates and Wilcoxon tests pair each method with ``finetune`` on shared dataset-folds;
    Holm's correction runs over the methods within one metric and score kind.
    """
    errors = results[results["status"] != "ok"].groupby("method").size()
    trials = results.groupby("method").size()
    rows = []
    for metric in METRICS:
        for kind, higher in SCORE_KINDS.items():
            column = score_column(kind, metric)
            matrix = block_matrix(selected, column, complete=False)
            complete = matrix.dropna(how="any")
            ranks = average_ranks(complete, higher) if len(complete) else pd.Series(dtype=float)
            reference = matrix.get(REFERENCE_METHOD)
            block = []
            for method in ordered_methods(matrix.columns):
                values = matrix[method].to_numpy(dtype=float)
                row = dict(metric=metric, score=kind, method=method,
                           **describe(pd.Series(values)))
                row.update(avg_rank=float(ranks.get(method, np.nan)), n_rank_blocks=len(complete))
                vs = reference if method != REFERENCE_METHOD else None
                row.update(_versus_reference(values, vs, higher))
                row.update(n_trials=int(trials.get(method, 0)), n_error=int(errors.get(method, 0)))
                block.append(row)
            frame = pd.DataFrame(block)
            if not frame.empty:
                frame["p_holm"] = holm(frame["p_value"])
            rows.append(frame)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def grid_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Per metric x score kind x grid point statistics over dataset-folds (all grid points).

    Wilcoxon tests pair each grid point with ``finetune``; Holm's correction runs over all
    grid points within one metric and score kind.
    """
    ok = results[results["status"] == "ok"]
    errors = results[results["status"] != "ok"].groupby(CONFIG_KEYS).size().to_dict()
    rows = []
    for metric in METRICS:
        for kind, higher in SCORE_KINDS.items():
            column = score_column(kind, metric)
            per_fold = ok.groupby(CONFIG_KEYS + FOLD_KEYS)[column].mean()
            wide = per_fold.unstack(CONFIG_KEYS) if len(per_fold) else pd.DataFrame()
            refs = [c for c in wide.columns if c[0] == REFERENCE_METHOD]
            ref = wide[refs[0]].to_numpy(dtype=float) if refs else None
            block = []
            for config in wide.columns:
                values = wide[config].to_numpy(dtype=float)
                row = dict(metric=metric, score=kind, **dict(zip(CONFIG_KEYS, config)))
                row.update(describe(pd.Series(values)))
                is_ref = config[0] == REFERENCE_METHOD
                row.update(_versus_reference(values, None if is_ref else ref, higher))
                row["n_error"] = int(errors.get(config, 0))
                block.append(row)
            frame = pd.DataFrame(block)
            if not frame.empty:
                frame["p_holm"] = holm(frame["p_value"])
            rows.append(frame)
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    return table


def paper_table(summary: pd.DataFrame, gap: pd.DataFrame | None) -> pd.DataFrame:
    """The study's columns per method: median ROC-AUC improvement ± std, average rank, gap.

    Reference columns hold the published values (their scale, their benchmark) for orientation.
    """
    part = summary[(summary["metric"] == PRIMARY_METRIC) & (summary["score"] == "improvement")]
    table = part[["method", "n", "median", "std", "iqr", "avg_rank", "win_rate_vs_finetune",
                  "p_holm", "n_error"]].copy()
    table = table.rename(columns={"median": "median_improvement_pct", "std": "std_pct",
                                  "iqr": "iqr_pct", "n": "n_dataset_folds"})
    table["improvement"] = [
        f"{m:.2f} ± {s:.2f}" if np.isfinite(s) else f"{m:.2f}"
        for m, s in zip(table["median_improvement_pct"], table["std_pct"])
    ]
    if gap is not None and not gap.empty:
        cols = ["method", "median_spearman", "gap", "median_regret"]
        table = table.merge(gap[cols], on="method", how="left")
    else:
        table["median_spearman"] = table["gap"] = table["median_regret"] = np.nan
    table["reference_median_improvement"] = table["method"].map(REFERENCE_MEDIAN_IMPROVEMENT)
    table["reference_std_improvement"] = table["method"].map(REFERENCE_STD_IMPROVEMENT)
    table["reference_gap"] = table["method"].map(REFERENCE_GAP)
    front = ["method", "improvement", "avg_rank", "gap"]
    return table[front + [c for c in table.columns if c not in front]].reset_index(drop=True)
