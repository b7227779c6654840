"""Distribution shift as data: which rows of a table are in-domain (ID) and which out-of-domain.

A shifted fold (``engine.folds.fold_data``) draws its ``n_train`` real rows and its ID test rows
from the ID pool only and its OOD test rows from the OOD pool only; generators see the training
rows, as always. Every pool is a function of the table, the shift and (cluster kind) the fold,
so the same spec gives the same rows on any machine:

* ``domain``: rows whose ``column`` value is in ``ood``; ``ood: auto`` holds out the smallest
  domains that together reach ``AUTO_OOD_SHARE`` of the rows; ``bins: k`` cuts a numeric column
  into k quantile bins named "0".."k-1" first;
* ``feature``: rows above (``upper``) or below (``lower``) the ``quantile`` of one numeric
  feature over the table; ``column: auto`` takes the numeric feature with the highest mutual
  information with the target on the fold's unshifted training rows;
* ``cluster``: k-means (k-means++, fixed seed, one thread) on standardised normal scores of the
  numeric features and one-hot categories; fold f
  holds out cluster ``f mod k`` (clusters numbered by size, largest first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.core.errors import DataError
from engine.folds.splits import derive_seed
from engine.spec.shift_spec import ShiftSpec, domain_text

AUTO_OOD_SHARE = 0.20  # ood: auto holds out the smallest domains reaching this share of rows
MIN_OOD_ROWS = 20


class ShiftError(DataError):
    """A shift the table cannot give; ``field`` names the sweep-file field at fault."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class ShiftPools:
    """Row masks over the table, the OOD domain values and the feature the shift used."""

    in_domain: np.ndarray  # bool per row
    ood: np.ndarray  # bool per row
    ood_values: tuple[str, ...]  # domain: the held-out values; feature/cluster: one label
    column: str | None  # the shift column (None for cluster)


def domain_values(X: pd.DataFrame, shift: ShiftSpec, label: str) -> pd.Series:
    """Each row's domain as text (binned first with ``bins``); missing values are 'nan'."""
    if shift.column not in X.columns:
        raise ShiftError("shift.column", f"{label}: shift column {shift.column!r} is not a "
                         f"feature (columns: {_some(X.columns)})")
    col = X[shift.column]
    if shift.bins:
        num = pd.to_numeric(col, errors="coerce")
        if num.notna().sum() < len(col) * 0.5:
            raise ShiftError("shift.bins", f"{label}: bins need a numeric column; "
                             f"{shift.column!r} is not")
        codes = pd.qcut(num, q=shift.bins, labels=False, duplicates="drop")
        return codes.map(lambda c: "nan" if pd.isna(c) else str(int(c)))
    return col.map(_text)


def _text(value: object) -> str:
    """A cell as its domain name (``shift_spec.domain_text``); missing values are 'nan'."""
    return "nan" if pd.isna(value) else domain_text(value)


def _some(values: object, n: int = 8) -> str:
    vals = [str(v) for v in values]
    return ", ".join(vals[:n]) + (", ..." if len(vals) > n else "")


def auto_domains(domains: pd.Series) -> tuple[str, ...]:
    """The smallest domains (ties: by name) that together hold >= ``AUTO_OOD_SHARE`` of rows,
    never all of them."""
    counts = domains.value_counts()
    order = sorted(counts.index, key=lambda d: (counts[d], d))
    chosen, total = [], 0
    for d in order[:-1]:  # the largest domain stays in-domain
        chosen.append(d)
        total += counts[d]
        if total >= AUTO_OOD_SHARE * len(domains):
            break
    return tuple(sorted(chosen))


def domain_pools(X: pd.DataFrame, shift: ShiftSpec, label: str) -> ShiftPools:
    domains = domain_values(X, shift, label)
    present = set(domains)
    if shift.ood is None:
        if len(present) < 2:
            raise ShiftError("shift.column", f"{label}: {shift.column!r} has one value; no "
                             "domain to hold out")
        ood_values = auto_domains(domains)
    else:
        missing = [v for v in shift.ood if v not in present]
        if missing:
            raise ShiftError("shift.ood", f"{label}: value {missing[0]!r} does not occur in "
                             f"{shift.column!r} (values: {_some(sorted(present))})")
        ood_values = shift.ood
    ood = domains.isin(ood_values).to_numpy()
    return ShiftPools(~ood, ood, tuple(ood_values), shift.column)


def numeric_columns(X: pd.DataFrame) -> list[str]:
    """Columns that are numbers in at least 90 % of the rows."""
    out = []
    for c in X.columns:
        num = pd.to_numeric(X[c], errors="coerce")
        if num.notna().mean() >= 0.9 and num.nunique() > 2:
            out.append(c)
    return out


