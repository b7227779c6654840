"""The ``scm`` generator: schema, determinism, pickling, degenerate folds and fidelity."""

from __future__ import annotations

import pickle

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from engine.core.errors import CausalMixError
from engine.generators import generator_names, make_generator
from tests.test_causal_discovery import TRUE_EDGES, linear_gaussian, skeleton_f1

FAST = {"n_dags": 2, "regressor": "linear", "classifier": "logistic"}


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    data = load_breast_cancer(as_frame=True)
    X = data.data.iloc[:200, :8].reset_index(drop=True)
    return X, data.target.iloc[:200].rename("malignant").reset_index(drop=True)


def mixed_table(n: int = 240, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    y = rng.choice(["a", "b", "rare"], size=n, p=[0.55, 0.43, 0.02])
    y[:3] = "rare"
    shift = (y == "b") * 1.5
    num = rng.normal(size=n) + shift
    num[rng.random(n) < 0.2] = np.nan
    city = rng.choice(["oslo", "rome", "lima", "kiev", "pisa", "bern"], size=n,
                      p=[0.4, 0.3, 0.2, 0.06, 0.03, 0.01]).astype(object)
    city[rng.random(n) < 0.1] = np.nan
    X = pd.DataFrame({
        "num": num,
        "level": rng.integers(1, 4, size=n) + (y == "b"),
        "count": rng.integers(0, 500, size=n),
        "city": pd.Series(city, dtype="str"),
        "kind": pd.Categorical(rng.choice(["x", "y"], size=n)),
        "flag": rng.random(n) < 0.3 + 0.4 * (y == "b"),
        "const": np.full(n, 7.0),
        "wide": rng.normal(size=n) * 100 - 40 * shift,
    })
    return X, pd.Series(y, name="label")


def check_schema(X: pd.DataFrame, y: pd.Series, Xs: pd.DataFrame, ys: pd.Series, n: int):
    assert list(Xs.columns) == list(X.columns)
    assert len(Xs) == len(ys) == n
    for c in X.columns:
        assert Xs[c].dtype == X[c].dtype, c
    assert ys.name == y.name and ys.dtype == y.dtype
    assert set(ys.unique()) <= set(y.unique())


# ---------------------------------------------------------------- schema
def test_registered():
    assert "scm" in generator_names()


def test_breast_cancer_schema_and_attributes(cancer):
    X, y = cancer
    gen = make_generator("scm", **FAST).fit(X, y)
    Xs, ys = gen.sample(150, seed=0)
    check_schema(X, y, Xs, ys, 150)
    assert not Xs.isna().any().any()
    assert set(ys.unique()) == {0, 1}
    for c in X.columns:  # quantile decoding stays inside the observed range
        assert X[c].min() <= Xs[c].min() and Xs[c].max() <= X[c].max()
    names = [*X.columns, "malignant"]
    assert isinstance(gen.graph_, nx.DiGraph) and nx.is_directed_acyclic_graph(gen.graph_)
    assert set(gen.graph_.nodes) == set(names)
    assert list(gen.edge_probabilities_.index) == names
    assert list(gen.edge_probabilities_.columns) == names
    assert len(gen.dags_) == 2 and all(set(d.nodes) <= set(names) for d in gen.dags_)
    assert gen.discovery_seconds_ > 0 and gen.fit_seconds_ > 0
    assert gen.graph_.number_of_edges() > 0


def test_mixed_table_schema_missing_constant_rare():
    X, y = mixed_table()
    gen = make_generator("scm", n_dags=3, seed=1).fit(X, y)
    Xs, ys = gen.sample(2000, seed=5)
    check_schema(X, y, Xs, ys, 2000)
    assert (Xs["const"] == 7.0).all()
    assert set(Xs["level"].unique()) <= set(X["level"].unique())
    assert set(Xs["city"].dropna()) <= set(X["city"].dropna())
    assert {"kiev", "pisa"} <= set(Xs["city"].dropna())  # pooled rare levels come back
    assert set(Xs["kind"].dropna()) <= {"x", "y"} and Xs["flag"].dtype == bool
    assert Xs["count"].between(X["count"].min(), X["count"].max()).all()
    # missingness re-injected at about the observed rate, only where it was observed
    assert abs(Xs["num"].isna().mean() - X["num"].isna().mean()) < 0.04
    assert abs(Xs["city"].isna().mean() - X["city"].isna().mean()) < 0.04
    assert not Xs.drop(columns=["num", "city"]).isna().any().any()
    assert "rare" in set(ys)
    assert "const" in gen.graph_.nodes and gen.graph_.degree("const") == 0


def test_no_missing_reinjection_and_standard_transform():
    X, y = mixed_table(n=150)
    gen = make_generator("scm", reinject_missing=False, numeric_transform="standard",
                         **FAST).fit(X, y)
    Xs, ys = gen.sample(300, seed=0)
    check_schema(X, y, Xs, ys, 300)
    assert not Xs.isna().any().any()


def test_single_class_fold(cancer):
    X, _ = cancer
    y = pd.Series(np.ones(len(X), dtype=np.int64), name="malignant")
    gen = make_generator("scm", **FAST).fit(X, y)
    Xs, ys = gen.sample(40, seed=0)
    check_schema(X, y, Xs, ys, 40)
    assert (ys == 1).all()


def test_label_missing_rows_dropped_and_tiny_samples(cancer):
    X, y = cancer
    y = y.astype(float)
    y.iloc[:5] = np.nan
    gen = make_generator("scm", **FAST).fit(X, y)
    for n in (1, 2, 3):
        Xs, ys = gen.sample(n, seed=0)
        assert len(Xs) == len(ys) == n and ys.notna().all()
    Xe, ye = gen.sample(0, seed=0)
    assert len(Xe) == len(ye) == 0


def test_all_columns_constant():
    X = pd.DataFrame({"a": np.zeros(20), "b": ["s"] * 20})
    y = pd.Series([0, 1] * 10, name="t")
    Xs, ys = make_generator("scm", **FAST).fit(X, y).sample(30, seed=2)
    assert (Xs["a"] == 0).all() and (Xs["b"] == "s").all() and set(ys) <= {0, 1}


# ---------------------------------------------------------------- determinism, pickling
def test_determinism_and_pickle(cancer):
    X, y = cancer
    gen = make_generator("scm", **FAST).fit(X, y)
    a = gen.sample(120, seed=3)
    b = gen.sample(120, seed=3)
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_series_equal(a[1], b[1])
    c = gen.sample(120, seed=4)
    assert not a[0].equals(c[0])
    clone = pickle.loads(pickle.dumps(gen))
    d = clone.sample(120, seed=3)
    pd.testing.assert_frame_equal(a[0], d[0])
    pd.testing.assert_series_equal(a[1], d[1])
    refit = make_generator("scm", **FAST).fit(X, y).sample(120, seed=3)
    pd.testing.assert_frame_equal(a[0], refit[0])
    # sampling leaves numpy's global random state alone
    np.random.seed(0)
    before = np.random.random()
    np.random.seed(0)
    gen.sample(10, seed=1)
    assert np.random.random() == before


def test_bad_parameters():
    for bad in ({"regressor": "svm"}, {"classifier": "knn"}, {"algorithms": ["ges"]},
                {"alpha": 0.0}, {"n_dags": 0}, {"indep_test": "pearson"},
                {"numeric_transform": "log"}, {"bootstrap": -1}):
        with pytest.raises(CausalMixError):
            make_generator("scm", **bad)


# ---------------------------------------------------------------- structure and fidelity
def lg_table(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """The known 10-node linear-Gaussian DAG; its sink (node 9) is thresholded into the label."""
    x = linear_gaussian(n, seed=seed)
    X = pd.DataFrame(x[:, :9], columns=[f"v{j}" for j in range(9)])
    y = pd.Series((x[:, 9] > np.median(x[:, 9])).astype(np.int64), name="target")
    return X, y


def two_sample_auc(real: pd.DataFrame, syn: pd.DataFrame, seed: int = 0) -> float:
    """AUC of a classifier telling real from synthetic rows, on held-out halves."""
    data = pd.concat([real, syn], ignore_index=True)
    label = np.r_[np.zeros(len(real)), np.ones(len(syn))]
    rng = np.random.default_rng(seed)
    test = rng.random(len(data)) < 0.5
    clf = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    clf.fit(data[~test], label[~test])
    return roc_auc_score(label[test], clf.predict_proba(data[test])[:, 1])


def _check_structure_and_fidelity(n: int, regressor: str, classifier: str) -> None:
    X, y = lg_table(2 * n, seed=0)
    train_X, train_y = X.iloc[:n], y.iloc[:n]
    gen = make_generator("scm", regressor=regressor, classifier=classifier).fit(train_X, train_y)
    names = {f"v{j}": j for j in range(9)} | {"target": 9}
    graph = nx.relabel_nodes(gen.graph_, names)
    assert skeleton_f1(graph, TRUE_EDGES) >= 0.8
    Xs, ys = gen.sample(n, seed=1)
    real = X.iloc[n:].assign(target=y.iloc[n:].to_numpy()).reset_index(drop=True)
    syn = Xs.assign(target=ys.to_numpy())
    assert two_sample_auc(real, syn) <= 0.65


def test_structure_and_fidelity_linear_mechanisms_1000_rows():
    _check_structure_and_fidelity(1000, "linear", "logistic")


def test_structure_and_fidelity_default_mechanisms_2000_rows():
    _check_structure_and_fidelity(2000, "hgb", "hgb")


# ---------------------------------------------------------------- mechanisms chosen per node
def test_auto_mechanisms_pick_linear_boosting_and_heteroscedastic_noise():
    from engine.generators.scm import _choose_classifier, _choose_regressor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1500, 2))
    lin = x @ np.array([1.0, -0.5]) + 0.3 * rng.normal(size=1500)
    nonlin = np.sin(2 * x[:, 0]) + x[:, 1] ** 2 + 0.3 * rng.normal(size=1500)
    hetero = np.sin(2 * x[:, 0]) + (0.05 + np.exp(1.5 * x[:, 1])) * 0.3 * rng.normal(size=1500)
    assert _choose_regressor(x, lin, 0) == "linear"
    assert _choose_regressor(x, nonlin, 0) in ("hgb", "hnm")  # a nonlinear mean
    assert _choose_regressor(x, hetero, 0) in ("hnm", "hnm_linear")
    labels = np.where(x[:, 0] + 0.3 * rng.normal(size=1500) > 0, "a", "b").astype(object)
    assert _choose_classifier(x, labels, 0) == "logistic"
    ring = np.where(np.hypot(x[:, 0], x[:, 1]) > 1.2, "a", "b").astype(object)
    assert _choose_classifier(x, ring, 0) == "hgb"


