"""Datasets, fold plans and preprocessing on real data, including odd tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.core.errors import CausalMixError, DataError
from engine.data import load_dataset
from engine.data.local_files import load_local
from engine.data.preprocess import TablePreprocessor
from engine.folds.splits import make_fold


def test_folds_are_disjoint_stratified_and_deterministic():
    ds = load_dataset("sklearn/breast_cancer")
    y = ds.label_codes()
    a = make_fold(y, 1, 5, 7, 128, 0.25, 2000)
    b = make_fold(y, 1, 5, 7, 128, 0.25, 2000)
    assert all(np.array_equal(getattr(a, p), getattr(b, p)) for p in ("train", "val", "test"))
    assert len(a.train) + len(a.val) == 128 and len(a.val) == 32
    parts = [set(a.train), set(a.val), set(a.test)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    share = np.bincount(y) / len(y)
    assert np.allclose(np.bincount(y[a.train]) / len(a.train), share, atol=0.05)
    tests = [set(make_fold(y, k, 5, 7, 128, 0.25, 2000).test) for k in range(5)]
    assert sum(len(t) for t in tests) == len(y)  # the outer folds partition the rows
    c = make_fold(y, 1, 5, 8, 128, 0.25, 2000)
    assert not np.array_equal(a.train, c.train)


def test_preprocessing_is_fitted_on_training_rows_only():
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "s": ["x", "y", "x", None]})
    p = TablePreprocessor().fit(X.iloc[:2])
    Z = p.transform(pd.DataFrame({"a": [100.0, np.nan], "s": ["z", "y"]}))
    assert Z.shape == (2, 2) and np.isfinite(Z).all()
    assert Z[0, 0] == pytest.approx(10.0)  # clipped: 100 is far outside the training range
    assert Z[1, 0] == pytest.approx(0.0)  # missing -> training median (0.5) -> standardised 0


def test_odd_table_is_handled(tmp_path):
    rng = np.random.default_rng(0)
    n = 120
    df = pd.DataFrame({
        "num": rng.normal(size=n),
        "const": 3.0,
        "text": rng.choice(["red", "green", "blue"], size=n),
        "gappy": np.where(rng.random(n) < 0.3, np.nan, rng.normal(size=n)),
        "label": rng.choice(["yes", "no"], size=n),
    })
    path = tmp_path / "odd.csv"
    df.to_csv(path, index=False)
    ds = load_local("odd", path, "label")
    y = ds.label_codes()
    split = make_fold(y, 0, 4, 0, 64, 0.25, 100)
    Z = TablePreprocessor().fit(ds.X.iloc[split.train]).transform(ds.X.iloc[split.test])
    assert Z.shape == (len(split.test), 4) and np.isfinite(Z).all()
    assert np.all(Z[:, 1] == 0)  # the constant column carries no signal


def test_wide_table_is_reduced_when_asked():
    ds = load_dataset("sklearn/digits")
    y = ds.label_codes()
    p = TablePreprocessor(max_features=20).fit(ds.X.iloc[:300], y[:300])
    assert p.transform(ds.X.iloc[300:310]).shape == (10, 20)


def test_single_class_data_is_refused(tmp_path):
    path = tmp_path / "one.csv"
    pd.DataFrame({"a": [1, 2, 3], "t": ["k", "k", "k"]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="class"):
        load_local("one", path, "t")


def test_unknown_dataset_is_one_line():
    with pytest.raises(CausalMixError, match="unknown dataset"):
        load_dataset("sklearn/unicorns")


def test_preprocessing_marks_category_columns():
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "s": ["x", "y", "x", None],
                      "b": [True, False, True, True], "n": ["1", "2", "3", "4"],
                      "c": pd.Categorical([3, 1, 3, 2])})
    p = TablePreprocessor().fit(X)
    assert p.categorical_.tolist() == [False, True, True, False, True]
    assert p.transform(X)[:, 4].tolist() == pytest.approx(
        ((np.array([3, 1, 3, 2]) - 2.25) / np.std([3, 1, 3, 2])).tolist())
