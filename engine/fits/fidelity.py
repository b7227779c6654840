"""How close synthetic rows are to the real rows they imitate: :func:`fidelity_report`.

Metrics (``NaN`` where a metric cannot be computed, e.g. single-class data):

* ``two_sample_auc``: ROC-AUC of a classifier telling real from synthetic rows, from
  out-of-fold predictions (stratified ``folds``-fold cross-validation over a balanced set of
  real and synthetic rows). Identical rows share a fold, so a synthetic copy of a real row
  cannot be recognised through its twin in the training folds: the score measures a
  difference of distributions, not memorisation. 0.5 means indistinguishable, 1.0 means fully
  separable.
* ``tstr_auc`` / ``trtr_auc`` / ``tstr_gap``: the real rows are split (stratified, seeded) into a
  train half and a held-out test half; ``trtr_auc`` is the test ROC-AUC of a classifier
  trained on the real train half, ``tstr_auc`` that of one trained on all synthetic rows;
  ``tstr_gap = trtr_auc - tstr_auc``. Multi-class AUC is one-vs-rest, macro-averaged.
* ``wasserstein_mean`` / ``wasserstein_max``: 1-Wasserstein distance per numeric column, both
  samples standardised with the real mean and standard deviation (missing values left out).
* ``tv_mean`` / ``tv_max``: total-variation distance per categorical column, missing values
  counted as a level of their own.
* ``missing_rate_diff_max``: largest absolute difference of per-column missing-value rates.
* ``corr_distance``: ``||C_real - C_syn||_F / n_pairs`` over the strict upper triangle of the
  Pearson correlation matrices of numerics and categorical codes (missing values imputed with
  the real column mean; constant columns have correlation 0); ``corr_mean_abs_diff``: mean
  absolute difference over the same pairs.
* For a generator exposing ``graph_`` and ``edge_probabilities_`` (the ``scm`` generator):
  ``graph_edges`` (number of directed edges), ``graph_oriented_share`` (share of those edges
  whose orientation probability ``p(u -> v)`` is at least 0.5) and ``graph_confident_share``
  (share whose orientation probability is at least 0.9). ``p(u -> v)`` is the stored
  probability of ``u -> v`` divided by the sum of the probabilities of ``u -> v`` and ``v -> u``
  when both are stored, the stored value itself otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import wasserstein_distance
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

CONFIDENT_ORIENTATION = 0.9
_MAX_BINS = 255


def fidelity_report(
    X_real: pd.DataFrame,
    y_real: pd.Series,
    X_syn: pd.DataFrame,
    y_syn: pd.Series,
    seed: int,
    generator: Any = None,
    folds: int = 3,
    max_rows: int = 4000,
    threads: int = 1,
) -> dict[str, float]:
    """Fidelity metrics of ``(X_syn, y_syn)`` against ``(X_real, y_real)`` (see module doc).

    ``max_rows`` caps the rows of each side used by the classifier metrics (seeded subsample).
    The classifiers run on one thread (``threads``): predictable under a shared CPU.
    """
    with threadpool_limits(limits=threads):
        return _report(X_real, y_real, X_syn, y_syn, seed, generator, folds, max_rows)


def _report(
    X_real: pd.DataFrame,
    y_real: pd.Series,
    X_syn: pd.DataFrame,
    y_syn: pd.Series,
    seed: int,
    generator: Any,
    folds: int,
    max_rows: int,
) -> dict[str, float]:
    cols = [c for c in X_real.columns if c in X_syn.columns]
    X_real = X_real[cols].reset_index(drop=True)
    X_syn = X_syn[cols].reset_index(drop=True)
    y_real = pd.Series(np.asarray(y_real), name="y").reset_index(drop=True)
    y_syn = pd.Series(np.asarray(y_syn), name="y").reset_index(drop=True)
    enc = _Encoder(X_real)
    R, S = enc.transform(X_real), enc.transform(X_syn)
    out: dict[str, float] = {"n_real": float(len(R)), "n_syn": float(len(S))}
    out["two_sample_auc"] = _two_sample_auc(R, S, enc.cat_mask, seed, folds, max_rows)
    out.update(_tstr(R, y_real, S, y_syn, enc.cat_mask, seed, max_rows))
    out.update(_marginals(X_real, X_syn, enc))
    out.update(_correlations(R, S, enc))
    if generator is not None:
        out.update(graph_summary(generator))
    return out


# ---------------------------------------------------------------------------- encoding


class _Encoder:
    """Numerics as floats (NaN kept); categoricals as codes of the real levels (unseen = K)."""

    def __init__(self, X: pd.DataFrame) -> None:
        self.columns = list(X.columns)
        self.levels: dict[str, dict[Any, int]] = {}
        self.num_stats: dict[str, tuple[float, float]] = {}
        mask = []
        for c in self.columns:
            s = X[c]
            if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
                v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
                obs = v[~np.isnan(v)]
                mean = float(obs.mean()) if len(obs) else 0.0
                std = float(obs.std()) if len(obs) > 1 else 0.0
                self.num_stats[c] = (mean, std if std > 1e-12 else 1.0)
                mask.append(False)
            else:
                vals = s.to_numpy(dtype=object)
                obs = pd.unique(vals[~pd.isna(vals)])
                self.levels[c] = {v: i for i, v in enumerate(obs)}
                mask.append(len(obs) + 1 <= _MAX_BINS)
        self.cat_mask = np.array(mask, dtype=bool)

    def is_cat(self, c: str) -> bool:
        return c in self.levels

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(X), len(self.columns)), dtype=np.float64)
        for j, c in enumerate(self.columns):
            if c in self.levels:
                lv = self.levels[c]
                unseen = len(lv)
                vals = X[c].to_numpy(dtype=object)
                out[:, j] = [np.nan if _isna(v) else lv.get(v, unseen) for v in vals]
            else:
                out[:, j] = pd.to_numeric(X[c], errors="coerce").to_numpy(dtype=np.float64)
        return out


def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _classifier(cat_mask: np.ndarray, seed: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        max_iter=60,
        learning_rate=0.15,
        max_leaf_nodes=15,
        min_samples_leaf=20,
        early_stopping=False,
        categorical_features=cat_mask if cat_mask.any() else None,
        random_state=seed,
    )


def _fit_classifier(
    X: np.ndarray, y: np.ndarray, cat_mask: np.ndarray, seed: int
) -> HistGradientBoostingClassifier:
    """Fit the metric classifier; columns with no observed value are made constant."""
    empty = np.isnan(X).all(axis=0)
    if empty.any():
        X = X.copy()
        X[:, empty] = 0.0
    return _classifier(cat_mask, seed).fit(X, y)


def _subsample(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, size=cap, replace=False)) if n > cap else np.arange(n)


# ---------------------------------------------------------------------------- metrics


def _two_sample_auc(
    R: np.ndarray, S: np.ndarray, cat_mask: np.ndarray, seed: int, folds: int, cap: int
) -> float:
    rng = np.random.default_rng(seed)
    m = min(len(R), len(S), cap)
    if m < folds or R.shape[1] == 0:
        return float("nan")
    R = R[_subsample(len(R), m, rng)]
    S = S[_subsample(len(S), m, rng)]
    X = np.vstack([R, S])
    lab = np.r_[np.zeros(len(R)), np.ones(len(S))].astype(np.int64)
    score = np.full(len(X), np.nan)
    fold = _group_folds(X, folds, rng)
    for f in range(folds):
        tr, te = fold != f, fold == f
        if len(np.unique(lab[tr])) < 2 or not te.any():
            continue
        clf = _fit_classifier(X[tr], lab[tr], cat_mask, seed)
        score[te] = clf.predict_proba(X[te])[:, 1]
    ok = ~np.isnan(score)
    if len(np.unique(lab[ok])) < 2:
        return float("nan")
    return float(roc_auc_score(lab[ok], score[ok]))


def _group_folds(X: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """Fold of each row; identical rows get the same fold (groups dealt in random order)."""
    keys = pd.util.hash_pandas_object(pd.DataFrame(X), index=False).to_numpy()
    _, group = np.unique(keys, return_inverse=True)
    n_groups = int(group.max()) + 1
    group_fold = np.empty(n_groups, dtype=np.int64)
    group_fold[rng.permutation(n_groups)] = np.arange(n_groups) % folds
    return group_fold[group]


def _tstr(
    R: np.ndarray,
    y_real: pd.Series,
    S: np.ndarray,
    y_syn: pd.Series,
    cat_mask: np.ndarray,
    seed: int,
    cap: int,
) -> dict[str, float]:
    nan = {"tstr_auc": np.nan, "trtr_auc": np.nan, "tstr_gap": np.nan}
    ok = y_real.notna().to_numpy()
    R, yr = R[ok], y_real[ok].to_numpy(dtype=object)
    classes = pd.unique(yr)
    if len(classes) < 2 or R.shape[1] == 0 or len(R) < 4:
        return nan
    code = {v: i for i, v in enumerate(classes)}
    yr_c = np.array([code[v] for v in yr])
    counts = np.bincount(yr_c)
    strat = yr_c if counts.min() >= 2 else None
    try:
        idx_tr, idx_te = train_test_split(
            np.arange(len(R)), test_size=0.5, random_state=seed, stratify=strat
        )
    except ValueError:
        return nan
    if len(np.unique(yr_c[idx_te])) < 2:
        return nan
    X_te, y_te = R[idx_te], yr_c[idx_te]
    out = dict(nan)
    out["trtr_auc"] = _fit_score(R[idx_tr], yr_c[idx_tr], X_te, y_te, len(classes), cat_mask, seed)
    ys = y_syn.to_numpy(dtype=object)
    keep = np.array([(not _isna(v)) and v in code for v in ys], dtype=bool)
    if keep.sum() >= 2:
        rng = np.random.default_rng(seed)
        Sk, ys_c = S[keep], np.array([code[v] for v in ys[keep]])
        sel = _subsample(len(Sk), cap, rng)
        out["tstr_auc"] = _fit_score(Sk[sel], ys_c[sel], X_te, y_te, len(classes), cat_mask, seed)
    out["tstr_gap"] = out["trtr_auc"] - out["tstr_auc"]
    return out


def _fit_score(
    X_tr: np.ndarray,
    y_tr: np.ndarray,
    X_te: np.ndarray,
    y_te: np.ndarray,
    k: int,
    cat_mask: np.ndarray,
    seed: int,
) -> float:
    present = np.unique(y_tr)
    proba = np.zeros((len(X_te), k))
    if len(present) == 1:
        proba[:, present[0]] = 1.0
    else:
        clf = _fit_classifier(X_tr, y_tr, cat_mask, seed)
        proba[:, clf.classes_] = clf.predict_proba(X_te)
    return _auc(y_te, proba)


def _auc(y: np.ndarray, proba: np.ndarray) -> float:
    labels = np.unique(y)
    if len(labels) < 2:
        return float("nan")
    if proba.shape[1] == 2:
        return float(roc_auc_score(y, proba[:, 1]))
    aucs = [roc_auc_score(y == c, proba[:, c]) for c in labels]
    return float(np.mean(aucs))


def _marginals(X_real: pd.DataFrame, X_syn: pd.DataFrame, enc: _Encoder) -> dict[str, float]:
    w, tv, md = [], [], []
    for c in enc.columns:
        r_na = X_real[c].isna().to_numpy()
        s_na = X_syn[c].isna().to_numpy()
        if len(r_na) and len(s_na):
            md.append(abs(r_na.mean() - s_na.mean()))
        if enc.is_cat(c):
            r = X_real[c].astype(object).where(~r_na, "<NA>")
            s = X_syn[c].astype(object).where(~s_na, "<NA>")
            if len(r) and len(s):
                p = r.value_counts(normalize=True)
                q = s.value_counts(normalize=True)
                p, q = p.align(q, fill_value=0.0)
                tv.append(0.5 * float(np.abs(p.to_numpy() - q.to_numpy()).sum()))
        else:
            mean, std = enc.num_stats[c]
            r = pd.to_numeric(X_real[c], errors="coerce").to_numpy(dtype=np.float64)
            s = pd.to_numeric(X_syn[c], errors="coerce").to_numpy(dtype=np.float64)
            r, s = r[~np.isnan(r)], s[~np.isnan(s)]
            if len(r) and len(s):
                w.append(wasserstein_distance((r - mean) / std, (s - mean) / std))
    return {
        "wasserstein_mean": _agg(w, np.mean),
        "wasserstein_max": _agg(w, np.max),
        "tv_mean": _agg(tv, np.mean),
        "tv_max": _agg(tv, np.max),
        "missing_rate_diff_max": _agg(md, np.max),
    }


def _agg(vals: list[float], fn: Any) -> float:
    return float(fn(vals)) if vals else float("nan")


def _correlations(R: np.ndarray, S: np.ndarray, enc: _Encoder) -> dict[str, float]:
    d = R.shape[1]
    nan = {"corr_distance": np.nan, "corr_mean_abs_diff": np.nan}
    if d < 2 or len(R) < 2 or len(S) < 2:
        return nan
    fill = np.nanmean(np.where(np.isnan(R).all(axis=0, keepdims=True), 0.0, R), axis=0)
    fill = np.where(np.isnan(fill), 0.0, fill)
    Cr, Cs = _corr(np.where(np.isnan(R), fill, R)), _corr(np.where(np.isnan(S), fill, S))
    iu = np.triu_indices(d, k=1)
    diff = (Cr - Cs)[iu]
    return {
        "corr_distance": float(np.sqrt((diff**2).sum()) / len(diff)),
        "corr_mean_abs_diff": float(np.abs(diff).mean()),
    }


def _corr(A: np.ndarray) -> np.ndarray:
    A = A - A.mean(axis=0)
    sd = np.sqrt((A**2).sum(axis=0))
    ok = sd > 1e-12
    A = np.where(ok, A / np.where(ok, sd, 1.0), 0.0)
    return A.T @ A


# ---------------------------------------------------------------------------- causal graph


def graph_summary(generator: Any, confident: float = CONFIDENT_ORIENTATION) -> dict[str, float]:
    """Edge count and orientation shares of a generator's ``graph_`` (empty dict if none).

    ``graph_`` may be a networkx graph, an adjacency matrix (array or DataFrame; nonzero
    ``[u, v]`` means ``u -> v``) or an iterable of ``(u, v)`` pairs. ``edge_probabilities_`` may
    be a mapping ``{(u, v): p}`` or a matrix of the same layout as the adjacency matrix.
    """
    graph = getattr(generator, "graph_", None)
    probs = getattr(generator, "edge_probabilities_", None)
    if graph is None:
        return {}
    edges, names = _edges(graph)
    out = {"graph_edges": float(len(edges))}
    if probs is None or not edges:
        out["graph_oriented_share"] = float("nan")
        out["graph_confident_share"] = float("nan")
        return out
    lookup = _prob_lookup(probs, names)
    p = []
    for u, v in edges:
        puv, pvu = lookup(u, v), lookup(v, u)
        if puv is None:
            continue
        p.append(puv / (puv + pvu) if pvu is not None and puv + pvu > 0 else puv)
    arr = np.array(p, dtype=np.float64)
    out["graph_oriented_share"] = float((arr >= 0.5).mean()) if len(arr) else float("nan")
    out["graph_confident_share"] = float((arr >= confident).mean()) if len(arr) else float("nan")
    return out


def _edges(graph: Any) -> tuple[list[tuple[Any, Any]], list[Any] | None]:
    if hasattr(graph, "edges") and callable(graph.edges):
        edges = [(u, v) for u, v in graph.edges()]
        if not getattr(graph, "is_directed", lambda: True)():
            edges = edges + [(v, u) for u, v in edges]
        return edges, None
    if isinstance(graph, pd.DataFrame):
        A = graph.to_numpy(dtype=np.float64)
        names = list(graph.index)
        return [(names[i], names[j]) for i, j in zip(*np.nonzero(A))], names
    if isinstance(graph, np.ndarray) and graph.ndim == 2:
        return [(int(i), int(j)) for i, j in zip(*np.nonzero(graph))], None
    if isinstance(graph, Iterable):
        return [(e[0], e[1]) for e in graph], None
    return [], None


def _prob_lookup(probs: Any, names: list[Any] | None) -> Any:
    if isinstance(probs, dict):
        return lambda u, v: None if (u, v) not in probs else float(probs[(u, v)])
    if isinstance(probs, pd.DataFrame):
        return lambda u, v: (
            float(probs.loc[u, v]) if u in probs.index and v in probs.columns else None
        )
    P = np.asarray(probs, dtype=np.float64)
    index = {n: i for i, n in enumerate(names)} if names is not None else None

    def look(u: Any, v: Any) -> float | None:
        i, j = (index.get(u), index.get(v)) if index is not None else (u, v)
        if i is None or j is None or not (0 <= i < len(P) and 0 <= j < len(P)):
            return None
        return float(P[i, j])

    return look
