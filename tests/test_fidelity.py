"""fidelity_report on cases with known answers."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from engine.fits.fidelity import fidelity_report, graph_summary


def gaussian_table(n: int = 600, d: int = 6, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, d)), columns=[f"f{i}" for i in range(d)])
    y = pd.Series(np.where(X["f0"] + X["f1"] > 0, "pos", "neg"), name="y")
    return X, y


def test_identical_data_is_indistinguishable():
    X, y = gaussian_table()
    r = fidelity_report(X, y, X.copy(), y.copy(), seed=0)
    assert r["two_sample_auc"] == pytest.approx(0.5, abs=0.05)
    assert r["wasserstein_max"] == pytest.approx(0.0, abs=1e-12)
    assert r["corr_distance"] == pytest.approx(0.0, abs=1e-12)
    assert r["missing_rate_diff_max"] == 0.0
    assert r["tstr_auc"] > 0.9 and r["trtr_auc"] > 0.9


def test_fresh_sample_of_same_distribution():
    X, y = gaussian_table(seed=0)
    Xs, ys = gaussian_table(seed=1)
    r = fidelity_report(X, y, Xs, ys, seed=0)
    assert 0.4 < r["two_sample_auc"] < 0.62
    assert r["wasserstein_mean"] < 0.15
    assert abs(r["tstr_gap"]) < 0.05


def test_shifted_data_is_detected():
    X, y = gaussian_table(seed=0)
    Xs, ys = gaussian_table(seed=1)
    r = fidelity_report(X, y, Xs + 2.0, ys, seed=0)
    assert r["two_sample_auc"] > 0.97
    assert r["wasserstein_mean"] == pytest.approx(2.0, abs=0.15)


def test_wrong_labels_hurt_tstr_only():
    X, y = gaussian_table(seed=0)
    Xs, ys = gaussian_table(seed=1)
    flipped = ys.map({"pos": "neg", "neg": "pos"})
    r = fidelity_report(X, y, Xs, flipped, seed=0)
    assert r["tstr_auc"] < 0.2 < 0.9 < r["trtr_auc"]
    assert r["two_sample_auc"] < 0.62  # features alone still look real


def test_correlation_distance_sees_broken_dependence():
    rng = np.random.default_rng(0)
    a = rng.normal(size=800)
    X = pd.DataFrame({"a": a, "b": a + 0.1 * rng.normal(size=800), "c": rng.normal(size=800)})
    y = pd.Series(rng.integers(0, 2, 800))
    shuffled = pd.DataFrame({c: rng.permutation(X[c].to_numpy()) for c in X.columns})
    r = fidelity_report(X, y, shuffled, y, seed=0)
    # |corr(a, b)| ~ 0.995 is lost, the other two pairs stay ~0: over 3 pairs
    assert r["corr_mean_abs_diff"] == pytest.approx(0.995 / 3, abs=0.05)
    assert r["corr_distance"] == pytest.approx(0.995 / 3, abs=0.05)
    assert r["wasserstein_max"] < 1e-12  # marginals are untouched


def test_categorical_total_variation_and_messy_columns():
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame(
        {
            "cat": pd.Series(rng.choice(["a", "b"], size=n), dtype="str"),
            "const": np.ones(n),
            "txt_nan": pd.Series(np.where(rng.random(n) < 0.2, None, "z"), dtype=object),
            "num_nan": np.where(rng.random(n) < 0.3, np.nan, rng.normal(size=n)),
            "int": rng.integers(0, 5, n),
        }
    )
    y = pd.Series(rng.integers(0, 3, n))
    Xs = X.copy()
    Xs["cat"] = "a"  # TV = share of "b" in the real column
    Xs["num_nan"] = np.nan
    r = fidelity_report(X, y, Xs, y, seed=0)
    assert r["tv_max"] == pytest.approx((X["cat"] == "b").mean(), abs=1e-12)
    assert r["missing_rate_diff_max"] == pytest.approx(1 - X["num_nan"].isna().mean())
    assert all(isinstance(v, float) for v in r.values())
    assert 0.0 <= r["two_sample_auc"] <= 1.0


def test_single_class_and_tiny_inputs_give_nan():
    X, _ = gaussian_table(n=50)
    y = pd.Series(["only"] * 50)
    r = fidelity_report(X, y, X.iloc[:20], y.iloc[:20], seed=0)
    assert math.isnan(r["tstr_auc"]) and math.isnan(r["trtr_auc"]) and math.isnan(r["tstr_gap"])
    assert not math.isnan(r["two_sample_auc"])
    r = fidelity_report(X, y, X.iloc[:1], y.iloc[:1], seed=0)
    assert math.isnan(r["two_sample_auc"]) and math.isnan(r["corr_distance"])


def test_synthetic_labels_missing_a_class():
    X, y = gaussian_table(seed=0)
    Xs, ys = gaussian_table(seed=1)
    keep = ys == "pos"
    r = fidelity_report(X, y, Xs[keep], ys[keep], seed=0)
    assert r["tstr_auc"] == pytest.approx(0.5)  # a constant predictor


def test_deterministic_for_seed():
    X, y = gaussian_table(seed=0)
    Xs, ys = gaussian_table(seed=1)
    a = fidelity_report(X, y, Xs + 0.3, ys, seed=5)
    b = fidelity_report(X, y, Xs + 0.3, ys, seed=5)
    assert a.keys() == b.keys()
    np.testing.assert_array_equal(list(a.values()), list(b.values()))  # NaN == NaN here


def test_graph_summary():
    class WithGraph:
        graph_ = nx.DiGraph([("a", "b"), ("b", "c"), ("a", "c")])
        edge_probabilities_ = pd.DataFrame(
            [[0.0, 0.95, 0.3], [0.05, 0.0, 0.6], [0.5, 0.1, 0.0]],
            index=list("abc"),
            columns=list("abc"),
        )

    s = graph_summary(WithGraph())
    # orientations: a->b 0.95, b->c 0.6/0.7, a->c 0.3/0.8
    assert s["graph_edges"] == 3.0
    assert s["graph_oriented_share"] == pytest.approx(2 / 3)
    assert s["graph_confident_share"] == pytest.approx(1 / 3)
    X, y = gaussian_table(n=100)
    r = fidelity_report(X, y, X, y, seed=0, generator=WithGraph())
    assert r["graph_edges"] == 3.0
    assert graph_summary(object()) == {}


def test_report_on_a_table_with_missing_values():
    """1,000 x 20 with missing values: every metric is computed (its speed is a benchmark's
    business, not a test's)."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(1000, 20)), columns=[f"f{i}" for i in range(20)])
    X["f3"] = np.where(rng.random(1000) < 0.1, np.nan, X["f3"])
    y = pd.Series(rng.integers(0, 3, 1000))
    Xs = X + rng.normal(scale=0.3, size=X.shape)
    out = fidelity_report(X, y, Xs, y, seed=0)
    assert 0.0 <= out["two_sample_auc"] <= 1.0 and np.isfinite(out["two_sample_auc"])
