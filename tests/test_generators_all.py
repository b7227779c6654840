"""One contract suite for every registered generator.

Each generator is made from the registry, fitted on a small mixed table (float with missing
values, int, string categorical with missing values, 3 classes), pickled, and sampled both here
and inside a real Ray actor; the rows must match the real schema and be deterministic.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest

from engine.generators import GENERATORS, generator_names, make_generator
from engine.generators.mixed import DEFAULT_MEMBERS

N_ROWS = 90
N_SAMPLE = 60


def _pfn_options() -> dict[str, Any]:
    """The bundled PFN when its checkpoint ships, else a small seeded random-init PFN."""
    try:
        from engine.models.pfn import bundled_checkpoint_path
    except ImportError:
        return {}
    if bundled_checkpoint_path().is_file():
        return {}
    return {"random_init": True, "d_model": 32, "n_layers": 2, "d_ff": 64}


# Tiny settings for the expensive generators; anything else runs with its defaults.
TINY: dict[str, dict[str, Any]] = {
    "scm": {"n_dags": 1, "algorithms": ["pc"], "regressor": "linear", "classifier": "logistic"},
    "tabebm": {"steps": 5, "n_negatives": 8, "model_options": _pfn_options()},
    "tabddpm": {"steps": 30, "timesteps": 20, "layers": 2, "width": 32},
    "ctgan": {
        "epochs": 1,
        "batch_size": 30,
        "embedding_dim": 8,
        "generator_dim": (16,),
        "discriminator_dim": (16,),
    },
}


def _ctgan_installed() -> bool:
    try:
        import ctgan  # noqa: F401
    except ImportError:
        return False
    return True


def _params(name: str) -> dict[str, Any]:
    if name == "mixed":
        members = [m for m in DEFAULT_MEMBERS if m in GENERATORS]
        if not _ctgan_installed() and "ctgan" in members:
            members.remove("ctgan")
        return {"members": members, "params": {m: TINY[m] for m in members if m in TINY}}
    return dict(TINY.get(name, {}))


def _smote_installed() -> bool:
    try:
        import imblearn  # noqa: F401
    except ImportError:
        return False
    return True


def _names() -> list[Any]:
    out = []
    for name in generator_names():
        marks = []
        if name == "ctgan" and not _ctgan_installed():
            marks.append(pytest.mark.skip(reason="optional package 'ctgan' is not installed"))
        if name == "smote" and not _smote_installed():
            marks.append(pytest.mark.skip(reason="optional package 'imbalanced-learn' is not "
                                          "installed"))
        out.append(pytest.param(name, marks=marks, id=name))
    return out


def make_table(n: int = N_ROWS, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    y = pd.Series(rng.choice(["low", "mid", "high"], size=n, p=[0.5, 0.3, 0.2]), name="grade")
    shift = y.map({"low": 0.0, "mid": 1.5, "high": 3.0}).to_numpy()
    x_nan = rng.normal(size=n) + shift
    x_nan[rng.random(n) < 0.15] = np.nan
    color = rng.choice(["red", "green", "blue"], size=n).astype(object)
    color[rng.random(n) < 0.1] = np.nan
    X = pd.DataFrame(
        {
            "x_nan": x_nan,
            "count": rng.integers(0, 20, size=n) + (shift * 3).astype(np.int64),
            "color": pd.Series(color, dtype="str"),
            "x_wide": rng.normal(size=n) * 10.0 - 4.0 * shift,
        }
    )
    return X, y


@pytest.fixture(scope="module")
def table() -> tuple[pd.DataFrame, pd.Series]:
    return make_table()


@pytest.fixture(scope="module")
def fitted(table) -> dict[str, Any]:
    """Generators fitted once per module (lazily, by name)."""
    cache: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in cache:
            X, y = table
            cache[name] = make_generator(name, **_params(name)).fit(X, y)
        return cache[name]

    return {"get": get}


@pytest.fixture(scope="module")
def sampler_actor():
    """A real Ray actor that samples from a pickled generator (one CPU, own local Ray)."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=1, include_dashboard=False, logging_level="ERROR")

    @ray.remote(num_cpus=1)
    class Sampler:
        def sample(self, blob: bytes, n: int, seed: int) -> bytes:
            gen = pickle.loads(blob)
            return pickle.dumps(gen.sample(n, seed))

    actor = Sampler.remote()
    yield actor
    ray.kill(actor)
    if started:
        ray.shutdown()


