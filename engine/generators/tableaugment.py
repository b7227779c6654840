"""``tableaugment``: the project's stand-in for the TableAugment baseline.

No public implementation is published under that name, so this module implements a documented
classical augmenter and uses it wherever the comparison calls for "TableAugment":

* **Interpolation** (SMOTE-style, within class): a synthetic row starts from a random real row
  of class ``c`` and one of its ``k`` nearest class-``c`` neighbours; numeric features are
  ``x + lam * (x_nb - x)`` with ``lam ~ U(0, 1)``, on the standardised scale. Distances use
  standardised numerics plus one unit per categorical mismatch, with missing values imputed
  (median / mode) only for this purpose.
* **Jitter**: Gaussian noise with standard deviation ``sigma`` (standardised units) is added to
  every numeric feature; values are then clipped to the observed range (``clip=True``).
* **Categoricals**: taken from the neighbour with probability ``lam`` and from the base row
  otherwise; with probability ``cat_marginal_prob`` they are instead drawn from the class
  marginal of that column.
* **Missing values** are re-injected per class and column at the observed rate.
* **Class proportions** of the real rows are preserved (largest-remainder rounding); with a
  ``class_balance`` option each class is drawn on its own (``_sample_class``).

The module also holds :class:`TableCodec`, the small numeric encoding shared with ``tabebm``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.core.errors import CausalMixError
from engine.generators.base import (  # noqa: F401 - proportional_counts re-exported
    Generator,
    proportional_counts,
    register_generator,
)

# ---------------------------------------------------------------------------- shared helpers


@dataclass
class _ColumnCode:
    name: str
    kind: str  # "num" or "cat"
    mean: float = 0.0
    std: float = 1.0
    lo: float = 0.0  # observed range, standardised
    hi: float = 0.0
    fill: float = 0.0  # imputation value in encoded space
    categories: list[Any] = field(default_factory=list)


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


class TableCodec:
    """Encodes a mixed table as a float matrix and back.

    Numerics are standardised with the real rows' mean and standard deviation (1 for constant
    columns); categoricals (strings, booleans, pandas categoricals) become integer codes over
    the observed values, sorted by their text. Missing (or unseen) entries are imputed with the
    median / mode and flagged in a separate mask.
    """

    def fit(self, X: pd.DataFrame) -> TableCodec:
        self.columns_: list[_ColumnCode] = []
        for name in X.columns:
            s = X[name]
            if _is_numeric(s):
                v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
                obs = v[~np.isnan(v)]
                mean = float(obs.mean()) if len(obs) else 0.0
                std = float(obs.std()) if len(obs) > 1 else 0.0
                std = std if std > 1e-12 else 1.0
                z = (obs - mean) / std
                col = _ColumnCode(
                    str(name),
                    "num",
                    mean=mean,
                    std=std,
                    lo=float(z.min()) if len(z) else 0.0,
                    hi=float(z.max()) if len(z) else 0.0,
                    fill=float(np.median(z)) if len(z) else 0.0,
                )
            else:
                vals = s.to_numpy(dtype=object)
                obs = [v for v in pd.unique(vals[~pd.isna(vals)])]
                cats = sorted(obs, key=lambda v: (str(type(v)), str(v)))
                col = _ColumnCode(str(name), "cat", categories=cats)
                if cats:
                    codes = self._cat_codes(vals, cats)
                    counts = np.bincount(codes[codes >= 0], minlength=len(cats))
                    col.fill = float(np.argmax(counts))
                    col.hi = float(len(cats) - 1)
            self.columns_.append(col)
        self.names_ = list(X.columns)
        return self

    @property
    def is_cat(self) -> np.ndarray:
        return np.array([c.kind == "cat" for c in self.columns_], dtype=bool)

    @property
    def n_categories(self) -> np.ndarray:
        return np.array([len(c.categories) for c in self.columns_], dtype=np.int64)

    @staticmethod
    def _cat_codes(vals: np.ndarray, cats: list[Any]) -> np.ndarray:
        lookup = {v: i for i, v in enumerate(cats)}
        out = np.full(len(vals), -1, dtype=np.int64)
        for i, v in enumerate(vals):
            if not pd.isna(v):
                out[i] = lookup.get(v, -1)
        return out

    def encode(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(Z, missing)``: the imputed encoded matrix and the missing-value mask."""
        n, d = len(X), len(self.columns_)
        Z = np.zeros((n, d), dtype=np.float64)
        miss = np.zeros((n, d), dtype=bool)
        for j, (name, col) in enumerate(zip(self.names_, self.columns_)):
            if col.kind == "num":
                v = pd.to_numeric(X[name], errors="coerce").to_numpy(dtype=np.float64)
                z = (v - col.mean) / col.std
            else:
                codes = self._cat_codes(X[name].to_numpy(dtype=object), col.categories)
                z = np.where(codes >= 0, codes, np.nan).astype(np.float64)
            miss[:, j] = np.isnan(z)
            Z[:, j] = np.where(miss[:, j], col.fill, z)
        return Z, miss

    def decode(self, Z: np.ndarray, missing: np.ndarray | None = None) -> pd.DataFrame:
        """Map an encoded matrix back to a frame (codes snapped to the nearest valid code)."""
        out: dict[str, Any] = {}
        for j, (name, col) in enumerate(zip(self.names_, self.columns_)):
            m = missing[:, j] if missing is not None else np.zeros(len(Z), dtype=bool)
            if col.kind == "num":
                v = Z[:, j] * col.std + col.mean
                out[name] = np.where(m, np.nan, v)
            else:
                if not col.categories:
                    out[name] = np.full(len(Z), np.nan, dtype=object)
                    continue
                codes = np.clip(np.rint(Z[:, j]), 0, len(col.categories) - 1).astype(np.int64)
                cats = np.empty(len(col.categories), dtype=object)
                cats[:] = col.categories
                vals = cats[codes]
                vals[m] = np.nan
                out[name] = vals
        return pd.DataFrame(out, columns=self.names_)


