"""Choosing one configuration per method and dataset-fold by validation score."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from engine.report.load import FOLD_KEYS
from engine.report.scores import PRIMARY_METRIC
from engine.storage.results_schema import HIGHER_IS_BETTER

SELECTION_COLUMN = f"val_{PRIMARY_METRIC}"
POINT = "_point"  # grouping helper: '' for grid rows, one value per search trial


def select_by_validation(results: pd.DataFrame, column: str = SELECTION_COLUMN,
                         by: Sequence[str] = ()) -> pd.DataFrame:
    """Per method and dataset-fold (and ``by`` columns), the finished trial with the best
    validation score.

    Ties are broken towards the smaller synthetic scale, then the smaller mix ratio, then the
    earlier search trial. Methods with a single configuration (``finetune``) keep it. Repeats
    of the same grid point from merged sweeps are averaged first; each trial of a search
    (``search`` set) is its own configuration, never averaged with another. Returns one row
    per method x dataset-fold x ``by``: the keys, ``by`` and the numeric columns.
    """
    ok = results[(results["status"] == "ok") & np.isfinite(results[column].astype(float))]
    if ok.empty:
        return ok.copy()
    ok = ok.assign(**{POINT: _points(ok)})
    keys = ["method", "synthetic_scale", "mix_ratio", *FOLD_KEYS, *by, POINT]
    numeric = [c for c in ok.columns if c not in keys and pd.api.types.is_numeric_dtype(ok[c])
               and not pd.api.types.is_bool_dtype(ok[c])]  # flags are not averaged
    merged = ok.groupby(keys, as_index=False, dropna=False)[numeric].mean()
    ascending = not HIGHER_IS_BETTER.get(column.removeprefix("val_"), True)
    order = [column, "synthetic_scale", "mix_ratio"]
    if "search_number" in merged.columns:
        order.append("search_number")
    ordered = merged.sort_values(
        order, ascending=[ascending] + [True] * (len(order) - 1), kind="stable"
    )
    chosen = ordered.groupby(["method", *FOLD_KEYS, *by], dropna=False, sort=False).head(1)
    return chosen.drop(columns=POINT).sort_values(["method", *FOLD_KEYS, *by],
                                                  ignore_index=True)


def _points(rows: pd.DataFrame) -> pd.Series:
    """'' for grid rows (repeats of a grid point merge); sweep and trial id for search rows."""
    if "search" not in rows.columns:
        return pd.Series("", index=rows.index)
    searched = rows["search"].fillna("").astype(str) != ""
    ident = rows.get("source", pd.Series("", index=rows.index)).astype(str) + "|" \
        + rows["trial_id"].astype(str)
    return ident.where(searched, "")
