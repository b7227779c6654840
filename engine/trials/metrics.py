"""Classification scores on real rows: ROC-AUC (one-vs-rest macro), log loss, accuracy, macro F1."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score, roc_auc_score

from engine.storage.results_schema import METRICS


def roc_auc(y: np.ndarray, proba: np.ndarray) -> float:
    """Binary AUC, or the mean one-vs-rest AUC over classes present in ``y`` (NaN if < 2)."""
    y = np.asarray(y)
    present = np.unique(y)
    if len(present) < 2:
        return float("nan")
    if proba.shape[1] == 2:
        return float(roc_auc_score(y == 1, proba[:, 1]))
    aucs = [roc_auc_score(y == c, proba[:, c]) for c in present]
    return float(np.mean(aucs))


def log_loss(y: np.ndarray, proba: np.ndarray, eps: float = 1e-7) -> float:
    """Mean negative log-likelihood of the true class (probabilities clipped at ``eps``)."""
    if len(y) == 0:
        return float("nan")
    p = np.clip(proba[np.arange(len(y)), np.asarray(y)], eps, 1.0)
    return float(-np.mean(np.log(p)))


def scores(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """All metrics of ``engine.storage.results_schema.METRICS`` for labels ``y`` and
    probabilities."""
    y = np.asarray(y, dtype=np.int64)
    pred = proba.argmax(axis=1)
    out = {
        "roc_auc": roc_auc(y, proba),
        "log_loss": log_loss(y, proba),
        "accuracy": float(np.mean(pred == y)) if len(y) else float("nan"),
        "f1_macro": float(f1_score(y, pred, average="macro", zero_division=0)) if len(y)
        else float("nan"),
    }
    assert set(out) == set(METRICS)
    return out