def one_class_counts(n: int, classes: np.ndarray, label: Any) -> np.ndarray:
    """Counts per class (``classes`` order): ``n`` rows of ``label``, none of the others."""
    counts = np.zeros(len(classes), dtype=np.int64)
    counts[classes.tolist().index(label)] = n
    return counts


def label_codes(y: pd.Series, classes: np.ndarray) -> np.ndarray:
    """Integer code of each label in ``classes`` (the generator's ``classes_``)."""
    lookup = {v: i for i, v in enumerate(classes.tolist())}
    return np.array([lookup.get(v, -1) for v in y.tolist()], dtype=np.int64)


# ---------------------------------------------------------------------------- generator


@register_generator("tableaugment")
class TableAugmentGenerator(Generator):
    """Within-class interpolation + jitter augmenter (the project's TableAugment stand-in).

    Parameters: ``k`` (5) nearest same-class neighbours; ``sigma`` (0.05) numeric jitter in
    standard deviations; ``cat_marginal_prob`` (0.1) chance of drawing a categorical from the
    class marginal; ``clip`` (True) keep numerics in the observed range; ``missing``
    (``"reinject"`` or ``"none"``) re-inject missing values at the observed per-class rates.
    """

    DEFAULTS: dict[str, Any] = {
        "k": 5,
        "sigma": 0.05,
        "cat_marginal_prob": 0.1,
        "clip": True,
        "missing": "reinject",
    }

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.DEFAULTS)
        if unknown:
            raise CausalMixError(f"tableaugment: unknown parameters {sorted(unknown)}")
        super().__init__(**{**self.DEFAULTS, **params})
        if int(self.params["k"]) < 1:
            raise CausalMixError("tableaugment: k must be >= 1")
        if float(self.params["sigma"]) < 0:
            raise CausalMixError("tableaugment: sigma must be >= 0")
        if self.params["missing"] not in ("reinject", "none"):
            raise CausalMixError("tableaugment: missing must be 'reinject' or 'none'")

    def _fit(self, X: pd.DataFrame, y: pd.Series) -> None:
        self.codec_ = TableCodec().fit(X)
        Z, miss = self.codec_.encode(X)
        codes = label_codes(y, self.classes_)
        is_cat = self.codec_.is_cat
        k = int(self.params["k"])
        self.class_rows_: list[np.ndarray] = []
        self.class_neighbours_: list[np.ndarray] = []
        self.class_missing_rate_: list[np.ndarray] = []
        self.class_marginals_: list[list[np.ndarray]] = []
        self.class_freq_ = np.bincount(codes[codes >= 0], minlength=len(self.classes_))
        for c in range(len(self.classes_)):
            Zc = Z[codes == c]
            self.class_rows_.append(Zc)
            self.class_missing_rate_.append(miss[codes == c].mean(axis=0))
            self.class_neighbours_.append(_knn(Zc, is_cat, k))
            margs = []
            for j in np.flatnonzero(is_cat):
                K = max(len(self.codec_.columns_[j].categories), 1)
                obs = Zc[~miss[codes == c][:, j], j].astype(np.int64)
                cnt = np.bincount(obs, minlength=K).astype(np.float64)
                if cnt.sum() == 0:  # nothing observed in this class: fall back to all rows
                    cnt = np.bincount(Z[~miss[:, j], j].astype(np.int64), minlength=K) + 1e-12
                margs.append(cnt / cnt.sum())
            self.class_marginals_.append(margs)

    def _sample(self, n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
        return self._sample_counts(proportional_counts(n, self.class_freq_), seed)

    def _sample_class(self, n: int, seed: int, label: Any) -> tuple[pd.DataFrame, pd.Series]:
        return self._sample_counts(one_class_counts(n, self.classes_, label), seed)

    def _sample_counts(self, counts: np.ndarray, seed: int) -> tuple[pd.DataFrame, pd.Series]:
        """``counts[c]`` rows of each class ``c``, shuffled (seeded)."""
        rng = np.random.default_rng(seed)
        codec = self.codec_
        is_cat = codec.is_cat
        cat_idx = np.flatnonzero(is_cat)
        num_idx = np.flatnonzero(~is_cat)
        lo = np.array([c.lo for c in codec.columns_])[num_idx]
        hi = np.array([c.hi for c in codec.columns_])[num_idx]
        sigma = float(self.params["sigma"])
        p_marg = float(self.params["cat_marginal_prob"])
        Zs, Ms, ys = [], [], []
        for c, m in enumerate(counts):
            if m == 0:
                continue
            Zc, nb = self.class_rows_[c], self.class_neighbours_[c]
            base = rng.integers(0, len(Zc), size=m)
            if nb.shape[1] > 0:
                other = nb[base, rng.integers(0, nb.shape[1], size=m)]
            else:
                other = base
            lam = rng.random(m)
            x, x_nb = Zc[base], Zc[other]
            out = x.copy()
            out[:, num_idx] = x[:, num_idx] + lam[:, None] * (x_nb[:, num_idx] - x[:, num_idx])
            out[:, num_idx] += sigma * rng.standard_normal((m, len(num_idx)))
            if self.params["clip"] and len(num_idx):
                out[:, num_idx] = np.clip(out[:, num_idx], lo, hi)
            if len(cat_idx):
                take_nb = rng.random((m, len(cat_idx))) < lam[:, None]
                out[:, cat_idx] = np.where(take_nb, x_nb[:, cat_idx], x[:, cat_idx])
                marg = rng.random((m, len(cat_idx))) < p_marg
                for t, j in enumerate(cat_idx):
                    p = self.class_marginals_[c][t]
                    draw = rng.choice(len(p), size=m, p=p)
                    out[:, j] = np.where(marg[:, t], draw, out[:, j])
            if self.params["missing"] == "reinject":
                miss = rng.random(out.shape) < self.class_missing_rate_[c][None, :]
            else:
                miss = np.zeros(out.shape, dtype=bool)
            Zs.append(out)
            Ms.append(miss)
            ys.append(np.full(m, c))
        Z, M, yc = np.vstack(Zs), np.vstack(Ms), np.concatenate(ys)
        order = rng.permutation(len(yc))
        X_syn = codec.decode(Z[order], M[order])
        return X_syn, pd.Series(self.classes_[yc[order]])


def _knn(Z: np.ndarray, is_cat: np.ndarray, k: int) -> np.ndarray:
    """Indices ``(n, min(k, n-1))`` of each row's nearest other rows (ties by index)."""
    n = len(Z)
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((n, 0), dtype=np.int64)
    num, cat = Z[:, ~is_cat], Z[:, is_cat]
    out = np.empty((n, k), dtype=np.int64)
    sq = (num**2).sum(axis=1)
    for start in range(0, n, 256):
        stop = min(start + 256, n)
        d = sq[start:stop, None] + sq[None, :] - 2.0 * num[start:stop] @ num.T
        d = np.sqrt(np.maximum(d, 0.0))
        if cat.shape[1]:
            d = d + (cat[start:stop, None, :] != cat[None, :, :]).sum(axis=2)
        d[np.arange(stop - start), np.arange(start, stop)] = np.inf
        out[start:stop] = np.argsort(d, axis=1, kind="stable")[:, :k]
    return out
