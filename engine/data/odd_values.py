"""Values no model or generator can use, refused in one line naming the column."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.core.errors import DataError

MAX_ABS_VALUE = 1e30
"""Larger magnitudes overflow float32 models and squared sums; rescale such columns first."""

_NESTED = (list, tuple, dict, set, np.ndarray)


def check_values(name: str, X: pd.DataFrame, y: pd.Series) -> None:
    """Refuse nested (list/struct) cells anywhere, and infinite or huge numbers in features."""
    for col in [*X.columns, None]:
        series = y if col is None else X[col]
        where = "the target" if col is None else f"column '{col}'"
        if series.dtype == object:
            nested = series.map(lambda v: isinstance(v, _NESTED))
            if nested.any():
                raise DataError(f"{name}: {where} holds lists or mappings (e.g. row "
                                f"{int(np.flatnonzero(nested.to_numpy())[0])}); flatten it into "
                                "scalar columns")
        elif col is not None and pd.api.types.is_numeric_dtype(series) \
                and not pd.api.types.is_bool_dtype(series):
            _check_magnitude(name, where, series)


def _check_magnitude(name: str, where: str, series: pd.Series) -> None:
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isinf(values).any():
        raise DataError(f"{name}: {where} holds infinite values; replace them with missing "
                        "values or finite numbers")
    finite = values[~np.isnan(values)]
    if finite.size and np.abs(finite).max() > MAX_ABS_VALUE:
        raise DataError(f"{name}: {where} holds values too large to scale (|x| up to "
                        f"{np.abs(finite).max():.3g}, limit {MAX_ABS_VALUE:.0e}); rescale it")