def test_heteroscedastic_noise_model_reproduces_the_spread():
    from dowhy.gcm.ml import SklearnRegressionModel

    from engine.causal.mechanisms import HeteroscedasticNoiseModel
    from engine.generators.scm import _make_regressor, _make_scale_regressor

    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, size=(3000, 1))
    y = x[:, 0] + np.exp(x[:, 0]) * 0.3 * rng.normal(size=3000)
    mech = HeteroscedasticNoiseModel(SklearnRegressionModel(_make_regressor("hgb", 0)),
                                     SklearnRegressionModel(_make_scale_regressor(0)))
    mech.fit(x, y)
    np.random.seed(0)
    grid = np.repeat(np.array([[-1.5], [1.5]]), 2000, axis=0)
    draws = mech.draw_samples(grid).ravel()
    low, high = draws[:2000].std(), draws[2000:].std()
    assert 0.5 * 0.3 * np.exp(-1.5) < low < 2.0 * 0.3 * np.exp(-1.5)
    assert 0.6 * 0.3 * np.exp(1.5) < high < 1.5 * 0.3 * np.exp(1.5)
    noise = mech.estimate_noise(y, x)
    assert np.allclose(mech.evaluate(x, noise).ravel(), y)
    assert isinstance(mech.clone(), HeteroscedasticNoiseModel)


