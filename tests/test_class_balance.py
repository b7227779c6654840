"""The ``class_balance`` generator option (base class) and the ``smote`` generator: per-class
counts, bit-identical default, one-line errors naming the field, SMOTE rows inside the data."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest

from engine.core.errors import CausalMixError, OptionError, SpecError
from engine.generators import make_generator
from engine.generators.base import Generator, balance_counts
from engine.spec.cache_keys import generator_params
from engine.spec.plugin_options import check_generator_options
from engine.spec.sweep_file import parse_spec
from tests.conftest import small_spec

TINY: dict[str, dict[str, Any]] = {
    "scm": {"n_dags": 2, "algorithms": ["pc"], "regressor": "linear", "classifier": "logistic"},
    "ctgan": {"epochs": 2, "batch_size": 30, "embedding_dim": 8, "generator_dim": (16,),
              "discriminator_dim": (16,)},
    "tabddpm": {"steps": 30, "timesteps": 20, "layers": 2, "width": 32},
    "smote": {"k_neighbors": 3},
}
BAD = ["balance", "", 0.3, True, None, {"minority_share": 0}, {"minority_share": 1.0},
       {"minority_share": "0.3"}, {"minority_share": float("nan")}, {"share": 0.3},
       {"minority_share": 0.3, "extra": 1}]


def _installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _names() -> list[Any]:
    need = {"ctgan": "ctgan", "smote": "imblearn"}
    return [pytest.param(n, id=n, marks=[] if n not in need or _installed(need[n]) else
                         [pytest.mark.skip(reason=f"optional package {need[n]!r} missing")])
            for n in TINY]


def table(n: int = 120, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Imbalanced 3 classes; float with missing values, int, string with missing values."""
    rng = np.random.default_rng(seed)
    y = pd.Series(rng.choice(["a", "b", "c"], size=n, p=[0.6, 0.28, 0.12]), name="label")
    shift = y.map({"a": 0.0, "b": 1.5, "c": 3.0}).to_numpy()
    x1 = rng.normal(size=n) + shift
    x1[rng.random(n) < 0.1] = np.nan
    color = rng.choice(["red", "green", "blue"], size=n).astype(object)
    color[rng.random(n) < 0.1] = np.nan
    X = pd.DataFrame({"x1": x1, "x2": 2.0 * shift + rng.normal(size=n),
                      "count": rng.poisson(2.0 + shift).astype(np.int64),
                      "color": pd.Series(color, dtype="str")})
    return X, y


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    return table()


@pytest.fixture(scope="module")
def fitted(data) -> dict[str, Generator]:
    X, y = data
    cache: dict[str, Generator] = {}

    def get(name: str) -> Generator:
        if name not in cache:
            cache[name] = make_generator(name, **TINY[name]).fit(X, y)
        return cache[name]

    return get


def _with(gen: Generator, balance: Any) -> Generator:
    """A copy of a fitted generator with another ``class_balance``."""
    return pickle.loads(pickle.dumps(gen)).set_class_balance(balance)


@pytest.mark.parametrize("name", _names())
def test_balanced_gives_equal_class_counts(name, fitted):
    gen = _with(fitted(name), "balanced")
    Xs, ys = gen.sample(61, seed=5)
    counts = ys.value_counts()
    assert len(Xs) == 61 and set(counts.index) == {"a", "b", "c"}
    assert counts.max() - counts.min() <= 1
    Xs2, ys2 = gen.sample(61, seed=5)  # deterministic for a seed
    pd.testing.assert_frame_equal(Xs, Xs2)
    pd.testing.assert_series_equal(ys, ys2)


@pytest.mark.parametrize("name", _names())
def test_minority_share_gives_that_share(name, fitted, data):
    _, y = data
    minority = y.value_counts().idxmin()
    gen = _with(fitted(name), {"minority_share": 0.3})
    Xs, ys = gen.sample(100, seed=2)
    counts = ys.value_counts()
    assert len(Xs) == 100 and abs(int(counts[minority]) - 30) <= 1
    others = counts.drop(minority)  # the rest in the other classes' training proportions
    real = y.value_counts().drop(minority)
    assert np.allclose(others / others.sum(), real / real.sum(), atol=0.02)


