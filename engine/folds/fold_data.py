"""Materialise one dataset-fold on any worker: raw rows of train, validation and test."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from engine.core.errors import DataError
from engine.data import Dataset, load_dataset
from engine.folds.splits import FoldSplit, make_fold
from engine.plan.sweep_plan import FoldRef


@dataclass
class FoldData:
    """Raw rows of one fold; labels also as integer codes over the dataset's classes."""

    dataset: Dataset
    split: FoldSplit

    @property
    def classes(self) -> np.ndarray:
        return self.dataset.classes

    @property
    def n_classes(self) -> int:
        return len(self.dataset.classes)

    def rows(self, part: str) -> tuple[pd.DataFrame, pd.Series]:
        """Raw features and labels of 'train', 'val' or 'test'; the index is the row position."""
        idx = getattr(self.split, part)
        return self.dataset.X.iloc[idx], self.dataset.y.iloc[idx]

    def codes(self, labels: pd.Series | np.ndarray) -> np.ndarray:
        """Integer codes over the dataset's classes (see ``Dataset.codes_of``)."""
        return self.dataset.codes_of(labels)


@lru_cache(maxsize=8)
def _cached_dataset(name: str, path: str | None, target: str | None,
                    data_dir: str | None) -> Dataset:
    return load_dataset(name, path=path, target=target, data_dir=data_dir)


def load_fold(ref: FoldRef) -> FoldData:
    """The fold's rows under the sweep's split protocol: 'kfold' (seeded stratified outer folds)
    or 'tabarena' (the OpenML task's repeat/fold indices, see ``engine.folds.tabarena_split``)."""
    ds = _cached_dataset(ref.dataset["name"], ref.dataset.get("path"), ref.dataset.get("target"),
                         ref.data_dir)
    if ref.split == "tabarena":
        from engine.data.tabarena import load_task_splits
        from engine.data.tabarena_meta import get_task
        from engine.folds.tabarena_split import tabarena_fold

        task = get_task(ref.dataset["name"])
        split = tabarena_fold(ds, task, load_task_splits(task, ref.data_dir), ref.fold, ref.seed,
                              ref.n_train, ref.val_fraction, ref.max_test_rows)
    elif ref.split == "kfold":
        split = make_fold(ds.label_codes(), ref.fold, ref.outer_folds, ref.seed, ref.n_train,
                          ref.val_fraction, ref.max_test_rows, dataset=ds.name)
    else:
        raise DataError(f"{ds.name}: unknown split protocol {ref.split!r} (kfold, tabarena)")
    return FoldData(dataset=ds, split=split)
