"""Dataset registry: named loaders returning a ``Dataset`` (features, labels, provenance)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from engine.core.errors import DataError
from engine.core.registry import Registry


@dataclass
class Dataset:
    """A classification table: raw features and labels as loaded (strings and NaN allowed)."""

    name: str
    X: pd.DataFrame
    y: pd.Series

    def __post_init__(self) -> None:
        if len(self.X) != len(self.y):
            raise DataError(f"{self.name}: {len(self.X)} feature rows but {len(self.y)} labels")
        from engine.data.odd_values import check_values

        check_values(self.name, self.X, self.y)
        keep = self.y.notna().to_numpy()
        if not keep.all():
            self.X = self.X.loc[keep]
            self.y = self.y.loc[keep]
        self.X = self.X.reset_index(drop=True)
        self.y = self.y.reset_index(drop=True)
        self.X.columns = [str(c) for c in self.X.columns]
        if len(set(self.X.columns)) != self.X.shape[1]:
            raise DataError(f"{self.name}: duplicate column names")
        if self.X.shape[1] == 0:
            raise DataError(f"{self.name}: no feature columns")
        if self.n_classes < 2:
            raise DataError(f"{self.name}: the target has {self.n_classes} class(es); need >= 2")

    @cached_property
    def classes(self) -> np.ndarray:
        """Sorted class labels (label codes are positions in this array)."""
        vals = pd.unique(self.y)
        try:
            return np.array(sorted(vals))
        except TypeError:
            return np.array(sorted(vals, key=str), dtype=object)

    @property
    def n_classes(self) -> int:
        return int(self.y.nunique())

    def label_codes(self) -> np.ndarray:
        """Integer codes 0..K-1 of the labels (sorted order)."""
        return self.codes_of(self.y)

    def codes_of(self, labels: pd.Series | np.ndarray) -> np.ndarray:
        """Integer codes of any labels (e.g. synthetic ones); unknown labels are refused."""
        lookup = {v: i for i, v in enumerate(self.classes.tolist())}
        values = np.asarray(labels).tolist()
        unknown = {v for v in values if v not in lookup}
        if unknown:
            shown = sorted(map(str, unknown))[:3]
            raise DataError(f"{self.name}: labels {shown} are not classes of the dataset")
        return np.array([lookup[v] for v in values], dtype=np.int64)


DatasetLoader = Callable[[], Dataset]
DATASETS: Registry[DatasetLoader] = Registry("dataset")


def register_dataset(name: str) -> Callable[[DatasetLoader], DatasetLoader]:
    """Register a zero-argument loader under ``name`` (e.g. ``sklearn/breast_cancer``)."""
    return DATASETS.register(name)
