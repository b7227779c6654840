"""Materialise one dataset-fold on any worker: raw rows of train, validation and test (and,
under a shift, of the out-of-domain test rows)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from engine.core.errors import DataError
from engine.data import Dataset, load_dataset
from engine.folds.splits import FoldSplit, derive_seed, make_fold, stratified_take
from engine.plan.sweep_plan import FoldRef


@dataclass
class FoldData:
    """Raw rows of one fold; labels also as integer codes over the dataset's classes."""

    dataset: Dataset
    split: FoldSplit
    shift: Any = None  # engine.folds.shift.ShiftPools under a shift
    drop: tuple[str, ...] = ()  # columns that are not features (shift.drop_column)

    @property
    def classes(self) -> np.ndarray:
        return self.dataset.classes

    @property
    def n_classes(self) -> int:
        return len(self.dataset.classes)

    def rows(self, part: str) -> tuple[pd.DataFrame, pd.Series]:
        """Raw features and labels of 'train', 'val', 'test' or 'ood_test'; the index is the
        row position."""
        idx = getattr(self.split, part)
        X = self.dataset.X.iloc[idx]
        return (X.drop(columns=list(self.drop)) if self.drop else X), self.dataset.y.iloc[idx]

    def codes(self, labels: pd.Series | np.ndarray) -> np.ndarray:
        """Integer codes over the dataset's classes (see ``Dataset.codes_of``)."""
        return self.dataset.codes_of(labels)


@lru_cache(maxsize=8)
def _cached_dataset(name: str, path: str | None, target: str | None,
                    data_dir: str | None) -> Dataset:
    return load_dataset(name, path=path, target=target, data_dir=data_dir)


def load_fold(ref: FoldRef) -> FoldData:
    """The fold's rows under the sweep's split protocol: 'kfold' (seeded stratified outer folds)
    or 'tabarena' (the OpenML task's repeat/fold indices, see ``engine.folds.tabarena_split``);
    under a shift, from the in-domain pool, with out-of-domain test rows beside them."""
    ds = _cached_dataset(ref.dataset["name"], ref.dataset.get("path"), ref.dataset.get("target"),
                         ref.data_dir)
    if ref.shift is None:
        return FoldData(dataset=ds, split=_split(ref, ds))
    return _shifted_fold(ref, ds)


def _split(ref: FoldRef, ds: Dataset, in_domain: np.ndarray | None = None) -> FoldSplit:
    if ref.split == "tabarena":
        from engine.data.tabarena import load_task_splits
        from engine.data.tabarena_meta import get_task
        from engine.folds.tabarena_split import tabarena_fold

        task = get_task(ref.dataset["name"])
        return tabarena_fold(ds, task, load_task_splits(task, ref.data_dir), ref.fold, ref.seed,
                             ref.n_train, ref.val_fraction, ref.max_test_rows,
                             ref.minority_share, in_domain)
    if ref.split == "kfold":
        return make_fold(ds.label_codes(), ref.fold, ref.outer_folds, ref.seed, ref.n_train,
                         ref.val_fraction, ref.max_test_rows, dataset=ds.name,
                         minority_share=ref.minority_share, in_domain=in_domain)
    raise DataError(f"{ds.name}: unknown split protocol {ref.split!r} (kfold, tabarena)")


_POOLS: dict[tuple, Any] = {}


def _shifted_fold(ref: FoldRef, ds: Dataset) -> FoldData:
    """ID rows (train, validation, ID test) and OOD test rows, capped at ``max_test_rows``."""
    from engine.folds.shift import shift_pools

    shift, y = ref.shift, ds.label_codes()
    key = (ref.dataset["name"], ref.dataset.get("path"), ref.dataset.get("target"),
           ref.data_dir, ref.split, ref.outer_folds, ref.n_train, ref.val_fraction,
           ref.max_test_rows, ref.seed, ref.fold, ref.minority_share, shift)
    if key not in _POOLS:  # k-means on a large table is seconds: once per worker and fold
        auto = shift.kind == "feature" and shift.column is None
        train_rows = _split(ref, ds).train if auto else None  # decides column: auto
        if len(_POOLS) >= 64:
            _POOLS.clear()
        _POOLS[key] = shift_pools(ds.X, y, shift, ref.fold, ref.seed,
                                  f"{ds.name} fold {ref.fold}", train_rows)
    pools = _POOLS[key]
    split = _split(ref, ds, pools.in_domain)
    rng = np.random.default_rng(derive_seed("ood", ref.seed, ref.fold))
    ood = np.sort(stratified_take(y, np.flatnonzero(pools.ood), ref.max_test_rows, rng))
    drop = (pools.column,) if getattr(shift, "drop_column", False) and pools.column else ()
    return FoldData(dataset=ds, split=replace(split, ood_test=ood), shift=pools, drop=drop)