def test_auto_mechanisms_on_a_mixed_table_are_recorded():
    X, y = mixed_table()
    gen = make_generator("scm", n_dags=1, regressor="auto", classifier="auto").fit(X, y)
    kinds = {"linear", "hgb", "hnm", "hnm_linear", "logistic"}
    assert gen.mechanisms_ and set(gen.mechanisms_.values()) <= kinds
    Xs, ys = gen.sample(100, seed=0)
    check_schema(X, y, Xs, ys, 100)


def test_auto_numeric_transform_per_column():
    rng = np.random.default_rng(0)
    gen = make_generator("scm")
    assert gen.params["numeric_transform"] == "auto"
    assert gen._transform_of(rng.normal(size=2000)) == "standard"
    assert gen._transform_of(rng.lognormal(size=2000)) == "quantile"  # skewed
    zero_inflated = np.where(rng.random(2000) < 0.3, 0.0, rng.normal(5, 1, size=2000))
    assert gen._transform_of(zero_inflated) == "quantile"
    assert gen._transform_of(rng.integers(18, 80, size=2000).astype(float)) == "quantile"
    bimodal = np.r_[rng.normal(-3, 1, 1000), rng.normal(3, 1, 1000)]
    assert gen._transform_of(bimodal) == "quantile"  # normal probability-plot corr. < 0.99
    X = pd.DataFrame({"normal": rng.normal(size=400), "skewed": rng.lognormal(size=400)})
    y = pd.Series((X["normal"] + np.log(X["skewed"]) > 0).astype(int), name="t")
    fitted = make_generator("scm", n_dags=1).fit(X, y)
    kinds = {s.name: len(s.quantiles) > 0 for s in fitted.specs_}
    assert kinds == {"normal": False, "skewed": True}
    assert fitted.discovery_.indep_test == "rcit"
    Xs, _ = fitted.sample(500, seed=0)
    assert Xs["skewed"].min() >= X["skewed"].min() and Xs["skewed"].max() <= X["skewed"].max()


def test_auto_defaults_on_a_table_with_categorical_features():
    """A categorical feature: Fisher-z (no kernel on category codes) and normal scores for
    every numeric column, as before the kernel test existed."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"normal": rng.normal(size=400), "skewed": rng.lognormal(size=400),
                      "colour": rng.choice(["red", "green", "blue"], size=400)})
    y = pd.Series((X["normal"] + np.log(X["skewed"]) > 0).astype(int), name="t")
    fitted = make_generator("scm", n_dags=1).fit(X, y)
    assert fitted.discovery_.indep_test == "fisherz"
    assert all(len(s.quantiles) > 0 for s in fitted.specs_ if s.kind == "numeric")
    same = make_generator("scm", n_dags=1, indep_test="fisherz",
                          numeric_transform="quantile").fit(X, y)
    a, b = fitted.sample(300, seed=3), same.sample(300, seed=3)
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_series_equal(a[1], b[1])


def test_fci_only_up_to_30_modelled_columns():
    gen = make_generator("scm")
    assert gen.params["algorithms"] is None
    assert gen._algorithms(30) == ["pc", "fci"] and gen._algorithms(31) == ["pc"]
    assert make_generator("scm", algorithms=["pc", "fci"])._algorithms(100) == ["pc", "fci"]
