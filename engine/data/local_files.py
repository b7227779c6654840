"""Local CSV / Parquet tables with a named target column."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from engine.core.errors import DataError
from engine.data.registry import Dataset


def load_local(name: str, path: str | Path, target: str) -> Dataset:
    """Read a CSV or Parquet file; ``target`` names the label column."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{name}: no such file {p}")
    try:
        if p.suffix.lower() in {".parquet", ".pq"}:
            df = pd.read_parquet(p)
        else:
            df = pd.read_csv(p, low_memory=False)
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes one line
        raise DataError(f"{name}: cannot read {p.name}: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    if target not in df.columns:
        cols = ", ".join(map(str, list(df.columns)[:8]))
        raise DataError(f"{name}: {p.name} has no target column '{target}' (columns: {cols}"
                        f"{', ...' if df.shape[1] > 8 else ''})")
    y = df[target]
    X = df.drop(columns=[target])
    return Dataset(name=name, X=X, y=y.rename("target"))
