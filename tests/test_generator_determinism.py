"""Bit-identical synthetic rows whatever the thread settings of the process.

Each generator is fitted and sampled in fresh ``python -c`` subprocesses that differ only in
their thread settings (``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS``
and ``torch.set_num_threads``: 1, and 4 as oversubscription of a 2-core machine); the
SHA-256 of the samples' Parquet bytes must be the same. The table has 600 rows so that
CTGAN's data transformer takes its multi-process path (500 rows or more).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.test_generators_all import _ctgan_installed

REPO = Path(__file__).resolve().parents[1]
GENERATORS = ("scm", "ctgan", "tabebm", "tableaugment", "mixed")

# Small but real settings: the scm keeps its gradient-boosting mechanisms (OpenMP).
SMALL: dict[str, dict[str, Any]] = {
    "scm": {"n_dags": 2},
    "ctgan": {"epochs": 2, "batch_size": 100, "embedding_dim": 16, "generator_dim": (32,),
              "discriminator_dim": (32,)},
    "tabebm": {"steps": 5, "n_negatives": 8, "max_context": 200},
    "tableaugment": {},
}


def _params(name: str) -> dict[str, Any]:
    from tests.test_generators_all import _pfn_options

    params = {k: dict(v) for k, v in SMALL.items()}
    params["tabebm"]["model_options"] = _pfn_options()
    if name != "mixed":
        return params[name]
    members = [m for m in ("scm", "ctgan", "tabebm", "tableaugment")
               if m != "ctgan" or _ctgan_installed()]
    return {"members": members, "params": {m: params[m] for m in members}}


def table(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """A mixed table: nonlinear numerics with missing values, an integer, a categorical."""
    rng = np.random.default_rng(seed)
    y = pd.Series(rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2]), name="label")
    shift = y.map({"a": 0.0, "b": 1.0, "c": 2.5}).to_numpy()
    x1 = rng.normal(size=n) + shift
    x2 = np.sin(x1) * 2.0 + 0.3 * rng.normal(size=n)
    x3 = x1 * x2 + rng.standard_t(4, size=n)
    x1[rng.random(n) < 0.1] = np.nan
    color = np.where(x2 > 0, "red", rng.choice(["green", "blue"], size=n)).astype(object)
    color[rng.random(n) < 0.05] = np.nan
    X = pd.DataFrame({"x1": x1, "x2": x2, "x3": x3,
                      "count": rng.poisson(3.0 + shift).astype(np.int64),
                      "color": pd.Series(color, dtype="str")})
    return X, y


def digest(name: str, n_rows: int, n_sample: int, threads: int) -> str:
    """Fit ``name`` and sample; the SHA-256 of the rows as Parquet (run in a subprocess)."""
    import torch

    from engine.generators import make_generator

    torch.set_num_threads(threads)
    X, y = table(n_rows)
    gen = make_generator(name, **_params(name)).fit(X, y)
    Xs, ys = gen.sample(n_sample, seed=5)
    buf = io.BytesIO()
    Xs.assign(**{"__label__": ys.astype(str)}).to_parquet(buf, index=False)
    return hashlib.sha256(buf.getvalue()).hexdigest()


def run_in_subprocess(names: tuple[str, ...], threads: int, n_rows: int, n_sample: int) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    code = ("import json; from tests.test_generator_determinism import digest; "
            f"print(json.dumps({{n: digest(n, {n_rows}, {n_sample}, {threads}) "
            f"for n in {list(names)!r}}}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _names() -> tuple[str, ...]:
    return tuple(n for n in GENERATORS if n != "ctgan" or _ctgan_installed())


def test_every_generator_bit_identical_across_thread_settings():
    names = _names()
    one = run_in_subprocess(names, threads=1, n_rows=600, n_sample=300)
    four = run_in_subprocess(names, threads=4, n_rows=600, n_sample=300)
    assert set(one) == set(names)
    differ = [n for n in names if one[n] != four[n]]
    assert not differ, f"not bit-identical across thread settings: {differ}"


@pytest.mark.slow
def test_every_generator_bit_identical_two_threads_larger_table():
    names = _names()
    runs = [run_in_subprocess(names, threads=t, n_rows=2000, n_sample=1500) for t in (1, 2)]
    differ = [n for n in names if runs[0][n] != runs[1][n]]
    assert not differ, f"not bit-identical across thread settings: {differ}"


@pytest.mark.skipif(not _ctgan_installed(), reason="optional package 'ctgan' is not installed")
def test_ctgan_pickled_copy_stays_on_cpu_when_a_gpu_is_visible(monkeypatch):
    """``ctgan`` moves an unpickled model to CUDA when ``torch.cuda.is_available()``; ours must
    restore it on the CPU and sample the same rows (on a CPU-only torch a move would raise)."""
    import pickle

    import torch

    from engine.generators import make_generator

    X, y = table(120)
    gen = make_generator("ctgan", **SMALL["ctgan"]).fit(X, y)
    Xs, ys = gen.sample(50, seed=3)
    blob = pickle.dumps(gen)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    clone = pickle.loads(blob)
    Xc, yc = clone.sample(50, seed=3)
    assert clone.model_._device.type == "cpu"
    pd.testing.assert_frame_equal(Xs, Xc, check_exact=True)
    pd.testing.assert_series_equal(ys, yc, check_exact=True)
