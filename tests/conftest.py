"""Shared fixtures: one real local Ray per test session, small spec builders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


S3_TEST_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
"""Stand-in credentials for the S3 tests' local server (``tests/test_storage_uri.py``);
credentials already in the environment are kept."""


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray with 2 CPUs, shared by all tests of the session."""
    import ray

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    for key, value in S3_TEST_ENV.items():  # before Ray starts: its workers inherit them
        os.environ.setdefault(key, value)
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def small_spec(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """A tiny but real sweep definition (seconds per trial on one CPU)."""
    spec: dict[str, Any] = {
        "name": "mini",
        "seed": 0,
        "storage": str(tmp_path / "store"),
        "datasets": ["sklearn/breast_cancer", "sklearn/wine"],
        "folds": 1,
        "outer_folds": 4,
        "n_train": 64,
        "val_fraction": 0.25,
        "methods": ["finetune", "causalmixft", "scm"],
        "grid": {"synthetic_scale": [1.0], "mix_ratio": [0.5]},
        "model": {"name": "pfn"},
        "finetune": {"steps": 6, "eval_every": 3, "patience": 2, "episode_rows": 48},
        "resources": {"generator_cpus": 1, "trial_cpus": 1},
    }
    spec.update(overrides)
    return spec


@pytest.fixture(scope="module")
def fold():
    """A breast-cancer fold, preprocessed as a sweep does: (X, y) of training, validation and
    test rows (the fine-tuning tests' table)."""
    from engine.data import load_dataset
    from engine.data.preprocess import TablePreprocessor
    from engine.folds.splits import make_fold

    ds = load_dataset("sklearn/breast_cancer")
    y = ds.label_codes()
    s = make_fold(y, 0, 5, 0, 128, 0.25, 200)
    prep = TablePreprocessor().fit(ds.X.iloc[s.train])
    return (prep.transform(ds.X.iloc[s.train]), y[s.train], prep.transform(ds.X.iloc[s.val]),
            y[s.val], prep.transform(ds.X.iloc[s.test]), y[s.test])
