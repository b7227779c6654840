"""Scaling tables: summary per grid point, per-dataset curves, best mix ratio."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.report.load import CONFIG_KEYS
from engine.report.reference import REFERENCE_METHOD, ordered_methods
from engine.report.scaling_stats_core import (
    BOOT_SEED,
    DECIMALS,
    IMPROVEMENT,
    N_BOOT,
    UNIT_KEYS,
    _method_order,
    _nan_stat,
    boot_means,
    bootstrap_counts,
    grid_values,
    percentile_ci,
    scale_methods,
    unit_matrix,
)

SUMMARY_COLUMNS = CONFIG_KEYS + ["score", "n", "n_trials", "median", "mean", "ci_low", "ci_high",
                                 "share_step0", "n_paired", "diff_vs_finetune", "diff_ci_low",
                                 "diff_ci_high"]


def scaling_summary(results: pd.DataFrame, column: str = IMPROVEMENT, n_boot: int = N_BOOT,
                    seed: int = BOOT_SEED) -> pd.DataFrame:
    """Per method x synthetic_scale x mix_ratio over dataset-folds: ``n`` (dataset-folds),
    ``n_trials``, ``median``, ``mean`` with bootstrap ``ci_low``/``ci_high``, ``share_step0``
    (trials keeping step 0), and ``diff_vs_finetune`` (mean paired difference on shared
    dataset-folds) with ``n_paired`` and its bootstrap ``diff_ci_low``/``diff_ci_high``."""
    values = grid_values(results, column)
    if values.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    wide = unit_matrix(values)
    y = wide.to_numpy(dtype=float)
    counts = bootstrap_counts(len(wide), n_boot, seed)
    low, high = percentile_ci(boot_means(counts, y))
    refs = [i for i, c in enumerate(wide.columns) if c[0] == REFERENCE_METHOD]
    ref = y[:, refs[0]] if refs else np.full(len(y), np.nan)
    diff = y - ref[:, None]
    diff[:, refs] = np.nan
    d_low, d_high = percentile_ci(boot_means(counts, diff))
    table = pd.DataFrame(list(wide.columns), columns=CONFIG_KEYS).assign(
        score=column, n=np.isfinite(y).sum(axis=0), median=_nan_stat(np.nanmedian, y),
        mean=_nan_stat(np.nanmean, y), ci_low=low, ci_high=high,
        n_paired=np.isfinite(diff).sum(axis=0), diff_vs_finetune=_nan_stat(np.nanmean, diff),
        diff_ci_low=d_low, diff_ci_high=d_high)
    trials = values.groupby(CONFIG_KEYS, as_index=False)[["n_trials", "n_step0",
                                                          "n_step_known"]].sum()
    trials["share_step0"] = trials["n_step0"] / trials["n_step_known"].where(
        trials["n_step_known"] > 0)
    table = table.merge(trials[CONFIG_KEYS + ["n_trials", "share_step0"]], on=CONFIG_KEYS)
    table = table[table["n"] > 0]
    return _method_order(table)[SUMMARY_COLUMNS]


def per_dataset_table(results: pd.DataFrame, column: str = IMPROVEMENT) -> pd.DataFrame:
    """Per method (with a scale grid) x dataset x grid point: ``n_folds``, ``mean`` over the
    dataset's folds (of the seed-averaged values) and ``share_step0`` of its trials."""
    values = grid_values(results, column)
    values = values[values["method"].isin(scale_methods(values))]
    keys = ["method", "dataset", "synthetic_scale", "mix_ratio"]
    table = values.groupby(keys, as_index=False).agg(
        n_folds=("value", "size"), mean=("value", "mean"), n_step0=("n_step0", "sum"),
        n_step_known=("n_step_known", "sum"))
    table["share_step0"] = table["n_step0"] / table["n_step_known"].where(
        table["n_step_known"] > 0)
    table.insert(4, "score", column)
    table = table.drop(columns=["n_step0", "n_step_known"])
    return _method_order(table, ["mix_ratio", "dataset", "synthetic_scale"])


def best_mix_table(results: pd.DataFrame, column: str = IMPROVEMENT, n_boot: int = N_BOOT,
                   seed: int = BOOT_SEED) -> pd.DataFrame:
    """Per method with several mix ratios, per dataset and pooled (``dataset == '(all)'``):
    the mix ratio with the highest mean improvement averaged over all scales.

    A dataset-fold's value for a mix is its mean over that mix's scales; the mix mean is the
    mean over dataset-folds. Bootstrap over the dataset-folds: CI of the best mix's mean and
    ``win_share_mix_<r>``, the share of resamples in which mix ``r`` has the highest mean.
    """
    values = grid_values(results, column)
    rows = []
    for method in ordered_methods(values["method"]):
        part = values[values["method"] == method]
        if part["mix_ratio"].nunique() < 2:
            continue
        per_unit = part.groupby(UNIT_KEYS + ["mix_ratio"], as_index=False)["value"].mean()
        for dataset in [*sorted(per_unit["dataset"].unique()), "(all)"]:
            sub = per_unit if dataset == "(all)" else per_unit[per_unit["dataset"] == dataset]
            rows.append(dict(method=method, dataset=dataset,
                             **best_mix(unit_matrix(sub, ["mix_ratio"]), n_boot, seed)))
    table = pd.DataFrame(rows)
    return table.assign(score=column) if len(table) else table


def best_mix(wide: pd.DataFrame, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> dict:
    """Best column (mix ratio) of a dataset-folds x mix-ratios matrix, with bootstrap support."""
    y = wide.to_numpy(dtype=float)
    mixes = [float(m) for m in wide.columns]
    means = np.round(_nan_stat(np.nanmean, y), DECIMALS)
    best = int(np.argmax(np.where(np.isfinite(means), means, -np.inf)))
    draws = np.round(boot_means(bootstrap_counts(len(y), n_boot, seed), y), DECIMALS)
    valid = np.isfinite(draws).any(axis=1)
    winners = np.argmax(np.where(np.isfinite(draws), draws, -np.inf), axis=1)[valid]
    low, high = percentile_ci(draws[:, best])
    row = dict(n_folds=int(np.isfinite(y).any(axis=1).sum()), best_mix_ratio=mixes[best],
               mean=float(means[best]), ci_low=float(low), ci_high=float(high),
               win_share=float(np.mean(winners == best)) if valid.any() else np.nan)
    for j, mix in enumerate(mixes):
        row[f"mean_mix_{mix:g}"] = float(means[j])
    for j, mix in enumerate(mixes):
        row[f"win_share_mix_{mix:g}"] = float(np.mean(winners == j)) if valid.any() else np.nan
    return row


