"""Shared pieces of the scaling statistics: dataset-fold values, the seeded bootstrap.

The unit of every statistic is a dataset-fold ``(dataset, fold)``: seeds (and repeats from
merged sweeps) of one grid point on one dataset-fold are averaged first. Bootstrap intervals
resample dataset-folds with replacement from one index matrix drawn with
``numpy.random.default_rng(BOOT_SEED)``, shared by every column (paired resampling), and are
percentile intervals.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from engine.report.load import CONFIG_KEYS, ok_trials
from engine.report.reference import ordered_methods

IMPROVEMENT = "normalized_improvement_pct"
UNIT_KEYS: list[str] = ["dataset", "fold"]
"""A dataset-fold, the resampling unit (seeds averaged within it)."""
BOOT_SEED = 20260
"""Seed of every bootstrap index matrix (fixed before any result was seen)."""
N_BOOT = 1000
LEVEL = 0.95
DECIMALS = 10
"""Means are rounded to this many decimals before signs and argmax (ties: the first)."""


def grid_values(results: pd.DataFrame, column: str = IMPROVEMENT) -> pd.DataFrame:
    """Finished grid trials (``search == ''``) reduced to one row per grid point x dataset-fold.

    Columns: ``CONFIG_KEYS + UNIT_KEYS``, ``value`` (mean of ``column`` over seeds/repeats),
    ``n_trials``, ``n_step0`` (trials with ``best_step == 0``), ``n_step_known``.
    """
    rows = results
    if "search" in rows.columns:
        rows = rows[rows["search"].fillna("") == ""]
    ok = ok_trials(rows, column)
    step = pd.to_numeric(ok["best_step"], errors="coerce")
    frame = ok[CONFIG_KEYS + UNIT_KEYS].assign(
        value=ok[column].astype(float), n_trials=1,
        n_step0=(step == 0).astype(int), n_step_known=pd.notna(step).astype(int))
    frame["fold"] = frame["fold"].astype("int64")
    keys = CONFIG_KEYS + UNIT_KEYS
    grouped = frame.groupby(keys, as_index=False, dropna=False)
    return grouped.agg(value=("value", "mean"), n_trials=("n_trials", "sum"),
                       n_step0=("n_step0", "sum"), n_step_known=("n_step_known", "sum"))


def has_scale_grid(values: pd.DataFrame) -> bool:
    """True when some method has more than one synthetic scale (``grid_values`` rows)."""
    return bool((values.groupby("method")["synthetic_scale"].nunique() > 1).any())


def unit_matrix(values: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """Dataset-folds (rows, sorted) x ``columns`` (default the grid point) of ``value``."""
    columns = CONFIG_KEYS if columns is None else columns
    return values.pivot_table(index=UNIT_KEYS, columns=columns, values="value",
                              aggfunc="mean").sort_index()


def bootstrap_indices(n_units: int, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> np.ndarray:
    """``n_boot x n_units`` resampled unit indices: ``default_rng(seed).integers(0, n, ...)``."""
    return np.random.default_rng(seed).integers(0, n_units, size=(n_boot, n_units))


def bootstrap_counts(n_units: int, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> np.ndarray:
    """How often each unit is drawn in each resample of :func:`bootstrap_indices` (float)."""
    idx = bootstrap_indices(n_units, n_boot, seed)
    flat = (np.arange(n_boot)[:, None] * n_units + idx).ravel()
    return np.bincount(flat, minlength=n_boot * n_units).reshape(n_boot, n_units).astype(float)


def boot_means(counts: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Per resample the mean of each column over the drawn units, NaNs skipped (``B x m``);
    the same as ``nanmean(matrix[idx], axis=1)``. NaN where a resample drew no value."""
    finite = np.isfinite(matrix)
    total = counts @ np.where(finite, matrix, 0.0)
    n = counts @ finite.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.where(n > 0, n, 1.0), np.nan)


def percentile_ci(draws: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over axis 0 of the finite draws (NaN where there are none)."""
    tail = (1 - level) / 2 * 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(draws, [tail, 100 - tail], axis=0)
    return low, high


def mean_ci(values: np.ndarray) -> tuple[float, float, float]:
    """Mean of the finite values and its percentile bootstrap 95 % interval (seeded)."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return (np.nan, np.nan, np.nan)
    draws = boot_means(bootstrap_counts(len(finite)), finite[:, None])[:, 0]
    low, high = percentile_ci(draws)
    return float(finite.mean()), float(low), float(high)


def _nan_stat(func: object, matrix: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return func(matrix, axis=0)  # type: ignore[operator]


def _method_order(table: pd.DataFrame, keys: list[str] | None = None) -> pd.DataFrame:
    """Rows in report method order, then by ``keys`` (default scale and mix ratio)."""
    order = {m: i for i, m in enumerate(ordered_methods(table["method"]))}
    keys = ["synthetic_scale", "mix_ratio"] if keys is None else keys
    table = table.assign(_order=table["method"].map(order))
    return table.sort_values(["_order", *keys]).drop(columns="_order").reset_index(drop=True)


def scale_methods(values: pd.DataFrame) -> list[str]:
    """Methods with more than one synthetic scale, in report order."""
    n = values.groupby("method")["synthetic_scale"].nunique()
    return ordered_methods(n.index[n > 1])


