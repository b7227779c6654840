"""Model-side preprocessing, fitted on training rows only.

Numeric-looking columns: median imputation and standardisation (training mean/std, clipped).
Other columns (strings, categories, booleans): ordinal codes by training frequency (unseen or
missing -> -1), then standardised like numerics. Tables wider than ``max_features`` are reduced
to the features with the highest mutual information with the target on the training rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.core.errors import DataError

CLIP = 10.0


def is_numeric_column(col: pd.Series) -> bool:
    """True when (almost) every non-missing value parses as a number."""
    if pd.api.types.is_bool_dtype(col):
        return False
    if pd.api.types.is_numeric_dtype(col):
        return True
    vals = col.dropna()
    if len(vals) == 0:
        return True
    parsed = pd.to_numeric(vals.astype(str), errors="coerce")
    return bool(parsed.notna().mean() >= 0.98)


@dataclass
class TablePreprocessor:
    """Turns a raw feature DataFrame into a float32 matrix for in-context models."""

    max_features: int | None = None
    columns_: list[str] = field(default_factory=list)
    numeric_: dict[str, bool] = field(default_factory=dict)
    nominal_: dict[str, bool] = field(default_factory=dict)
    medians_: dict[str, float] = field(default_factory=dict)
    codes_: dict[str, dict[str, int]] = field(default_factory=dict)
    means_: np.ndarray | None = None
    stds_: np.ndarray | None = None
    keep_: np.ndarray | None = None

    def fit(self, X: pd.DataFrame, y: np.ndarray | None = None) -> TablePreprocessor:
        if len(X) == 0:
            raise DataError("no training rows to fit the preprocessing on")
        self.columns_ = list(X.columns)
        for c in self.columns_:
            num = is_numeric_column(X[c])
            self.numeric_[c] = num
            # Categories even when their levels read as numbers (OpenML's nominal features).
            self.nominal_[c] = not num or isinstance(X[c].dtype, pd.CategoricalDtype)
            if num:
                vals = pd.to_numeric(X[c], errors="coerce").astype(float)
                med = float(np.nanmedian(vals)) if vals.notna().any() else 0.0
                self.medians_[c] = med
            else:
                counts = X[c].dropna().astype(str).value_counts(sort=True)
                order = sorted(counts.index, key=lambda v: (-counts[v], v))
                self.codes_[c] = {v: i for i, v in enumerate(order)}
        raw = self._encode(X)
        self.means_ = raw.mean(axis=0)
        std = raw.std(axis=0)
        self.stds_ = np.where(std > 1e-12, std, 1.0)
        self.keep_ = np.arange(raw.shape[1])
        if self.max_features is not None and raw.shape[1] > self.max_features:
            if y is None:
                raise DataError("reducing features needs the training labels")
            self.keep_ = self._select(self._scale(raw), np.asarray(y))
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.columns_ if c not in X.columns]
        if missing:
            raise DataError(f"columns {missing[:3]} missing at transform time")
        out = self._scale(self._encode(X[self.columns_]))
        return out[:, self.keep_].astype(np.float32)

    def fit_transform(self, X: pd.DataFrame, y: np.ndarray | None = None) -> np.ndarray:
        return self.fit(X, y).transform(X)

    @property
    def n_features_out(self) -> int:
        return 0 if self.keep_ is None else len(self.keep_)

    @property
    def categorical_(self) -> np.ndarray:
        """Per output column: True where it holds categories (codes of a non-numeric column,
        or the values of a column typed as categorical)."""
        kinds = np.array([self.nominal_[c] for c in self.columns_], dtype=bool)
        return kinds if self.keep_ is None else kinds[self.keep_]

    def _encode(self, X: pd.DataFrame) -> np.ndarray:
        cols = []
        for c in self.columns_:
            if self.numeric_[c]:
                vals = pd.to_numeric(X[c], errors="coerce").astype(float).to_numpy()
                vals = np.where(np.isfinite(vals), vals, self.medians_[c])
            else:
                lookup = self.codes_[c]
                vals = np.array([lookup.get(str(v), -1) if pd.notna(v) else -1 for v in X[c]],
                                dtype=float)
            cols.append(vals)
        return np.column_stack(cols) if cols else np.zeros((len(X), 0))

    def _scale(self, raw: np.ndarray) -> np.ndarray:
        assert self.means_ is not None and self.stds_ is not None
        return np.clip((raw - self.means_) / self.stds_, -CLIP, CLIP)

    def _select(self, Z: np.ndarray, y: np.ndarray) -> np.ndarray:
        from sklearn.feature_selection import mutual_info_classif

        assert self.max_features is not None
        mi = mutual_info_classif(Z, y, random_state=0)
        order = np.lexsort((np.arange(len(mi)), -mi))
        return np.sort(order[: self.max_features])
