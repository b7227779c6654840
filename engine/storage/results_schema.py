"""Column contract of ``results.parquet`` and ``evaluations.parquet`` (documented in the README).

``results.parquet``: one row per trial. ``evaluations.parquet``: one row per evaluation of a
trial during fine-tuning (step 0 is the zero-shot model), for validation/test tracking analysis.
Scores are computed on real rows only. ``*_roc_auc`` is one-vs-rest macro for multiclass.
"""

from __future__ import annotations

METRICS: tuple[str, ...] = ("roc_auc", "log_loss", "accuracy", "f1_macro", "f1_minority",
                            "pr_auc", "balanced_accuracy")
"""Metrics recorded for each split; roc_auc is the primary (selection and normalisation) metric.
``f1_minority`` and ``pr_auc`` (average precision) are those of the minority class: the least
frequent class of the fold's training labels (ties: the smaller label), ``minority_class``."""

HIGHER_IS_BETTER: dict[str, bool] = {
    "roc_auc": True,
    "log_loss": False,
    "accuracy": True,
    "f1_macro": True,
    "f1_minority": True,
    "pr_auc": True,
    "balanced_accuracy": True,
}

RESULT_COLUMNS: dict[str, str] = {
    "trial_id": "string",  # method/dataset/fold<k>/scale<s>_mix<m>_seed<seed>
    "trial_key": "string",  # digest of the trial's inputs: a row is reusable under this key
    "sweep": "string",
    "dataset": "string",
    "fold": "int64",
    "method": "string",
    "generator": "string",  # '' for the real-only method
    "fit_id": "string",  # the generator fit whose rows the trial used (joins fits.parquet); ''
    "synthetic_scale": "float64",  # synthetic rows = scale x n_train
    "mix_ratio": "float64",  # share of synthetic rows in each fine-tuning episode
    "seed": "int64",
    "model": "string",
    "n_train": "int64",  # real rows drawn for the fold (training + validation): the scarcity knob
    "minority_share": "float64",  # fold option imbalance.minority_share (NaN when not set)
    "n_minority_train": "int64",  # minority-class rows among the n_train rows (train + val)
    "minority_class": "string",  # the training rows' least frequent class (f1_minority, pr_auc)
    "n_context": "int64",  # real training rows: the model's context and the generators' input
    "n_val": "int64",
    "n_test": "int64",
    "n_features": "int64",
    "n_classes": "int64",
    "n_synthetic": "int64",
    "lr": "float64",  # fine-tuning learning rate
    "finetune_steps": "int64",  # fine-tuning step budget (steps_run may stop earlier)
    "search": "string",  # the Optuna study (method/dataset/fold<k>) in search mode; '' in a grid
    "search_number": "int64",  # the trial's number in its study (-1 in a grid)
    "stopped_early": "bool",  # stopped by the search's ASHA scheduler (scores: best so far)
    **{f"zero_shot_val_{m}": "float64" for m in METRICS},
    **{f"zero_shot_test_{m}": "float64" for m in METRICS},
    **{f"val_{m}": "float64" for m in METRICS},  # at the selected (best-validation) step
    **{f"test_{m}": "float64" for m in METRICS},  # at the selected (best-validation) step
    "normalized_improvement_pct": "float64",  # sign x (test/zero-shot - 1) x 100, ROC-AUC
    # under a shift (engine.folds.shift; '' / -1 / NaN without one): the out-of-domain test
    "shift": "string",  # the shift, described ('domain sex ood=Female', 'cluster k=4', ...)
    "ood_domain": "string",  # the held-out domain(s) of this fold
    "n_ood_test": "int64",
    **{f"zero_shot_ood_test_{m}": "float64" for m in METRICS},
    **{f"ood_test_{m}": "float64" for m in METRICS},  # at the selected step
    "ood_normalized_improvement_pct": "float64",  # against the zero-shot OOD ROC-AUC
    "best_step": "int64",
    "steps_run": "int64",
    "seconds": "float64",
    "started_at": "float64",  # Unix time the trial started on its worker
    "finished_at": "float64",
    "finetune_seconds": "float64",  # in the fine-tuning loop (steps and evaluations)
    "scoring_seconds": "float64",  # zero-shot scoring (0 when the shared baseline was reused)
    "device": "string",  # 'cpu' or 'cuda:<i>' where the trial ran
    "worker": "string",  # <host>:<pid> of the (reused) trial worker process
    "status": "string",  # 'ok' or 'error'
    "error": "string",  # one line; '' when ok
}

EVALUATION_COLUMNS: dict[str, str] = {
    "trial_id": "string",
    "dataset": "string",
    "fold": "int64",
    "method": "string",
    "synthetic_scale": "float64",
    "mix_ratio": "float64",
    "seed": "int64",
    "step": "int64",
    "train_loss": "float64",  # mean episode loss since the previous evaluation (NaN at step 0)
    **{f"val_{m}": "float64" for m in METRICS},
    **{f"test_{m}": "float64" for m in METRICS},  # analysis only, never used for selection
    **{f"ood_test_{m}": "float64" for m in METRICS},  # under a shift; analysis only
}


FIT_COLUMNS: dict[str, str] = {
    "fit_id": "string",  # <generator>/<dataset>/fold<k>/<fit key>
    "generator": "string",
    "options": "string",  # JSON
    "dataset": "string",
    "fold": "int64",
    "n_samples": "int64",
    "n_train_rows_seen": "int64",
    "status": "string",
    "error": "string",
    "seconds": "float64",
    "started_at": "float64",  # Unix time the fit started on its worker
    "finished_at": "float64",
    "device": "string",
    "discovery_seconds": "float64",  # scm: causal discovery (PC/FCI) part of the fit
    "fit_seconds": "float64",  # scm: SCM mechanism fitting part
    "graph_edge_count": "int64",  # scm: edges of the most probable DAG (-1 if none)
}
"""``fits.parquet``: one row per generator fit; ``fidelity_*`` columns follow (see
``engine.fits.fidelity``)."""


def normalized_improvement(score: float, baseline: float, higher_is_better: bool = True) -> float:
    """The reference study's normalised score: sign x (score / baseline - 1) x 100 %."""
    import math

    if baseline is None or score is None or not math.isfinite(baseline) or baseline == 0:
        return float("nan")
    if not math.isfinite(score):
        return float("nan")
    sign = 1.0 if higher_is_better else -1.0
    return sign * (score / baseline - 1.0) * 100.0
