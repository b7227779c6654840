"""Short definitions shown in the HTML report (docs/report.md has the full text)."""

from __future__ import annotations

DEFINITIONS: dict[str, str] = {
    "report metric": "The method tables, rank tests, validation-test tracking and scaling "
    "curves use one metric (causalmix report --metric, default roc_auc): configurations are "
    "selected by validation <metric> and scored by its normalised improvement; where this text "
    "says ROC-AUC, read that metric.",
    "minority class": "The least frequent class of a fold's training labels (ties: the smaller "
    "label); f1_minority is its F1 at the argmax, pr_auc its average precision. With an "
    "imbalance each minority share is its own dataset, named '<dataset> [minority <share>]'.",
    "dataset-fold": "One (dataset, fold, seed) combination; every statistic is taken over "
    "dataset-folds. Repeats of one configuration on one dataset-fold (merged sweeps) are "
    "averaged.",
    "failed trials": "Trials with status 'error' have no scores; they are excluded from every "
    "statistic and counted in n_error and the failed-trials table.",
    "normalised improvement": "sign × (test score / zero-shot test score − 1) × 100 %, sign = +1 "
    "for higher-is-better metrics and −1 for log-loss; for ROC-AUC this is the recorded "
    "normalized_improvement_pct.",
    "normalised error": "Per dataset-fold, error = 1 − score (log-loss as is), min-max scaled over "
    "all finished trials of that dataset-fold and the zero-shot model: 0 = best, 1 = worst "
    "candidate, 0 when all candidates are equal.",
    "validation-selected configuration": "Per method and dataset-fold, the grid point with the "
    "highest validation ROC-AUC (ties: smaller scale, then smaller mix ratio).",
    "average rank": "Rank the methods' selected configurations on each dataset-fold where all "
    "have a score (1 = best, ties share the average rank) and average the ranks.",
    "win rate vs finetune": "Share of shared dataset-folds on which the method beats finetune; "
    "ties count one half.",
    "Wilcoxon / Holm": "Two-sided Wilcoxon signed-rank test of the paired differences to "
    "finetune (scipy defaults: zero differences dropped); Holm step-down adjustment over the "
    "methods (or grid points) of one metric and score.",
    "critical difference": "Nemenyi CD = q_0.05 · sqrt(k (k + 1) / (6 N)), q from the "
    "studentised range with infinite degrees of freedom divided by sqrt 2; k methods, N complete "
    "dataset-folds; bars join methods whose average ranks differ by less than CD.",
    "spread (±)": "Sample standard deviation (ddof = 1) over dataset-folds; IQR = q75 − q25 "
    "with linear interpolation.",
    "Spearman / gap": "Per trial, Spearman rank correlation of validation and test ROC-AUC over "
    "the evaluation steps (NaN with fewer than 3 steps or a constant series); per method "
    "gap = 1 − median Spearman (0 = validation ranks checkpoints exactly as test does).",
    "regret": "Per trial, max test ROC-AUC over steps − test ROC-AUC at the first step with the "
    "best validation ROC-AUC; per method the median.",
    "bootstrap band": "Percentile 95 % interval of the median over 1000 resamples of "
    "dataset-folds (seed 0), resampled jointly across the scales of one curve.",
    "saturating fit": "y = a·(1 − exp(−s/τ)) + b fitted to the median curve (≥ 3 scales); "
    "scale_90 = τ·ln 10 is where 90 % of the change a is reached. Fallback: c·s^p + d (≥ 4 "
    "positive scales, no scale_90).",
    "best mix ratio": "Per dataset: for each mix ratio the best median (over the dataset's "
    "folds) across scales; the best mix ratio maximises it.",
}