@pytest.mark.parametrize("name", _names())
def test_default_rows_and_keys_are_unchanged(name, fitted, data):
    """``as_train`` (for smote: ``balanced``, its default) gives the very rows of no option."""
    X, y = data
    default = "balanced" if name == "smote" else "as_train"
    gen = make_generator(name, **TINY[name], class_balance=default).fit(X, y)
    a, b = fitted(name).sample(50, seed=9), gen.sample(50, seed=9)
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_series_equal(a[1], b[1])
    if name == "smote":
        assert generator_params(name, TINY[name])["class_balance"] == "balanced"
    else:  # the default is not in the generator's parameters (its cache keys)
        assert "class_balance" not in fitted(name).params
        assert (generator_params(name, {**TINY[name], "class_balance": "as_train"})
                == generator_params(name, TINY[name]))


@pytest.mark.parametrize("bad", BAD, ids=repr)
def test_bad_values_are_one_line_naming_the_option(bad):
    with pytest.raises(OptionError) as err:
        make_generator("tableaugment", class_balance=bad) if bad is not None else (
            check_generator_options("tableaugment", {"class_balance": bad}))
    assert err.value.option == "class_balance"
    assert "class_balance" in str(err.value) and "\n" not in str(err.value)


def test_sweep_file_names_the_field(tmp_path):
    methods = ["finetune", {"name": "scm", "options": {"n_dags": 1}},
               {"name": "tabddpm", "options": {"class_balance": {"minority_share": 1.5}}}]
    with pytest.raises(SpecError) as err:
        parse_spec(small_spec(tmp_path, methods=methods))
    assert err.value.field == "methods[2].options.class_balance"
    assert "\n" not in str(err.value)
    ok = [{"name": m, "options": {"class_balance": "balanced"}} for m in ("scm", "smote")]
    parse_spec(small_spec(tmp_path, methods=ok))  # valid for every generator


def test_explicit_as_train_keeps_the_fit_key(tmp_path):
    from engine.plan.sweep_plan import make_plan

    def keys(options: dict[str, Any]) -> list[str]:
        spec = small_spec(tmp_path, datasets=["sklearn/wine"],
                          methods=[{"name": "tableaugment", "options": options}])
        return sorted(f.key for f in make_plan(parse_spec(spec)).fits)

    assert keys({}) == keys({"class_balance": "as_train"}) != keys({"class_balance": "balanced"})


def test_balance_counts():
    classes = np.array(["a", "b", "c"])
    train = np.array([60, 28, 12])
    assert balance_counts(10, train, classes, "as_train").tolist() == [6, 3, 1]
    assert balance_counts(10, train, classes, "balanced").tolist() == [4, 3, 3]
    share = balance_counts(100, train, classes, {"minority_share": 0.3})
    assert share[2] == 30 and share.sum() == 100 and share[0] == 48
    ties = balance_counts(10, np.array([5, 5]), np.array([1, 0]), {"minority_share": 0.2})
    assert ties.tolist() == [8, 2]  # ties: the smaller label is the minority
    assert balance_counts(7, np.array([9]), np.array(["x"]), "balanced").tolist() == [7]


