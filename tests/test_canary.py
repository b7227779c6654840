"""No validation or test row ever reaches a generator: plant canary values in those rows only,
fit every registered generator through the sweep's own fit path, and look for the canaries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.fits.generator_fits import TARGET_COLUMN, run_fit
from engine.folds.splits import make_fold
from engine.generators import generator_names
from engine.plan.sweep_plan import FitJob, FoldRef

CANARY_NUM = 1.0e6
CANARY_CAT = "CANARY"
FAST_OPTIONS = {
    "scm": {"n_dags": 1},
    "ctgan": {"epochs": 2, "batch_size": 50},
    "tabebm": {"steps": 5},
    "tabddpm": {"steps": 30, "timesteps": 20, "layers": 2, "width": 32},
    "mixed": {"params": {"ctgan": {"epochs": 2, "batch_size": 50},
                         "tabebm": {"steps": 5}, "scm": {"n_dags": 1}}},
}


def _canary_table(tmp_path: Path) -> tuple[Path, FoldRef]:
    rng = np.random.default_rng(3)
    n = 240
    x1 = rng.normal(size=n)
    x2 = x1 + 0.5 * rng.normal(size=n)
    label = np.where(x1 + rng.normal(scale=0.5, size=n) > 0, "pos", "neg")
    df = pd.DataFrame({
        "x1": x1, "x2": x2,
        "canary": rng.normal(size=n),
        "colour": rng.choice(["red", "blue"], size=n),
        "label": label,
    })
    ref = FoldRef({"name": "canary", "path": str(tmp_path / "canary.csv"), "target": "label"},
                  fold=0, outer_folds=4, n_train=96, val_fraction=0.25, max_test_rows=1000, seed=0)
    classes = np.array(sorted(set(label)))
    codes = np.searchsorted(classes, label)
    split = make_fold(codes, ref.fold, ref.outer_folds, ref.seed, ref.n_train, ref.val_fraction,
                      ref.max_test_rows)
    hidden = np.concatenate([split.val, split.test])
    df.loc[hidden, "canary"] = CANARY_NUM
    df.loc[hidden, "colour"] = CANARY_CAT
    df.to_csv(tmp_path / "canary.csv", index=False)
    return tmp_path / "canary.csv", ref


@pytest.mark.parametrize("name", generator_names())
def test_no_validation_or_test_row_reaches_a_generator(tmp_path, name):
    if name == "ctgan":
        pytest.importorskip("ctgan")
    if name == "smote":
        pytest.importorskip("imblearn")
    _, ref = _canary_table(tmp_path)
    job = FitJob(name, FAST_OPTIONS.get(name, {}), ref, n_samples=200,
                 out_dir=str(tmp_path / "fit"))
    summary = run_fit(job)
    assert summary["status"] == "ok", summary.get("error")
    syn = pd.read_parquet(tmp_path / "fit" / "synthetic.parquet")
    assert len(syn) == 200 and TARGET_COLUMN in syn.columns
    assert np.nanmax(np.abs(syn["canary"].to_numpy(dtype=float))) < CANARY_NUM / 10
    assert CANARY_CAT not in set(syn["colour"].astype(str))
    meta = json.loads((tmp_path / "fit" / "fit.json").read_text())
    assert len(meta["train_rows"]) == 72  # 96 drawn rows minus 24 validation rows
