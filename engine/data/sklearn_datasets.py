"""Classification datasets bundled with scikit-learn (offline)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from sklearn import datasets as skd

from engine.data.registry import Dataset, register_dataset


def _from_bunch(name: str, loader: Callable) -> Dataset:
    bunch = loader(as_frame=True)
    X = bunch.data.copy()
    y = pd.Series(bunch.target.to_numpy(), name="target")
    return Dataset(name=name, X=X, y=y)


@register_dataset("sklearn/breast_cancer")
def breast_cancer() -> Dataset:
    """569 rows, 30 numeric features, 2 classes."""
    return _from_bunch("sklearn/breast_cancer", skd.load_breast_cancer)


@register_dataset("sklearn/wine")
def wine() -> Dataset:
    """178 rows, 13 numeric features, 3 classes."""
    return _from_bunch("sklearn/wine", skd.load_wine)


@register_dataset("sklearn/iris")
def iris() -> Dataset:
    """150 rows, 4 numeric features, 3 classes."""
    return _from_bunch("sklearn/iris", skd.load_iris)


@register_dataset("sklearn/digits")
def digits() -> Dataset:
    """1,797 rows, 64 pixel features, 10 classes."""
    return _from_bunch("sklearn/digits", skd.load_digits)