class _LabelNoise(Generator):
    """Draws labels with fixed probabilities (class 'c' never with ``never_c``): a generator
    without a class-conditional hook, so the base class samples by rejection (not registered:
    the registry lists real plug-ins only)."""

    name = "label_noise"

    def __init__(self, never_c: bool = False) -> None:
        super().__init__(never_c=never_c)

    def _fit(self, X: pd.DataFrame, y: pd.Series) -> None:
        pass

    def _sample(self, n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
        rng = np.random.default_rng(seed)
        p = [0.8, 0.2, 0.0] if self.params["never_c"] else [0.7, 0.25, 0.05]
        y = rng.choice(self.classes_, size=n, p=p)
        return pd.DataFrame({"x": rng.normal(size=n)}), pd.Series(y)


def test_rejection_for_a_generator_without_a_hook():
    X = pd.DataFrame({"x": np.arange(30.0)})
    y = pd.Series(["a"] * 20 + ["b"] * 7 + ["c"] * 3)
    gen = _LabelNoise().set_class_balance("balanced").fit(X, y)
    _, ys = gen.sample(90, seed=1)
    assert ys.value_counts().to_dict() == {"a": 30, "b": 30, "c": 30}
    pd.testing.assert_series_equal(ys, gen.sample(90, seed=1)[1])
    never = _LabelNoise(never_c=True).set_class_balance("balanced").fit(X, y)
    with pytest.raises(CausalMixError, match="cannot reach 30 rows of class 'c'") as err:
        never.sample(90, seed=1)
    assert "\n" not in str(err.value)


@pytest.mark.skipif(not _installed("imblearn"), reason="optional package 'imblearn' missing")
@pytest.mark.parametrize("balance", ["balanced", "as_train", {"minority_share": 0.5}], ids=str)
def test_smote_rows_lie_within_the_training_rows(balance, data):
    X, y = data
    gen = make_generator("smote", class_balance=balance).fit(X, y)
    Xs, ys = gen.sample(300, seed=4)
    for c in ("x1", "x2", "count"):
        assert Xs[c].min() >= X[c].min() and Xs[c].max() <= X[c].max()
        assert Xs[c].dtype == X[c].dtype
    assert set(Xs["color"].dropna()) <= set(X["color"].dropna())
    assert set(ys) <= set(y)
    if balance == "as_train":  # interpolates within every class, in the training proportions
        real = y.value_counts(normalize=True)
        assert np.allclose(ys.value_counts(normalize=True)[real.index], real, atol=0.01)
    # the new rows are new: no synthetic row repeats a training row exactly
    merged = Xs[["x2"]].merge(X[["x2"]], how="inner")
    assert len(merged) < 0.05 * len(Xs)


def test_smote_missing_extra_is_one_line(monkeypatch, data):
    import builtins

    real_import = builtins.__import__

    def fake(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("imblearn"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    X, y = data
    with pytest.raises(CausalMixError, match=r"pip install 'causalmix-sweep\[smote\]'"):
        make_generator("smote").fit(X, y)


def test_scm_fixes_a_root_label_and_rejects_otherwise():
    """Where the label is a root of every SCM, a class is drawn with the label fixed (it is
    then conditioning); where a feature is a parent of the label, ``_sample_class`` declines
    and the base class keeps the sampled rows of that class (rejection)."""
    rng = np.random.default_rng(1)
    n = 300
    y = pd.Series(rng.choice(["a", "b"], size=n, p=[0.85, 0.15]), name="t")
    shift = (y == "b").to_numpy() * 2.0
    X = pd.DataFrame({"x1": shift + rng.normal(size=n), "x2": shift + rng.normal(size=n),
                      "x3": rng.normal(size=n)})
    gen = make_generator("scm", n_dags=2, regressor="linear", classifier="logistic").fit(X, y)
    roots = [s for s in gen.scms_ if s.graph.in_degree("y") == 0]
    caused = [s for s in gen.scms_ if s.graph.in_degree("y") > 0]
    if not roots or not caused:
        pytest.skip("discovery gave no DAG pair with the label as a root and as a child")
    assert gen._sample_class(10, 0, "b") is None  # a child of a feature somewhere: rejection
    gen.scms_ = roots
    Xb, yb = gen._sample_class(400, 0, "b")
    assert set(yb) == {"b"} and len(Xb) == 400
    assert abs(Xb["x1"].mean() - X.loc[y == "b", "x1"].mean()) < 0.3