def auto_feature(X: pd.DataFrame, y: np.ndarray, rows: np.ndarray, seed: int, label: str) -> str:
    """The numeric feature with the highest mutual information with ``y`` on ``rows``."""
    from sklearn.feature_selection import mutual_info_classif

    cols = numeric_columns(X)
    if not cols:
        raise ShiftError("shift.column", f"{label}: no numeric feature for column: auto")
    data = X.iloc[rows][cols].apply(pd.to_numeric, errors="coerce")
    data = data.fillna(data.median()).fillna(0.0).to_numpy(dtype=float)
    mi = mutual_info_classif(data, y[rows], random_state=derive_seed("shift-mi", seed) % 2**31)
    return cols[int(np.argmax(mi))]


def feature_pools(X: pd.DataFrame, shift: ShiftSpec, column: str, label: str) -> ShiftPools:
    if column not in X.columns:
        raise ShiftError("shift.column", f"{label}: shift column {column!r} is not a feature "
                         f"(columns: {_some(X.columns)})")
    num = pd.to_numeric(X[column], errors="coerce")
    if num.notna().mean() < 0.9:
        raise ShiftError("shift.column", f"{label}: a feature shift needs a numeric column; "
                         f"{column!r} is not")
    cut = float(num.quantile(shift.quantile))
    ood = (num > cut) if shift.side == "upper" else (num < cut)
    ood = ood.fillna(False).to_numpy(dtype=bool)
    known = num.notna().to_numpy()
    side = ">" if shift.side == "upper" else "<"
    return ShiftPools(known & ~ood, ood, (f"{column} {side} {cut:g}",), column)


def _cluster_features(X: pd.DataFrame) -> np.ndarray:
    """Numeric columns as normal scores of their ranks (heavy tails would otherwise make
    clusters of a few outliers), median-imputed; other columns one-hot (up to 20 levels)."""
    from scipy.stats import norm

    num_cols = set(numeric_columns(X))
    parts = []
    for c in X.columns:
        if c in num_cols:
            col = pd.to_numeric(X[c], errors="coerce")
            ranks = col.rank(method="average", pct=True) - 0.5 / col.notna().sum()
            parts.append(pd.Series(norm.ppf(ranks.clip(1e-6, 1 - 1e-6)), index=col.index)
                         .fillna(0.0).to_frame(c))
        elif X[c].nunique() <= 20:
            parts.append(pd.get_dummies(X[c].map(_text), prefix=c, dtype=float))
    if not parts:
        raise ShiftError("shift.clusters", "no feature to cluster on")
    return pd.concat(parts, axis=1).to_numpy(dtype=float)


def cluster_ids(X: pd.DataFrame, k: int, seed: int) -> np.ndarray:
    """k-means cluster of every row, numbered by size (largest 0; ties by first row)."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    data = _cluster_features(X)
    sd = data.std(axis=0)
    data = (data - data.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    with threadpool_limits(1):  # one thread: the same clusters on any core count
        raw = KMeans(n_clusters=k, n_init=10, random_state=derive_seed("cluster", seed) % 2**31
                     ).fit_predict(data)
    sizes = np.bincount(raw, minlength=k)
    first = np.array([np.flatnonzero(raw == c)[0] if sizes[c] else len(raw) for c in range(k)])
    order = sorted(range(k), key=lambda c: (-sizes[c], first[c]))
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    return rank[raw]


def cluster_pools(X: pd.DataFrame, shift: ShiftSpec, fold: int, seed: int) -> ShiftPools:
    held = fold % shift.clusters
    ood = cluster_ids(X, shift.clusters, seed) == held
    return ShiftPools(~ood, ood, (f"cluster {held}",), None)


def shift_pools(X: pd.DataFrame, y: np.ndarray, shift: ShiftSpec, fold: int, seed: int,
                label: str, train_rows: np.ndarray | None = None) -> ShiftPools:
    """The ID and OOD pools of one fold; ``train_rows`` (the fold's unshifted training rows)
    decide ``column: auto`` of a feature shift. Refuses an OOD pool under ``MIN_OOD_ROWS``."""
    if shift.kind == "domain":
        pools = domain_pools(X, shift, label)
    elif shift.kind == "feature":
        column = shift.column
        if column is None:
            rows = train_rows if train_rows is not None else np.arange(len(y))
            column = auto_feature(X, y, rows, seed, label)
        pools = feature_pools(X, shift, column, label)
    else:
        pools = cluster_pools(X, shift, fold, seed)
    n_ood = int(pools.ood.sum())
    if n_ood < MIN_OOD_ROWS:
        field = {"domain": "shift.ood", "feature": "shift.quantile"}.get(shift.kind,
                                                                         "shift.clusters")
        raise ShiftError(field, f"{label}: the out-of-domain pool has {n_ood} rows; need at "
                         f"least {MIN_OOD_ROWS}")
    return pools
