"""The ``tabddpm`` generator: registry, schema, class-conditional draws, option checks,
bit-identical rows across torch thread counts, and its two methods in a sweep plan."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest

from engine.core.errors import CausalMixError
from engine.generators import generator_names, make_generator
from tests.conftest import REPO, small_spec

TINY: dict[str, Any] = {"steps": 30, "timesteps": 20, "layers": 2, "width": 32}


def table(n: int = 120, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Float with missing values, int, string categorical with missing values, 3 classes."""
    rng = np.random.default_rng(seed)
    y = pd.Series(rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2]), name="label")
    shift = y.map({"a": 0.0, "b": 1.5, "c": 3.0}).to_numpy()
    x1 = rng.normal(size=n) + shift
    x2 = np.sin(x1) + 0.2 * rng.normal(size=n)
    x1[rng.random(n) < 0.1] = np.nan
    color = rng.choice(["red", "green", "blue"], size=n).astype(object)
    color[rng.random(n) < 0.1] = np.nan
    X = pd.DataFrame({"x1": x1, "x2": x2,
                      "count": rng.poisson(2.0 + shift).astype(np.int64),
                      "color": pd.Series(color, dtype="str"),
                      "flag": rng.random(n) < 0.3})
    return X, y


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, pd.DataFrame, pd.Series]:
    X, y = table()
    return make_generator("tabddpm", **TINY).fit(X, y), X, y


def digest(threads: int, params: dict[str, Any]) -> str:
    """SHA-256 of sampled rows as Parquet, with ``threads`` torch threads in the process."""
    import torch

    torch.set_num_threads(threads)
    X, y = table(300)
    Xs, ys = make_generator("tabddpm", **params).fit(X, y).sample(200, seed=5)
    buf = io.BytesIO()
    Xs.assign(__label__=ys.astype(str)).to_parquet(buf, index=False)
    return hashlib.sha256(buf.getvalue()).hexdigest()


