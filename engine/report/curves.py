"""Scaling curves: improvement against synthetic scale, one curve per method and mix ratio."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from engine.report.load import CONFIG_KEYS, FOLD_KEYS, per_fold_config

IMPROVEMENT = "normalized_improvement_pct"


def _quantile(q: float):
    """Named aggregation returning the linear-interpolation ``q`` quantile."""

    def agg(values: pd.Series) -> float:
        return float(np.quantile(values, q)) if len(values) else float("nan")

    agg.__name__ = f"q{int(q * 100)}"
    return agg


def scaling_table(results: pd.DataFrame, column: str = IMPROVEMENT) -> pd.DataFrame:
    """Per method x synthetic_scale x mix_ratio: n, median, q25, q75 over dataset-folds.

    Only 'ok' trials count towards the statistics; ``n_error`` counts failed trials.
    """
    values = per_fold_config(results, column)
    grouped = values.groupby(CONFIG_KEYS, dropna=False)[column]
    table = grouped.agg(
        n="size", median="median", q25=_quantile(0.25), q75=_quantile(0.75)
    ).reset_index()
    errors = (
        results[results["status"] != "ok"]
        .groupby(CONFIG_KEYS, dropna=False)
        .size()
        .rename("n_error")
        .reset_index()
    )
    table = table.merge(errors, on=CONFIG_KEYS, how="outer")
    table["n"] = table["n"].fillna(0).astype("int64")
    table["n_error"] = table["n_error"].fillna(0).astype("int64")
    return table.sort_values(CONFIG_KEYS, ignore_index=True)


def bootstrap_bands(
    results: pd.DataFrame,
    column: str = IMPROVEMENT,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Percentile bootstrap interval of the median per method x mix ratio x scale.

    Dataset-folds are resampled with replacement, jointly across the scales of one curve
    (so the band belongs to the whole curve); the generator is seeded for reproducibility.
    """
    values = per_fold_config(results, column)
    rng = np.random.default_rng(seed)
    rows = []
    tail = (1 - level) / 2 * 100
    for (method, ratio), group in values.groupby(["method", "mix_ratio"], dropna=False):
        matrix = group.pivot_table(index=FOLD_KEYS, columns="synthetic_scale", values=column)
        data = matrix.to_numpy(dtype=float)
        idx = rng.integers(0, len(data), size=(n_boot, len(data)))
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            medians = np.nanmedian(data[idx], axis=1)  # n_boot x scales
            low = np.nanpercentile(medians, tail, axis=0)
            high = np.nanpercentile(medians, 100 - tail, axis=0)
        for j, scale in enumerate(matrix.columns):
            rows.append(dict(method=method, mix_ratio=ratio, synthetic_scale=float(scale),
                             ci_low=float(low[j]), ci_high=float(high[j])))
    columns = ["method", "synthetic_scale", "mix_ratio", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=columns)


def best_mix_per_dataset(results: pd.DataFrame, column: str = IMPROVEMENT) -> pd.DataFrame:
    """Per method with several mix ratios and per dataset: the best mix ratio.

    For each mix ratio take the median improvement over the dataset's folds (and seeds) at
    its best scale; the best mix ratio maximises that. ``improvement_mix_<r>`` columns keep
    each ratio's value.
    """
    values = per_fold_config(results, column)
    per_point = values.groupby(["method", "dataset", "mix_ratio", "synthetic_scale"])[column]
    per_point = per_point.median().reset_index()
    rows = []
    for (method, dataset), group in per_point.groupby(["method", "dataset"]):
        if group["mix_ratio"].nunique() < 2:
            continue
        best_per_mix = group.loc[group.groupby("mix_ratio")[column].idxmax()]
        top = best_per_mix.loc[best_per_mix[column].idxmax()]
        row = dict(method=method, dataset=dataset, best_mix_ratio=float(top["mix_ratio"]),
                   best_synthetic_scale=float(top["synthetic_scale"]),
                   median_improvement_pct=float(top[column]))
        for _, r in best_per_mix.iterrows():
            row[f"improvement_mix_{r['mix_ratio']:g}"] = float(r[column])
        rows.append(row)
    return pd.DataFrame(rows)
