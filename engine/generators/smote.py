"""``smote``: SMOTE / SMOTE-NC oversampling (Chawla et al., 2002) from imbalanced-learn.

Optional extra ``smote`` (``pip install 'causalmix-sweep[smote]'``); ``imblearn`` is imported
inside ``fit`` and ``sample``, so the plug-in registers without it and fails with a one-line
``MissingExtraError`` only when used.

* The synthetic rows are the **new** rows SMOTE creates: each is a real row of class ``c``
  moved a uniform fraction of the way towards one of its ``k_neighbors`` nearest class-``c``
  rows (numerics standardised for the distances; categoricals take the most frequent value
  among the neighbours, SMOTE-NC). The sampler is ``SMOTENC`` when the table has categorical
  and numeric features, ``SMOTE`` when all are numeric, ``SMOTEN`` when all are categorical.
* ``class_balance`` defaults to ``balanced`` (equal new rows per class, so the minority gets
  more than its share); ``as_train`` creates rows in the training proportions, interpolating
  within every class; ``{minority_share: x}`` as for every generator.
* Numerics stay within the training rows' range (interpolation; clipped against rounding);
  categoricals are training values. Missing numerics are median-imputed for SMOTE
  and re-injected at the observed per-class rates; a missing categorical is a level of its own.
  A class with a single training row yields copies of it.
* Deterministic for a seed: each class is resampled with a seed derived from the sampling
  seed (``random_state``), and the rows are shuffled with it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from engine.core.errors import CausalMixError, MissingExtraError
from engine.generators.base import Generator, register_generator
from engine.generators.tableaugment import label_codes, one_class_counts, proportional_counts


def _imblearn() -> Any:
    try:
        import imblearn.over_sampling as over
    except ImportError as err:
        raise MissingExtraError("the smote generator", "smote", "imbalanced-learn") from err
    return over


@register_generator("smote")
class SMOTEGenerator(Generator):
    """New rows of SMOTE-NC oversampling (see the module docstring). Parameters:
    ``k_neighbors`` (5; capped at a class's rows minus one), ``seed`` (0; unused by the
    draws, which follow the sampling seed, kept for a uniform interface)."""

    DEFAULTS: dict[str, Any] = {"k_neighbors": 5, "seed": 0}
    DEFAULT_CLASS_BALANCE = "balanced"

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.DEFAULTS)
        if unknown:
            raise CausalMixError(f"smote: unknown parameters {sorted(unknown)}")
        super().__init__(**{**self.DEFAULTS, **params})
        k = self.params["k_neighbors"]
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise CausalMixError(f"smote: k_neighbors must be an integer >= 1, got {k!r}")
        seed = self.params["seed"]
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise CausalMixError(f"smote: seed must be an integer, got {seed!r}")

    # ------------------------------------------------------------------ fit
    def _fit(self, X: pd.DataFrame, y: pd.Series) -> None:
        _imblearn()
        if X.shape[1] == 0:
            raise CausalMixError("smote: needs at least one feature column")
        keep = ~y.isna().to_numpy()
        X, y = X.loc[keep].reset_index(drop=True), y.loc[keep].reset_index(drop=True)
        self.codes_ = label_codes(y, self.classes_)
        self.is_cat_ = np.array([not _is_numeric(X[c]) for c in X.columns], dtype=bool)
        self.levels_: dict[int, list[Any]] = {}
        Z = np.zeros(X.shape, dtype=np.float64)
        miss = np.zeros(X.shape, dtype=bool)
        self.mean_, self.std_ = np.zeros(X.shape[1]), np.ones(X.shape[1])
        self.lo_, self.hi_ = np.zeros(X.shape[1]), np.zeros(X.shape[1])
        for j, c in enumerate(X.columns):
            if self.is_cat_[j]:
                Z[:, j], self.levels_[j] = _level_codes(X[c])
                continue
            v = pd.to_numeric(X[c], errors="coerce").to_numpy(dtype=np.float64)
            miss[:, j] = np.isnan(v)
            obs = v[~miss[:, j]]
            med = float(np.median(obs)) if len(obs) else 0.0
            v = np.where(miss[:, j], med, v)
            self.lo_[j], self.hi_[j] = float(v.min()), float(v.max())
            self.mean_[j] = float(v.mean())
            self.std_[j] = float(v.std()) if v.std() > 1e-12 else 1.0
            Z[:, j] = (v - self.mean_[j]) / self.std_[j]
        self.Z_ = Z
        self.missing_rate_ = [miss[self.codes_ == k].mean(axis=0)
                              for k in range(len(self.classes_))]

    # ------------------------------------------------------------------ sample
    def _sample(self, n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
        return self._new_rows(proportional_counts(n, self.class_counts_), seed)

    def _sample_class(self, n: int, seed: int, label: Any) -> tuple[pd.DataFrame, pd.Series]:
        return self._new_rows(one_class_counts(n, self.classes_, label), seed)

    def _new_rows(self, counts: np.ndarray, seed: int) -> tuple[pd.DataFrame, pd.Series]:
        """``counts[k]`` new SMOTE rows of each class ``k``, decoded and shuffled (seeded)."""
        states = np.random.SeedSequence([int(seed) % 2**63, 23]).generate_state(len(counts) + 1)
        rng = np.random.default_rng(int(states[-1]))
        Zs, Ms, ys = [], [], []
        for k, m in enumerate(counts):
            if m == 0:
                continue
            Zs.append(self._interpolate(k, int(m), int(states[k] % 2**31)))
            Ms.append(rng.random((int(m), self.Z_.shape[1])) < self.missing_rate_[k][None, :])
            ys.append(np.full(int(m), k))
        Z, M, yc = np.vstack(Zs), np.vstack(Ms), np.concatenate(ys)
        order = rng.permutation(len(yc))
        return self._decode(Z[order], M[order]), pd.Series(self.classes_[yc[order]])

    def _interpolate(self, k: int, m: int, seed: int) -> np.ndarray:
        """``m`` new encoded rows of class ``k`` from one SMOTE run on the training rows."""
        rows = self.Z_[self.codes_ == k]
        if len(rows) < 2:  # nothing to interpolate with: copies of the one row
            return np.repeat(rows, m, axis=0)
        over = _imblearn()
        nn = min(int(self.params["k_neighbors"]), len(rows) - 1)
        strategy = {k: len(rows) + m}
        cat = np.flatnonzero(self.is_cat_).tolist()
        if not cat:
            sampler = over.SMOTE(sampling_strategy=strategy, k_neighbors=nn, random_state=seed)
        elif len(cat) == self.Z_.shape[1]:
            sampler = over.SMOTEN(sampling_strategy=strategy, k_neighbors=nn, random_state=seed)
        else:
            sampler = over.SMOTENC(categorical_features=cat, sampling_strategy=strategy,
                                   k_neighbors=nn, random_state=seed)
        Z_res, y_res = sampler.fit_resample(self.Z_, self.codes_)
        new = np.asarray(Z_res, dtype=np.float64)[len(self.Z_):]
        if len(new) != m or (np.asarray(y_res)[len(self.Z_):] != k).any():
            raise CausalMixError(f"smote: SMOTE returned {len(new)} new rows, {m} expected")
        return new

    def _decode(self, Z: np.ndarray, missing: np.ndarray) -> pd.DataFrame:
        out: dict[str, Any] = {}
        for j, c in enumerate(self.columns_):
            if self.is_cat_[j]:
                levels = np.empty(len(self.levels_[j]), dtype=object)
                levels[:] = self.levels_[j]
                idx = np.clip(np.rint(Z[:, j]), 0, len(levels) - 1).astype(np.int64)
                out[c] = levels[idx]
            else:
                v = np.clip(Z[:, j] * self.std_[j] + self.mean_[j], self.lo_[j], self.hi_[j])
                out[c] = np.where(missing[:, j], np.nan, v)
        return pd.DataFrame(out, columns=self.columns_)


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _level_codes(s: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """Integer codes of a categorical column over its levels (missing: a level, NaN)."""
    vals = s.astype(object).tolist()
    levels: list[Any] = []
    index: dict[Any, int] = {}
    codes = np.empty(len(vals), dtype=np.float64)
    for i, v in enumerate(vals):
        key = "__missing__" if pd.isna(v) else v
        if key not in index:
            index[key] = len(levels)
            levels.append(np.nan if pd.isna(v) else v)
        codes[i] = index[key]
    return codes, levels
