"""Shift pools on their own (``engine.folds.shift``): which rows are in-domain and which OOD."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.folds.shift import (
    AUTO_OOD_SHARE,
    ShiftError,
    auto_domains,
    cluster_ids,
    shift_pools,
)
from engine.spec.shift_spec import ShiftSpec


def _table(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east", "west"], size=n, p=[0.5, 0.3, 0.12, 0.08])
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    y = (x + 0.3 * rng.normal(size=n) > 0).astype(int)
    return pd.DataFrame({"region": region, "x": x, "z": z}), y


def test_domain_pools_hold_out_the_named_values():
    X, y = _table()
    pools = shift_pools(X, y, ShiftSpec("domain", column="region", ood=("east",)), 0, 0, "t")
    assert (pools.ood == (X["region"] == "east").to_numpy()).all()
    assert not (pools.ood & pools.in_domain).any()
    assert pools.ood_values == ("east",)


def test_auto_domains_are_the_smallest_reaching_the_share():
    X, _ = _table()
    chosen = auto_domains(X["region"])
    counts = X["region"].value_counts()
    assert chosen == ("east", "west")  # 8 % + 12 % >= 20 %, the two smallest
    assert counts[list(chosen)].sum() >= AUTO_OOD_SHARE * len(X)
    assert "north" not in chosen


def test_binned_numeric_domain():
    X, y = _table()
    pools = shift_pools(X, y, ShiftSpec("domain", column="x", ood=("3",), bins=4), 0, 0, "t")
    assert pools.ood.sum() == pytest.approx(len(X) / 4, abs=2)
    assert X["x"][pools.ood].min() >= X["x"][pools.in_domain].max()


def test_feature_pools_split_at_the_quantile():
    X, y = _table()
    up = shift_pools(X, y, ShiftSpec("feature", column="z", quantile=0.75), 0, 0, "t")
    cut = X["z"].quantile(0.75)
    assert (up.ood == (X["z"] > cut).to_numpy()).all()
    low = shift_pools(X, y, ShiftSpec("feature", column="z", quantile=0.25, side="lower"),
                      0, 0, "t")
    assert (low.ood == (X["z"] < X["z"].quantile(0.25)).to_numpy()).all()


def test_feature_auto_takes_the_most_informative_feature_on_the_given_rows():
    X, y = _table()
    pools = shift_pools(X, y, ShiftSpec("feature", quantile=0.8), 0, 0, "t",
                        train_rows=np.arange(200))
    assert pools.column == "x"  # y is a function of x


def test_clusters_are_deterministic_and_each_fold_holds_out_one():
    X, y = _table()
    a, b = cluster_ids(X, 3, seed=7), cluster_ids(X, 3, seed=7)
    assert (a == b).all() and set(a) == {0, 1, 2}
    sizes = np.bincount(a)
    assert list(sizes) == sorted(sizes, reverse=True)  # numbered by size
    for fold in range(4):
        pools = shift_pools(X, y, ShiftSpec("cluster", clusters=3), fold, 7, "t")
        assert (pools.ood == (a == fold % 3)).all()


@pytest.mark.parametrize("shift,field", [
    (ShiftSpec("domain", column="nope", ood=("a",)), "shift.column"),
    (ShiftSpec("domain", column="region", ood=("south-west",)), "shift.ood"),
    (ShiftSpec("domain", column="region", ood=("west",)), "shift.ood"),  # 8 % of 120 < 20
    (ShiftSpec("feature", column="region"), "shift.column"),
    (ShiftSpec("feature", column="z", quantile=0.95), "shift.quantile"),
])
def test_shifts_the_table_cannot_give_name_their_field(shift, field):
    X, y = _table(n=120)
    with pytest.raises(ShiftError) as err:
        shift_pools(X, y, shift, 0, 0, "t")
    assert err.value.field == field
    assert "\n" not in str(err.value)
