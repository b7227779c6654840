"""Hand-built results/evaluations rows shared by the report tests (no tests here)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.storage.results_schema import EVALUATION_COLUMNS, METRICS, RESULT_COLUMNS


def trial(method: str, dataset: str, fold: int, test: float, *, scale: float = 0.0,
          mix: float = 0.0, zero: float = 0.8, val: float | None = None, seed: int = 0,
          status: str = "ok") -> dict:
    """One results row; every metric gets the same test/zero-shot values (log-loss: 1 - AUC)."""
    failed = status != "ok"
    row = {c: (0 if t == "int64" else np.nan if t == "float64" else "")
           for c, t in RESULT_COLUMNS.items()}
    row.update(trial_id=f"{method}/{dataset}/fold{fold}/scale{scale:g}_mix{mix:g}_seed{seed}",
               sweep="hand", dataset=dataset, fold=fold, method=method, synthetic_scale=scale,
               mix_ratio=mix, seed=seed, status=status, error="boom" if failed else "")
    for m in METRICS:
        flip = m == "log_loss"
        row[f"zero_shot_test_{m}"] = row[f"zero_shot_val_{m}"] = (1 - zero) if flip else zero
        if not failed:
            row[f"test_{m}"] = (1 - test) if flip else test
            v = test if val is None else val
            row[f"val_{m}"] = (1 - v) if flip else v
    row["normalized_improvement_pct"] = np.nan if failed else (test / zero - 1) * 100
    return row


def frame(rows: list[dict]) -> pd.DataFrame:
    """A results table with the contract's columns."""
    return pd.DataFrame(rows)[list(RESULT_COLUMNS)]


def steps(trial_id: str, method: str, val: list[float], test: list[float],
          dataset: str = "d", fold: int = 0) -> pd.DataFrame:
    """Evaluation rows of one trial (ROC-AUC only; other metrics copy it)."""
    rows = []
    for i, (v, t) in enumerate(zip(val, test)):
        row = {c: np.nan for c in EVALUATION_COLUMNS}
        row.update(trial_id=trial_id, dataset=dataset, fold=fold, method=method,
                   synthetic_scale=0.0, mix_ratio=0.0, seed=0, step=10 * i)
        for m in METRICS:
            row[f"val_{m}"], row[f"test_{m}"] = v, t
        rows.append(row)
    return pd.DataFrame(rows)[list(EVALUATION_COLUMNS)]
