"""The report of a search sweep: best point per study beside the grid and fine-tuning, the
search history, Optuna's plots, and a damaged study database.

One real search sweep and one real grid sweep (local Ray, real Optuna, real fine-tuning) are
run once for the module.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.report import build_report
from engine.report.export import Outputs
from engine.report.load import load_results
from engine.report.search import best_points, search_section
from engine.spec.sweep_file import parse_spec
from tests.conftest import small_spec

METHODS = ["finetune", "causalmixft"]
SEARCH = {"mode": "optuna", "budget": 3, "max_concurrent": 1, "seed": 1,
          "metric": "log_loss",  # continuous: the studies' values vary, importances run
          "space": {"synthetic_scale": [0.5, 2], "mix_ratio": [0.2, 0.8], "lr": [1e-5, 3e-4]},
          "scheduler": "asha", "grace_period": 3, "reduction_factor": 2}


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory, ray_local) -> tuple[Path, Path]:
    """(grid sweep, search sweep) on the same dataset-fold and methods."""
    from engine.execution.orchestrate import run_sweep

    tmp = tmp_path_factory.mktemp("search_report")
    common = dict(datasets=["sklearn/iris"], methods=METHODS)
    grid = parse_spec(small_spec(tmp, name="grid", **common,
                                 grid={"synthetic_scale": [1.0], "mix_ratio": [0.5]}))
    search = parse_spec(small_spec(tmp, name="search", **common, search=SEARCH))
    return run_sweep(grid, report=False), run_sweep(search, report=False)


@pytest.fixture(scope="module")
def together(sweeps) -> Path:
    grid, search = sweeps
    return build_report([grid, search], sweeps[1].parent / "together")


def test_best_point_is_the_max_validation_row(sweeps, together):
    results = load_results([sweeps[1]])
    table = pd.read_csv(together / "search_best_points.csv", float_precision="round_trip")
    assert sorted(table["method"]) == sorted(METHODS)
    for row in table.itertuples():
        study = results[results["search"] == row.search]
        assert row.trials == len(study) == 3 and row.failed == 0
        assert row.stopped_early == int(study["stopped_early"].sum())
        assert row.val_roc_auc == study["val_roc_auc"].max()
        chosen = study[study["trial_id"] == row.best_trial_id].iloc[0]
        assert chosen["search_number"] == row.best_trial
        assert chosen["val_roc_auc"] == row.val_roc_auc
        assert chosen["test_roc_auc"] == row.test_roc_auc  # its own test, not the max test
        for col in ["synthetic_scale", "mix_ratio", "lr", "finetune_steps"]:
            assert chosen[col] == pytest.approx(getattr(row, col))


def test_test_score_never_selects(sweeps):
    """A trial with the best test score but a worse validation score is not chosen, and
    distinct lr values at one scale and mix are not averaged together."""
    results = load_results([sweeps[1]])
    rows = results[results["method"] == "finetune"].copy()  # scale and mix fixed: only lr
    assert rows["lr"].nunique() == 3 and rows["synthetic_scale"].nunique() == 1
    worst = rows["val_roc_auc"].idxmin()
    rows.loc[worst, "val_roc_auc"] = rows["val_roc_auc"].min() - 0.01
    rows.loc[worst, "test_roc_auc"] = 1.5  # far above any real test score
    (best,) = best_points(rows).itertuples()
    assert best.best_trial_id != rows.loc[worst, "trial_id"]
    assert best.test_roc_auc < 1.5 and best.val_roc_auc == rows["val_roc_auc"].max()


def test_grid_and_finetune_columns_beside_the_search(sweeps, together):
    grid = load_results([sweeps[0]])
    table = pd.read_csv(together / "search_best_points.csv").set_index("method")
    for method in METHODS:
        rows = grid[grid["method"] == method]
        best = rows.sort_values(["val_roc_auc", "synthetic_scale"],
                                ascending=[False, True]).iloc[0]
        assert table.loc[method, "grid_val_roc_auc"] == best["val_roc_auc"]
        assert table.loc[method, "grid_test_roc_auc"] == best["test_roc_auc"]
    plain = pd.concat([grid, load_results([sweeps[1]])])
    plain = plain[plain["method"] == "finetune"]
    assert table["finetune_val_roc_auc"].eq(plain["val_roc_auc"].max()).all()
    assert table["finetune_test_roc_auc"].notna().all()
    assert np.isin(table["finetune_test_roc_auc"], plain["test_roc_auc"]).all()


def test_figures_and_html_section(together):
    for name in ["search_history_finetune", "search_history_causalmixft"]:
        assert (together / f"{name}.png").stat().st_size > 1000
        assert (together / f"{name}.svg").exists()
    assert len(list(together.glob("optuna_history_*.png"))) == 2  # one per study
    importance = pd.read_csv(together / "search_param_importance.csv")
    assert set(importance["method"]) <= set(METHODS)
    assert set(importance["param"].dropna()) <= {"synthetic_scale", "mix_ratio", "lr"}
    mix = importance[importance["method"] == "causalmixft"].set_index("param")
    assert set(mix.index) == {"synthetic_scale", "mix_ratio", "lr"}  # log-loss values vary
    assert mix["mean_importance"].sum() == pytest.approx(1.0)
    assert (together / "optuna_importance_1_causalmixft_sklearn__iris_fold0.png").exists()
    page = (together / "report.html").read_text()
    assert "<h2>Search</h2>" in page and "search_best_points" in page


def test_grid_only_report_has_no_search_section(sweeps, tmp_path):
    out = build_report([sweeps[0]], tmp_path / "grid_only")
    page = (out / "report.html").read_text()
    assert "<h2>Search</h2>" not in page
    assert not list(out.glob("search_*")) and not list(out.glob("optuna_*"))


@pytest.mark.parametrize("damage", ["missing", "corrupt", "study_missing"])
def test_damaged_study_database_only_drops_optuna_views(sweeps, tmp_path, damage):
    import optuna

    sweep = tmp_path / "search"
    shutil.copytree(sweeps[1], sweep, ignore=shutil.ignore_patterns("report", "tensorboard"))
    db = sweep / "search" / "optuna.db"
    if damage == "missing":
        db.unlink()
    elif damage == "corrupt":
        db.write_bytes(b"not a database" * 100)
    else:
        optuna.delete_study(study_name="finetune/sklearn__iris/fold0",
                            storage=f"sqlite:///{db}")
    before = db.read_bytes() if db.exists() else None
    out = tmp_path / "out"
    out.mkdir()
    outputs = Outputs(out)
    section = search_section(load_results([sweep]), outputs)
    assert section is not None and "search_best_points" in outputs.tables
    assert "search_history_causalmixft" in outputs.figures
    plots = sorted(n for n in outputs.figures if n.startswith("optuna_history"))
    assert any(str(sweep) in n for n in outputs.notes)
    if damage == "study_missing":
        assert plots == ["optuna_history_0_causalmixft_sklearn__iris_fold0"]
    else:
        assert plots == []
    assert (db.read_bytes() if db.exists() else None) == before  # the report never writes it
