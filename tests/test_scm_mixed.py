"""``scm`` option ``profile: mixed_types`` (issue 22 item 5) and the ``rcit_mixed`` test.

The default profile must keep every key and row of the running scaling study: the hashes
below were computed before the option existed."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from engine.causal.discovery import resolve_test, seeded_global_numpy
from engine.causal.mixed_rcit import MixedRCIT
from engine.core.errors import CausalMixError, SpecError
from engine.generators import make_generator
from engine.spec.plugin_options import check_generator_options
from engine.spec.sweep_file import parse_spec
from tests.conftest import small_spec
from tests.test_scm_generator import mixed_table

# sha256 of the default generator's rows on mixed_table(160, 0), n_dags=2, sample(120, seed=3),
# at the commit before `profile` was added
DEFAULT_ROWS_SHA = "bdd76ae4ea86cc607a55cab42a3e26e87d3c288633e408e6af9e96e8bf169060"
DEFAULT_PARAMS = {
    "algorithms": None, "alpha": 0.05, "bootstrap": None, "classifier": "hgb", "clip": True,
    "collinear_threshold": 0.99, "depth": None, "discrete_threshold": 10, "indep_test": "auto",
    "max_categories": 50, "max_discovery_rows": 5000, "max_parents": None, "n_dags": 2,
    "numeric_transform": "auto", "rare_min_count": 5, "regressor": "hgb",
    "reinject_missing": True, "root_smoothing": 1.0, "seed": 0}


def rows_sha(X: pd.DataFrame, y: pd.Series) -> str:
    frame = X.assign(__y__=pd.Series(y).astype(str))
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=True).to_numpy()
                          .tobytes()).hexdigest()


def mixed_sim(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Numeric and unordered categorical features with a non-monotone link, 3 classes."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    c = rng.choice(["p", "q", "r"], size=n)
    b = a ** 2 + np.where(c == "q", 1.5, 0.0) + 0.3 * rng.normal(size=n)
    d = np.sin(2 * b) + 0.3 * rng.normal(size=n)
    y = np.digitize(b + 0.5 * rng.normal(size=n), [0.8, 1.8])
    X = pd.DataFrame({"a": a, "c": pd.Series(c, dtype="str"), "b": b, "d": d})
    return X, pd.Series(y, name="label")


@pytest.fixture(scope="module")
def fitted() -> dict[str, object]:
    X, y = mixed_sim()
    with threadpool_limits(limits=1):
        return {p: make_generator("scm", n_dags=2, profile=p).fit(X, y)
                for p in ("default", "mixed_types")}


@pytest.mark.parametrize("bad", ["mixed", "MIXED_TYPES", "", 3])
def test_bad_profile_is_refused_in_one_line(bad):
    with pytest.raises(CausalMixError) as err:
        make_generator("scm", profile=bad)
    assert "profile must be one of ['default', 'mixed_types']" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(CausalMixError):
        check_generator_options("scm", {"profile": bad})


def test_sweep_file_takes_the_profile(tmp_path):
    methods = [{"name": "scm", "options": {"profile": "mixed_types"}},
               {"name": "causalmixft", "options": {"profile": "mixed_types",
                                                   "class_balance": "balanced"}}]
    spec = parse_spec(small_spec(tmp_path, methods=methods), source="s.yaml")
    assert spec.methods[0].options == {"profile": "mixed_types"}
    bad = [{"name": "scm", "options": {"profile": "fast"}}]
    with pytest.raises(SpecError) as err:
        parse_spec(small_spec(tmp_path, methods=bad), source="s.yaml")
    assert err.value.field.startswith("methods[0]")
    assert "profile" in str(err.value) and "\n" not in str(err.value)


def test_default_params_and_rows_are_unchanged():
    X, y = mixed_table(160, 0)
    for extra in ({}, {"profile": "default"}):
        gen = make_generator("scm", n_dags=2, **extra)
        assert gen.params == DEFAULT_PARAMS
    with threadpool_limits(limits=1):
        gen.fit(X, y)
    assert gen.test_ == "fisherz"
    assert rows_sha(*gen.sample(120, seed=3)) == DEFAULT_ROWS_SHA
    assert make_generator("scm", n_dags=2, profile="mixed_types").params == {
        **DEFAULT_PARAMS, "profile": "mixed_types"}


def test_profile_changes_test_and_transform_on_a_mixed_table(fitted):
    default, mixed = fitted["default"], fitted["mixed_types"]
    assert default.test_ == default.discovery_.indep_test == "fisherz"
    assert mixed.test_ == mixed.discovery_.indep_test == "rcit_mixed"
    numeric = {s.name: len(s.quantiles) > 0 for s in default.specs_ if s.kind == "numeric"}
    assert all(numeric.values())  # default: normal scores for every numeric column
    per_column = {s.name: len(s.quantiles) > 0 for s in mixed.specs_ if s.kind == "numeric"}
    assert per_column["a"] is False  # near-normal: standardised under the profile
    assert per_column["b"] is True  # skewed (a square): normal scores
    # the non-monotone a -> b link that Fisher-z misses is found
    assert {"a", "b"} in [set(e) for e in mixed.graph_.to_undirected().edges]


def test_profile_rows_are_deterministic(fitted):
    X, y = mixed_sim()
    gen = fitted["mixed_types"]
    first = rows_sha(*gen.sample(200, seed=5))
    assert rows_sha(*gen.sample(200, seed=5)) == first
    assert rows_sha(*gen.sample(200, seed=6)) != first
    with threadpool_limits(limits=1):
        again = make_generator("scm", n_dags=2, profile="mixed_types").fit(X, y)
    assert rows_sha(*again.sample(200, seed=5)) == first
    Xs, ys = gen.sample(200, seed=5)
    assert list(Xs.columns) == list(X.columns) and set(ys) <= set(y)


def test_profile_leaves_other_tables_alone():
    mixed = np.array([False, True, False])
    assert resolve_test("auto", mixed, label=2, mixed_test="rcit_mixed") == "rcit_mixed"
    assert resolve_test("auto", np.array([False, False, True]), label=2,
                        mixed_test="rcit_mixed") == "rcit"
    assert resolve_test("auto", np.ones(3, dtype=bool), mixed_test="rcit_mixed") == "gsq"
    assert resolve_test("auto", np.r_[mixed, np.zeros(20, dtype=bool)],
                        mixed_test="rcit_mixed") == "fisherz"
    assert resolve_test("fisherz", mixed, mixed_test="rcit_mixed") == "fisherz"
    X, y = mixed_table(160, 0)
    with threadpool_limits(limits=1):
        gen = make_generator("scm", n_dags=2, profile="mixed_types", indep_test="fisherz")
        gen.fit(X, y)
    assert gen.test_ == "fisherz"


def test_rcit_mixed_sees_unordered_categories():
    rng = np.random.default_rng(1)
    n = 600
    codes = rng.integers(0, 3, size=n)
    z = rng.normal(size=n)
    # depends on "level 1 or not": no monotone trend in the code
    x = np.where(codes == 1, 1.0, -0.5) + 0.5 * rng.normal(size=n) + z
    indep = rng.normal(size=n)
    data = np.column_stack([codes, x, indep, z]).astype(float)
    flags = [True, False, False, False]

    def p(mat: np.ndarray, i: int, j: int, cond: tuple[int, ...] = ()) -> float:
        with seeded_global_numpy(0):
            return MixedRCIT(mat, discrete=flags)(i, j, cond)

    assert p(data, 0, 1) < 0.01 and p(data, 0, 1, (3,)) < 0.01
    assert p(data, 0, 2) > 0.01 and p(data, 0, 2, (3,)) > 0.01
    relabelled = data.copy()
    relabelled[:, 0] = np.array([2, 0, 1])[codes]  # the same categories, other codes
    assert p(relabelled, 0, 1, (3,)) == pytest.approx(p(data, 0, 1, (3,)), rel=1e-9)
