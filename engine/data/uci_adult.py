"""``uci/adult``: UCI Adult (census income, 48,842 rows, 14 features, ``income`` ``<=50K`` /
``>50K``, about 24 % minority), an imbalanced benchmark beyond TabArena.

With a mirror directory (``data_dir`` / ``$CAUSALMIX_DATA``) the table is read from
``adult.parquet`` or ``adult.csv`` there (target column ``income``) and the network is never
used; otherwise it is OpenML data id 1590, downloaded once through ``openml/<id>``'s path.
"""

from __future__ import annotations

import os

import pandas as pd

from engine.core.errors import DataError
from engine.data.registry import Dataset, register_dataset

NAME = "uci/adult"
OPENML_DATA_ID = 1590
MIRROR_STEM = "adult"  # adult.parquet | adult.csv in the mirror
TARGET = "income"


def _labels(y: pd.Series) -> pd.Series:
    """``<=50K`` / ``>50K`` whatever the source's spacing or adult.test's trailing dot."""
    return y.astype("string").str.strip().str.rstrip(".").astype(object).rename("target")


@register_dataset(NAME)
def adult(data_dir: str | os.PathLike | None = None) -> Dataset:
    """UCI Adult from the mirror, else OpenML (data id 1590)."""
    from engine.data.tabarena import find_table, mirror_dir, read_frame

    mirror = mirror_dir(data_dir)
    if mirror is None:
        from engine.data.openml_datasets import load_openml

        ds = load_openml(OPENML_DATA_ID, name=NAME)
        return Dataset(name=NAME, X=ds.X, y=_labels(ds.y))
    path = find_table(mirror, MIRROR_STEM)
    if path is None:
        raise DataError(f"{NAME}: the mirror {mirror} has no {MIRROR_STEM}.parquet or "
                        f"{MIRROR_STEM}.csv (target column '{TARGET}')")
    frame = read_frame(path)
    if TARGET not in frame.columns:
        raise DataError(f"{NAME}: {path} has no target column '{TARGET}'")
    return Dataset(name=NAME, X=frame.drop(columns=[TARGET]), y=_labels(frame[TARGET]))


adult.mirror_stem = MIRROR_STEM  # type: ignore[attr-defined]  # read by load_dataset, cache keys
