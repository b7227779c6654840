"""How well validation tracks test during fine-tuning (from ``evaluations.parquet``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from engine.report.load import CONFIG_KEYS
from engine.report.reference import ordered_methods
from engine.report.scores import PRIMARY_METRIC


def trial_tracking(steps: pd.DataFrame, metric: str = PRIMARY_METRIC) -> dict[str, float]:
    """Spearman(validation, test) over one trial's evaluation steps and the selection regret.

    Validation is ranked the way the engine selects checkpoints: by validation ``metric``, ties
    broken by lower validation log loss (when that column is there). Regret = max test over
    steps - test at the validation-selected step (the first best step in that order).
    Spearman is NaN with fewer than 3 steps or a constant series.
    """
    steps = steps.sort_values("step")
    val = steps[f"val_{metric}"].to_numpy(dtype=float)
    test = steps[f"test_{metric}"].to_numpy(dtype=float)
    tie = (-steps["val_log_loss"].to_numpy(dtype=float) if "val_log_loss" in steps
           and metric != "log_loss" else np.zeros(len(val)))
    tie = np.where(np.isfinite(tie), tie, -np.inf)
    keep = np.isfinite(val) & np.isfinite(test)
    val, test, tie = val[keep], test[keep], tie[keep]
    nan = float("nan")
    if len(val) == 0:
        return dict(n_steps=0, spearman=nan, regret=nan)
    key = _lexicographic_rank(val, tie)
    rho = nan
    if len(val) >= 3 and np.ptp(key) > 0 and np.ptp(test) > 0:
        rho = float(stats.spearmanr(key, test).statistic)
    selected = int(np.argmax(key))  # first maximum: the earliest best-validation step
    return dict(n_steps=int(len(val)), spearman=rho, regret=float(test.max() - test[selected]))


def _lexicographic_rank(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Average ranks of (primary, secondary) pairs in lexicographic order (ties share a rank)."""
    pairs = list(zip(primary.tolist(), secondary.tolist()))
    ordered = sorted(set(pairs))
    dense = {p: i for i, p in enumerate(ordered)}
    return stats.rankdata([dense[p] for p in pairs])


def tracking_table(evaluations: pd.DataFrame, results: pd.DataFrame | None = None,
                   metric: str = PRIMARY_METRIC) -> pd.DataFrame:
    """One row per trial with ``spearman`` and ``regret`` of ``metric``; failed trials are left
    out."""
    if results is not None:
        failed = set(results.loc[results["status"] != "ok", "trial_id"])
        evaluations = evaluations[~evaluations["trial_id"].isin(failed)]
    keys = ["source", "trial_id", *CONFIG_KEYS, "dataset", "fold", "seed"]
    keys = [k for k in keys if k in evaluations.columns]
    rows = [
        dict(zip(keys, key), **trial_tracking(group, metric))
        for key, group in evaluations.groupby(keys, dropna=False, sort=True)
    ]
    return pd.DataFrame(rows)


def gap_table(tracking: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Per method (or ``by``): trials, median Spearman, gap = 1 - median Spearman, regret."""
    by = by or ["method"]
    if tracking.empty:
        return pd.DataFrame(columns=[*by, "n_trials", "median_spearman", "gap", "median_regret"])
    grouped = tracking.groupby(by, dropna=False)
    table = grouped.agg(
        n_trials=("trial_id", "size"),
        n_spearman=("spearman", "count"),
        median_spearman=("spearman", "median"),
        median_regret=("regret", "median"),
        mean_regret=("regret", "mean"),
    ).reset_index()
    table["gap"] = 1.0 - table["median_spearman"]
    order = {m: i for i, m in enumerate(ordered_methods(table["method"]))}
    return table.sort_values(by, key=lambda c: c.map(order) if c.name == "method" else c,
                             ignore_index=True)
