"""Rank statistics and paired tests over dataset-folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

DECIMALS = 10
"""Paired differences are rounded to this many decimals before tests and win counts."""


def block_matrix(values: pd.DataFrame, column: str, complete: bool = True) -> pd.DataFrame:
    """Dataset-folds (rows) x methods (columns) of ``column``; complete rows only by default."""
    from engine.report.load import FOLD_KEYS

    matrix = values.pivot_table(index=FOLD_KEYS, columns="method", values=column, aggfunc="mean")
    matrix = matrix.dropna(how="all")
    return matrix.dropna(how="any") if complete else matrix


def average_ranks(matrix: pd.DataFrame, higher_is_better: bool = True) -> pd.Series:
    """Mean rank of each column over rows; rank 1 is best, ties get the average rank.

    Missing entries are ranked among the methods present in that row only.
    """
    ranks = matrix.round(DECIMALS).rank(axis=1, method="average", ascending=not higher_is_better)
    return ranks.mean(axis=0)


def paired_differences(scores: object, reference: object) -> np.ndarray:
    """``scores - reference`` where both are finite (inputs already aligned).

    Differences are rounded to 10 decimals so floating-point noise neither breaks ties nor
    turns an exact tie into a win.
    """
    a = np.asarray(scores, dtype=float)
    b = np.asarray(reference, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    return np.round(a[keep] - b[keep], DECIMALS)


def win_rate(scores: object, reference: object, higher_is_better: bool = True) -> float:
    """Share of paired dataset-folds where ``scores`` beats ``reference`` (ties count one half).

    ``scores`` and ``reference`` are aligned arrays (one entry per dataset-fold, NaN = missing).
    """
    diff = paired_differences(scores, reference)
    if len(diff) == 0:
        return float("nan")
    if not higher_is_better:
        diff = -diff
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / len(diff))


def wilcoxon_test(scores: object, reference: object) -> tuple[float, float, int]:
    """Two-sided Wilcoxon signed-rank test on paired differences: (statistic, p, n pairs).

    Uses scipy's defaults (zero differences dropped, exact or normal approximation chosen
    automatically). NaN when no non-zero difference is available.
    """
    diff = paired_differences(scores, reference)
    if len(diff) == 0 or not np.any(diff != 0):
        return float("nan"), float("nan"), len(diff)
    result = stats.wilcoxon(diff)
    return float(result.statistic), float(result.pvalue), len(diff)


def holm(p_values: pd.Series) -> pd.Series:
    """Holm step-down adjusted p-values (NaNs ignored and kept)."""
    p = p_values.dropna().sort_values()
    m = len(p)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p.to_numpy()))
    return pd.Series(adjusted, index=p.index).reindex(p_values.index)


def friedman_test(matrix: pd.DataFrame) -> tuple[float, float]:
    """Friedman chi-square test over complete dataset-folds; NaN with < 3 methods or < 2 rows."""
    if matrix.shape[1] < 3 or matrix.shape[0] < 2:
        return float("nan"), float("nan")
    result = stats.friedmanchisquare(*[matrix[c].to_numpy() for c in matrix.columns])
    return float(result.statistic), float(result.pvalue)


def nemenyi_cd(n_methods: int, n_blocks: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of average ranks: q_alpha * sqrt(k (k + 1) / (6 N)).

    ``q_alpha`` is the studentised range quantile (infinite degrees of freedom) over sqrt(2).
    """
    if n_methods < 2 or n_blocks < 1:
        return float("nan")
    q = stats.studentized_range.ppf(1 - alpha, n_methods, np.inf) / np.sqrt(2)
    return float(q * np.sqrt(n_methods * (n_methods + 1) / (6.0 * n_blocks)))


def cd_cliques(ranks: pd.Series, cd: float) -> list[list[str]]:
    """Maximal groups of methods whose average ranks differ by less than ``cd``."""
    ordered = ranks.sort_values()
    names, values = list(ordered.index), ordered.to_numpy()
    cliques: list[list[str]] = []
    for i in range(len(names)):
        j = i
        while j + 1 < len(names) and values[j + 1] - values[i] < cd:
            j += 1
        group = names[i : j + 1]
        if len(group) > 1 and not any(set(group) <= set(c) for c in cliques):
            cliques.append(group)
    return cliques
