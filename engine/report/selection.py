"""Choosing one configuration per method and dataset-fold by validation score."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.report.load import FOLD_KEYS
from engine.report.scores import PRIMARY_METRIC
from engine.results_schema import HIGHER_IS_BETTER

SELECTION_COLUMN = f"val_{PRIMARY_METRIC}"


def select_by_validation(results: pd.DataFrame, column: str = SELECTION_COLUMN) -> pd.DataFrame:
    """Per method and dataset-fold, the finished trial with the best validation score.

    Ties are broken towards the smaller synthetic scale, then the smaller mix ratio. Methods
    with a single configuration (``finetune``) keep it. Repeats of the same configuration
    from merged sweeps are averaged first. Returns one row per method x dataset-fold.
    """
    ok = results[(results["status"] == "ok") & np.isfinite(results[column].astype(float))]
    if ok.empty:
        return ok.copy()
    keys = ["method", "synthetic_scale", "mix_ratio", *FOLD_KEYS]
    numeric = [c for c in ok.columns if c not in keys and pd.api.types.is_numeric_dtype(ok[c])]
    merged = ok.groupby(keys, as_index=False, dropna=False)[numeric].mean()
    ascending = not HIGHER_IS_BETTER[PRIMARY_METRIC]
    ordered = merged.sort_values(
        [column, "synthetic_scale", "mix_ratio"], ascending=[ascending, True, True], kind="stable"
    )
    chosen = ordered.groupby(["method", *FOLD_KEYS], dropna=False, sort=False).head(1)
    return chosen.sort_values(["method", *FOLD_KEYS], ignore_index=True)
