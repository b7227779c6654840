"""How well validation tracks test during fine-tuning (from ``evaluations.parquet``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from engine.report.load import CONFIG_KEYS
from engine.report.reference import ordered_methods
from engine.report.scores import PRIMARY_METRIC


def trial_tracking(steps: pd.DataFrame, metric: str = PRIMARY_METRIC) -> dict[str, float]:
    """Spearman(val, test) over one trial's evaluation steps and the selection regret.

    Regret = max test over steps - test at the validation-selected step (the first step with
    the best validation score). Spearman is NaN with fewer than 3 steps or a constant series.
    """
    steps = steps.sort_values("step")
    val = steps[f"val_{metric}"].to_numpy(dtype=float)
    test = steps[f"test_{metric}"].to_numpy(dtype=float)
    keep = np.isfinite(val) & np.isfinite(test)
    val, test = val[keep], test[keep]
    nan = float("nan")
    if len(val) == 0:
        return dict(n_steps=0, spearman=nan, regret=nan)
    rho = nan
    if len(val) >= 3 and np.ptp(val) > 0 and np.ptp(test) > 0:
        rho = float(stats.spearmanr(val, test).statistic)
    selected = int(np.argmax(val))  # first maximum: the earliest best-validation step
    return dict(n_steps=int(len(val)), spearman=rho, regret=float(test.max() - test[selected]))


def tracking_table(evaluations: pd.DataFrame, results: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per trial with ``spearman`` and ``regret``; failed trials are left out."""
    if results is not None:
        failed = set(results.loc[results["status"] != "ok", "trial_id"])
        evaluations = evaluations[~evaluations["trial_id"].isin(failed)]
    keys = ["source", "trial_id", *CONFIG_KEYS, "dataset", "fold", "seed"]
    keys = [k for k in keys if k in evaluations.columns]
    rows = [
        dict(zip(keys, key), **trial_tracking(group))
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
