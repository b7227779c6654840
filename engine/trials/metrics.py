"""Classification scores on real rows: ROC-AUC (one-vs-rest macro), log loss, accuracy, macro F1,
and for imbalance the minority class's F1 and average precision, and balanced accuracy.

The minority class is the least frequent class of the fold's *training* labels (ties: the
smaller label code), so validation and test rows are scored for the same class."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    roc_auc_score,
)

from engine.folds.splits import imbalance_minority  # one rule, also for imbalance folds
from engine.storage.results_schema import METRICS


def minority_class(y_train: np.ndarray) -> int:
    """The least frequent class code among ``y_train``'s labels (ties: the smaller code)."""
    y = np.asarray(y_train, dtype=np.int64)
    return imbalance_minority(y) if len(y) else 0


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


def pr_auc(y: np.ndarray, proba: np.ndarray, minority: int) -> float:
    """Average precision of ``minority`` against the rest (NaN when ``y`` has none of it or
    only it)."""
    positive = np.asarray(y) == minority
    if not positive.any() or positive.all():
        return float("nan")
    return float(average_precision_score(positive, proba[:, minority]))


def imbalance_scores(y: np.ndarray, pred: np.ndarray, proba: np.ndarray,
                     minority: int) -> dict[str, float]:
    """``f1_minority`` (F1 of ``minority`` at the argmax), ``pr_auc`` and
    ``balanced_accuracy``."""
    if len(y) == 0:
        return dict.fromkeys(("f1_minority", "pr_auc", "balanced_accuracy"), float("nan"))
    with warnings.catch_warnings():  # predicted classes absent from y: sklearn warns
        warnings.simplefilter("ignore")
        f1 = f1_score(y, pred, labels=[minority], average=None, zero_division=0)[0]
        balanced = balanced_accuracy_score(y, pred)
    return {"f1_minority": float(f1), "pr_auc": pr_auc(y, proba, minority),
            "balanced_accuracy": float(balanced)}


def scores(y: np.ndarray, proba: np.ndarray, minority: int | None = None) -> dict[str, float]:
    """All metrics of ``engine.storage.results_schema.METRICS`` for labels ``y`` and
    probabilities; ``minority`` is the training rows' minority class code (default: the
    least frequent class of ``y`` itself)."""
    y = np.asarray(y, dtype=np.int64)
    pred = proba.argmax(axis=1)
    if minority is None:
        minority = minority_class(y)
    out = {
        "roc_auc": roc_auc(y, proba),
        "log_loss": log_loss(y, proba),
        "accuracy": float(np.mean(pred == y)) if len(y) else float("nan"),
        "f1_macro": float(f1_score(y, pred, average="macro", zero_division=0)) if len(y)
        else float("nan"),
        **imbalance_scores(y, pred, proba, minority),
    }
    assert set(out) == set(METRICS)
    return out
