"""``openml/<data id>``: any OpenML dataset by id (network once; cached by scikit-learn).

Downloads go to scikit-learn's data home (``SCIKIT_LEARN_DATA``). With a mirror directory set
(``data_dir`` / ``$CAUSALMIX_DATA``) the network is never used: the table is read from
``openml-<id>.parquet`` or ``openml-<id>.csv`` there, target last. TabArena tasks by name
(``tabarena/<name>``) live in ``engine/data/tabarena.py``.
"""

from __future__ import annotations

import os

import pandas as pd

from engine.core.errors import DataError
from engine.data.registry import Dataset


def load_openml(data_id: int, name: str | None = None,
                data_dir: str | os.PathLike | None = None) -> Dataset:
    """Fetch an OpenML dataset (its default target) as a ``Dataset``, or read it from a mirror."""
    label = name or f"openml/{data_id}"
    from engine.data.tabarena import find_table, mirror_dir, read_frame

    mirror = mirror_dir(data_dir)
    if mirror is not None:
        path = find_table(mirror, f"openml-{data_id}")
        if path is None:
            raise DataError(f"{label}: the mirror {mirror} has no openml-{data_id}.parquet or "
                            f"openml-{data_id}.csv (target as the last column)")
        frame = read_frame(path)
        if frame.shape[1] < 2:
            raise DataError(f"{label}: {path} needs feature columns and a target (last)")
        return Dataset(name=label, X=frame.iloc[:, :-1], y=frame.iloc[:, -1].rename("target"))
    from sklearn.datasets import fetch_openml

    try:
        bunch = fetch_openml(data_id=data_id, as_frame=True, parser="auto")
    except Exception as exc:  # noqa: BLE001 - network/cache failures become one line
        raise DataError(f"{label}: cannot fetch OpenML data id {data_id} "
                        f"({type(exc).__name__}; offline? use a local file or a mirror "
                        "directory instead)") from None
    if bunch.target is None or isinstance(bunch.target, pd.DataFrame):
        raise DataError(f"{label}: OpenML data id {data_id} has no single default target")
    return Dataset(name=label, X=bunch.data, y=bunch.target.rename("target"))
