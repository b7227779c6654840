"""Odd data inside a sweep becomes a one-line error row; fits are deterministic per seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.fits.generator_fits import run_fit
from engine.plan.sweep_plan import make_plan
from engine.spec.sweep_file import parse_spec
from engine.trials.trial import run_trial
from tests.conftest import small_spec


def _csv(tmp_path: Path, n_classes: int, n_features: int, n: int = 400) -> Path:
    rng = np.random.default_rng(0)
    cols = [f"f{i}" for i in range(n_features)]
    df = pd.DataFrame(rng.normal(size=(n, n_features)), columns=cols)
    df["label"] = [f"c{i % n_classes}" for i in range(n)]
    path = tmp_path / f"t{n_classes}_{n_features}.csv"
    df.to_csv(path, index=False)
    return path


def _finetune_job(tmp_path: Path, path: Path):
    spec = parse_spec(small_spec(tmp_path, datasets=[{"name": "odd", "path": str(path),
                                                      "target": "label"}],
                                 methods=["finetune"], n_train=120))
    return make_plan(spec).trials[0]


def test_too_many_classes_is_an_error_row(tmp_path):
    rec = run_trial(_finetune_job(tmp_path, _csv(tmp_path, 12, 4)))
    row = rec["result"]
    assert row["status"] == "error"
    assert "at most 10 classes" in row["error"] and "\n" not in row["error"]
    assert rec["evaluations"] == []


def test_too_many_features_is_an_error_row_unless_reduced(tmp_path):
    path = _csv(tmp_path, 2, 130)
    row = run_trial(_finetune_job(tmp_path, path))["result"]
    assert row["status"] == "error" and "features" in row["error"]
    spec = parse_spec(small_spec(tmp_path, datasets=[{"name": "odd", "path": str(path),
                                                      "target": "label"}],
                                 methods=["finetune"], n_train=120,
                                 preprocessing={"max_features": 50},
                                 finetune={"steps": 2, "eval_every": 1}))
    row = run_trial(make_plan(spec).trials[0])["result"]
    assert row["status"] == "ok", row["error"]
    assert row["n_features"] == 50


def test_generator_fit_is_deterministic(tmp_path):
    spec = parse_spec(small_spec(tmp_path, datasets=["sklearn/wine"], methods=["scm"]))
    job = make_plan(spec).fits[0]
    from dataclasses import replace

    a = run_fit(replace(job, out_dir=str(tmp_path / "a")))
    b = run_fit(replace(job, out_dir=str(tmp_path / "b")))
    assert a["status"] == b["status"] == "ok"
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a" / "synthetic.parquet"),
                                  pd.read_parquet(tmp_path / "b" / "synthetic.parquet"))


def test_gpu_trial_without_cuda_fails_in_one_line(tmp_path):
    """A trial that asked for a GPU never silently runs on the CPU."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    spec = parse_spec(small_spec(tmp_path, datasets=["sklearn/wine"], methods=["finetune"],
                                 resources={"trial_gpus": 0.5}))
    row = run_trial(make_plan(spec).trials[0])["result"]
    assert row["status"] == "error"
    assert "asked for a GPU" in row["error"] and "CUDA is not available" in row["error"]
