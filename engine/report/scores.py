"""Per-trial scores: normalised improvement over zero-shot and TabArena-style normalised error."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.report.load import FOLD_KEYS
from engine.storage.results_schema import HIGHER_IS_BETTER, METRICS

PRIMARY_METRIC = "roc_auc"
SCORE_KINDS: dict[str, bool] = {"improvement": True, "normalized_error": False}
"""Score kind -> higher is better."""


def score_column(kind: str, metric: str) -> str:
    """Column name of a score, e.g. ``improvement_roc_auc``."""
    return f"{kind}_{metric}"


def improvement(score: pd.Series, baseline: pd.Series, higher_is_better: bool) -> pd.Series:
    """Vectorised ``sign x (score / baseline - 1) x 100``; NaN where undefined."""
    score = pd.to_numeric(score, errors="coerce").astype(float)
    baseline = pd.to_numeric(baseline, errors="coerce").astype(float)
    sign = 1.0 if higher_is_better else -1.0
    valid = np.isfinite(score) & np.isfinite(baseline) & (baseline != 0)
    return (sign * (score / baseline.where(valid) - 1.0) * 100.0).where(valid)


def error_of(values: pd.Series, metric: str) -> pd.Series:
    """An error to minimise: ``1 - score`` for higher-is-better metrics, the loss itself else."""
    values = pd.to_numeric(values, errors="coerce").astype(float)
    return 1.0 - values if HIGHER_IS_BETTER[metric] else values


def add_scores(results: pd.DataFrame) -> pd.DataFrame:
    """Add ``improvement_<metric>`` and ``normalized_error_<metric>`` for every metric.

    Improvement: the study's normalised improvement of the test score at the selected step over
    the zero-shot test score (``improvement_roc_auc`` is the recorded
    ``normalized_improvement_pct`` where present). Normalised error: per dataset-fold the
    test error is min-max rescaled over every finished trial of that dataset-fold plus the
    zero-shot model, so 0 is the best and 1 the worst candidate (0 when all are equal).
    Failed trials get NaN scores.
    """
    out = results.copy()
    ok = out["status"] == "ok"
    for metric in METRICS:
        higher = HIGHER_IS_BETTER[metric]
        computed = improvement(out[f"test_{metric}"], out[f"zero_shot_test_{metric}"], higher)
        if metric == PRIMARY_METRIC:
            recorded = out["normalized_improvement_pct"].astype(float)
            computed = recorded.where(np.isfinite(recorded), computed)
        out[score_column("improvement", metric)] = computed.where(ok)
        out[score_column("normalized_error", metric)] = _normalized_error(out, metric, ok)
    return out


def _normalized_error(results: pd.DataFrame, metric: str, ok: pd.Series) -> pd.Series:
    """Min-max normalised test error per dataset-fold (zero-shot included as a candidate)."""
    err = error_of(results[f"test_{metric}"], metric).where(ok)
    zero = error_of(results[f"zero_shot_test_{metric}"], metric)
    keys = [results[k] for k in FOLD_KEYS]
    frame = pd.DataFrame({"err": err, "zero": zero})
    grouped = frame.groupby(keys, dropna=False)
    low = np.fmin(grouped["err"].transform("min"), grouped["zero"].transform("min"))
    high = np.fmax(grouped["err"].transform("max"), grouped["zero"].transform("max"))
    span = high - low
    scaled = (err - low) / span.where(span > 0)
    return scaled.where(span > 0, 0.0).where(np.isfinite(err))
