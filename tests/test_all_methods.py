"""Every method through one real sweep (tiny generator settings)."""

from __future__ import annotations

import pandas as pd
import pytest

from engine.execution.orchestrate import run_sweep
from engine.spec.methods import METHODS
from engine.spec.sweep_file import load_spec, parse_spec
from tests.conftest import REPO, small_spec

TABDDPM = {"steps": 20, "timesteps": 20, "layers": 2, "width": 32}


def test_all_methods_sweep_file_is_valid():
    spec = load_spec(REPO / "sweeps" / "all_methods.yaml")
    assert {m.name for m in spec.methods} == set(METHODS)


def test_sweep_over_all_seven_methods(ray_local, tmp_path):
    pytest.importorskip("ctgan")
    pytest.importorskip("imblearn")
    methods = [
        "finetune", "causalmixft", {"name": "scm", "options": {"n_dags": 2}},
        {"name": "ctgan", "options": {"epochs": 3, "batch_size": 40}},
        {"name": "tabebm", "options": {"steps": 10}}, "tableaugment",
        {"name": "mixed", "options": {"params": {"ctgan": {"epochs": 3, "batch_size": 40},
                                                  "tabebm": {"steps": 10}}}},
        {"name": "tabddpm", "options": TABDDPM},
        {"name": "causalmixft_tabddpm", "options": TABDDPM},
        {"name": "smote", "options": {"k_neighbors": 3}},
    ]
    spec = parse_spec(small_spec(tmp_path, datasets=["sklearn/wine"], methods=methods))
    sweep_dir = run_sweep(spec, report=True)
    res = pd.read_parquet(sweep_dir / "results.parquet")
    assert sorted(res["method"]) == sorted(METHODS)
    assert (res["status"] == "ok").all(), res[["method", "error"]].to_string()
    assert res["test_roc_auc"].between(0, 1).all()
    assert (sweep_dir / "report" / "report.html").is_file()
    fits = list((sweep_dir / "synthetic").glob("**/fit.json"))
    # tabddpm: one fit shared by its two methods; scm shared by causalmixft (default options)
    # is separate from scm's; smote its own
    assert len(fits) == 8