def _check_schema(gen: Any, X: pd.DataFrame, y: pd.Series, Xs: pd.DataFrame, ys: pd.Series):
    assert list(Xs.columns) == list(X.columns)
    assert len(Xs) == len(ys) == N_SAMPLE
    for c in X.columns:
        assert Xs[c].dtype == X[c].dtype, (c, Xs[c].dtype, X[c].dtype)
    assert set(ys.unique()) <= set(y.unique())
    assert ys.name == y.name
    observed = set(X["color"].dropna())
    assert set(Xs["color"].dropna()) <= observed
    assert np.isfinite(Xs["x_wide"].to_numpy()).all()


@pytest.mark.parametrize("name", _names())
def test_generator_contract(name, table, fitted, sampler_actor):
    import ray

    X, y = table
    gen = fitted["get"](name)
    Xs, ys = gen.sample(N_SAMPLE, seed=11)
    _check_schema(gen, X, y, Xs, ys)

    # determinism: same seed, same rows; another seed, other rows
    Xs2, ys2 = gen.sample(N_SAMPLE, seed=11)
    pd.testing.assert_frame_equal(Xs, Xs2)
    pd.testing.assert_series_equal(ys, ys2)
    Xo, _ = gen.sample(N_SAMPLE, seed=12)
    assert not Xs.equals(Xo)

    # pickle round trip keeps the rows
    blob = pickle.dumps(gen)
    clone = pickle.loads(blob)
    Xc, yc = clone.sample(N_SAMPLE, seed=11)
    pd.testing.assert_frame_equal(Xs, Xc)
    pd.testing.assert_series_equal(ys, yc)

    # and so does sampling inside a Ray actor (another process)
    Xr, yr = pickle.loads(ray.get(sampler_actor.sample.remote(blob, N_SAMPLE, 11)))
    pd.testing.assert_frame_equal(Xs, Xr)
    pd.testing.assert_series_equal(ys, yr)


@pytest.mark.parametrize("name", _names())
def test_generator_class_balance_and_empty(name, table, fitted):
    X, y = table
    gen = fitted["get"](name)
    Xe, ye = gen.sample(0, seed=0)
    assert list(Xe.columns) == list(X.columns) and len(Xe) == len(ye) == 0
    if name in ("tableaugment", "tabebm"):  # exact proportional class counts
        _, ys = gen.sample(200, seed=3)
        real = y.value_counts(normalize=True)
        syn = ys.value_counts(normalize=True).reindex(real.index, fill_value=0.0)
        assert np.abs(real - syn).max() <= 0.01


def test_mixed_weights_and_dropped_members(table):
    X, y = table
    gen = make_generator(
        "mixed",
        members=["tableaugment", "ctgan"],
        weights={"tableaugment": 3.0, "ctgan": 1.0},
        params={"tableaugment": {"k": 3}, "ctgan": TINY["ctgan"]},
    ).fit(X, y)
    if _ctgan_installed():
        assert gen.members_ == ["tableaugment", "ctgan"]
        assert gen.weights_ == {"tableaugment": 0.75, "ctgan": 0.25}
    else:  # the missing extra is dropped and its share goes to the others
        assert gen.members_ == ["tableaugment"] and "ctgan" in gen.dropped_
        assert gen.weights_ == {"tableaugment": 1.0}
    Xs, ys = gen.sample(40, seed=0)
    assert len(Xs) == len(ys) == 40


def test_tableaugment_reinjects_missing_and_stays_in_range(table):
    X, y = table
    gen = make_generator("tableaugment", sigma=0.0).fit(X, y)
    Xs, _ = gen.sample(2000, seed=0)
    assert abs(Xs["x_nan"].isna().mean() - X["x_nan"].isna().mean()) < 0.05
    assert Xs["x_wide"].min() >= X["x_wide"].min() - 1e-9
    assert Xs["x_wide"].max() <= X["x_wide"].max() + 1e-9