def _digest_in_subprocess(threads: int, params: dict[str, Any]) -> str:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    code = (f"from tests.test_tabddpm import digest; print(digest({threads}, {params!r}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


def test_registered_and_listed(capsys):
    from engine.cli.commands import main

    assert "tabddpm" in generator_names()
    assert main(["list", "generators"]) == 0
    assert "  tabddpm" in capsys.readouterr().out.splitlines()


def test_sample_has_training_columns_dtypes_and_classes(fitted):
    gen, X, y = fitted
    Xs, ys = gen.sample(150, seed=1)
    assert list(Xs.columns) == list(X.columns) and len(Xs) == len(ys) == 150
    assert all(Xs[c].dtype == X[c].dtype for c in X.columns)
    assert set(ys) <= set(y) and ys.name == y.name
    assert set(Xs["color"].dropna()) <= set(X["color"].dropna())
    assert Xs["x1"].isna().any() and np.isfinite(Xs["x2"]).all()
    assert Xs["x2"].between(X["x2"].min(), X["x2"].max()).all()  # quantile map keeps range
    same = gen.sample(150, seed=1)
    pd.testing.assert_frame_equal(Xs, same[0], check_exact=True)
    clone = pickle.loads(pickle.dumps(gen))
    pd.testing.assert_frame_equal(Xs, clone.sample(150, seed=1)[0], check_exact=True)
    assert not Xs.equals(gen.sample(150, seed=2)[0])
    assert len(gen.sample(0, seed=0)[0]) == 0


def test_labels_follow_the_training_distribution(fitted):
    gen, _, y = fitted
    _, ys = gen.sample(3000, seed=0)
    real = y.value_counts(normalize=True)
    syn = ys.value_counts(normalize=True).reindex(real.index, fill_value=0.0)
    assert np.abs(real - syn).max() < 0.04


def test_class_conditional_draw(fitted):
    gen, X, _ = fitted
    Xc, yc = gen.sample_class(40, seed=3, label="c")
    assert len(Xc) == 40 and set(yc) == {"c"}
    assert all(Xc[c].dtype == X[c].dtype for c in X.columns)
    pd.testing.assert_frame_equal(Xc, gen.sample_class(40, seed=3, label="c")[0])
    with pytest.raises(CausalMixError, match="not a class"):
        gen.sample_class(5, seed=0, label="zzz")


@pytest.mark.parametrize("options, field", [
    ({"steps": 0}, "steps"), ({"timesteps": 1}, "timesteps"), ({"layers": 1.5}, "layers"),
    ({"width": "wide"}, "width"), ({"lr": 0}, "lr"), ({"lr": float("nan")}, "lr"),
    ({"batch_size": -4}, "batch_size"), ({"device": "tpu"}, "device"),
    ({"threads": 0}, "threads"), ({"seed": 1.5}, "seed"),
])
def test_bad_options_are_one_line_errors(options, field):
    from engine.spec.plugin_options import check_generator_options

    with pytest.raises(CausalMixError) as err:
        check_generator_options("tabddpm", options)
    msg = str(err.value)
    assert "\n" not in msg and f"tabddpm: {field} " in msg


def test_unknown_option_in_a_sweep_file_names_the_field(tmp_path):
    from engine.spec.sweep_file import parse_spec

    spec = small_spec(tmp_path, methods=[{"name": "tabddpm", "options": {"epochs": 3}}])
    with pytest.raises(CausalMixError) as err:
        parse_spec(spec)
    assert "\n" not in str(err.value) and "epochs" in str(err.value)


def test_stays_on_cpu_when_a_gpu_is_visible(monkeypatch, fitted):
    import torch

    gen, _, _ = fitted
    Xs, _ = gen.sample(30, seed=4)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    clone = pickle.loads(pickle.dumps(gen))
    assert clone._device().type == "cpu"
    pd.testing.assert_frame_equal(Xs, clone.sample(30, seed=4)[0], check_exact=True)


def test_bit_identical_at_one_and_two_torch_threads():
    """Same seed with the process at 1 and at 2 torch threads: the same bits."""
    import torch

    before = torch.get_num_threads()
    try:
        one, two = digest(1, TINY), digest(2, TINY)
    finally:
        torch.set_num_threads(before)
    assert one == two


@pytest.mark.slow
def test_bit_identical_across_processes_and_blas_threads():
    """Fresh processes at 1 and 2 torch, OpenMP, MKL and OpenBLAS threads, on more steps; also
    with the generator's own ``threads`` at 2 (torch intra-op threads inside fit/sample; slow
    on a loaded machine, where two spinning threads share a core)."""
    params = dict(TINY, steps=200, width=64)
    one = _digest_in_subprocess(1, params)
    assert _digest_in_subprocess(2, params) == one
    assert _digest_in_subprocess(2, dict(params, threads=2)) == one


def test_methods_share_one_tabddpm_fit(tmp_path):
    from engine.plan.sweep_plan import make_plan
    from engine.spec.methods import METHODS
    from engine.spec.sweep_file import parse_spec

    assert METHODS["tabddpm"].generator == "tabddpm" and METHODS["tabddpm"].synthetic_only
    mix = METHODS["causalmixft_tabddpm"]
    assert mix.generator == "tabddpm" and not mix.synthetic_only
    opts = {"steps": 50}
    spec = parse_spec(small_spec(tmp_path, datasets=["sklearn/iris"], methods=[
        "causalmixft", {"name": "causalmixft_tabddpm", "options": opts},
        {"name": "tabddpm", "options": opts}]))
    plan = make_plan(spec)
    fits = sorted((f.generator, json.dumps(f.options)) for f in plan.fits)
    assert fits == [("scm", "{}"), ("tabddpm", json.dumps(opts))]
    grid = {t.method: (t.synthetic_scale, t.mix_ratio) for t in plan.trials}
    assert grid["causalmixft_tabddpm"] == (1.0, 0.5) and grid["tabddpm"] == (1.0, 1.0)
