"""A two-dataset mini sweep end to end on a real local Ray: fits, Tune trials, results, report,
resume without repeating finished work, and identical metrics when a trial is rerun."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from engine.execution.orchestrate import run_sweep
from engine.plan.sweep_plan import make_plan
from engine.spec.sweep_file import parse_spec
from engine.storage.results_schema import RESULT_COLUMNS
from tests.conftest import small_spec


@pytest.fixture(scope="module")
def mini_sweep(ray_local, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    spec = parse_spec(small_spec(tmp))
    sweep_dir = run_sweep(spec, report=True)
    return spec, sweep_dir


def test_mini_sweep_writes_every_planned_row(mini_sweep):
    spec, sweep_dir = mini_sweep
    res = pd.read_parquet(sweep_dir / "results.parquet")
    plan = make_plan(spec)
    assert len(res) == len(plan.trials) == 6
    assert list(res.columns) == list(RESULT_COLUMNS)
    assert (res["status"] == "ok").all(), res["error"].tolist()
    assert set(res["method"]) == {"finetune", "causalmixft", "scm"}
    assert res["zero_shot_test_roc_auc"].between(0.5, 1.0).all()
    assert res["test_roc_auc"].notna().all()
    syn = res[res["method"] != "finetune"]
    assert (syn["n_synthetic"] == 64).all()
    ev = pd.read_parquet(sweep_dir / "evaluations.parquet")
    assert set(ev["trial_id"]) == set(res["trial_id"])
    assert (ev.groupby("trial_id")["step"].min() == 0).all()  # step 0 is the zero-shot model


def test_mini_sweep_exports_curves(mini_sweep):
    _, sweep_dir = mini_sweep
    curves = pd.read_csv(sweep_dir / "scaling_curves.csv")
    assert {"method", "synthetic_scale", "mix_ratio", "median", "q25", "q75"} <= set(curves.columns)
    for method in ("finetune", "causalmixft", "scm"):
        assert (sweep_dir / f"scaling_{method}.png").stat().st_size > 1000


def test_generator_fits_are_shared_and_see_training_rows_only(mini_sweep):
    spec, sweep_dir = mini_sweep
    fits = sorted((sweep_dir / "synthetic").glob("**/fit.json"))
    assert len(fits) == 2  # one scm fit per dataset-fold, shared by causalmixft and scm
    from engine.folds.fold_data import load_fold

    fit_table = pd.read_parquet(sweep_dir / "fits.parquet")
    assert len(fit_table) == 2 and (fit_table["status"] == "ok").all()
    assert fit_table["fidelity_two_sample_auc"].between(0, 1).all()
    res = pd.read_parquet(sweep_dir / "results.parquet")
    joined = res[res["generator"] != ""].merge(fit_table, on="fit_id", suffixes=("", "_fit"))
    assert len(joined) == 4 and (joined["dataset"] == joined["dataset_fit"]).all()
    assert (res.loc[res["method"] == "finetune", "fit_id"] == "").all()
    plan = make_plan(spec)
    for job in plan.fits:
        meta = json.loads((Path(job.out_dir) / "fit.json").read_text())
        split = load_fold(job.fold).split
        seen = set(meta["train_rows"])
        assert seen == set(split.train.tolist())
        assert not seen & (set(split.val.tolist()) | set(split.test.tolist()))


def test_resume_skips_finished_work_and_reruns_identically(mini_sweep):
    spec, sweep_dir = mini_sweep
    before = pd.read_parquet(sweep_dir / "results.parquet").set_index("trial_id")
    results = sorted((sweep_dir / "trials").glob("**/result.json"))
    stamps = {p: p.stat().st_mtime_ns for p in results}
    fit_stamps = {p: p.stat().st_mtime_ns for p in (sweep_dir / "synthetic").glob("**/*.parquet")}
    lost = [p for p in results if "causalmixft" in str(p) or "finetune" in str(p)][:2]
    for p in lost:
        p.unlink()  # as if the sweep was killed before these trials finished
    run_sweep(spec, report=False)
    after = pd.read_parquet(sweep_dir / "results.parquet").set_index("trial_id")
    assert len(after) == len(before)
    for p, stamp in stamps.items():
        if p not in lost:
            assert p.stat().st_mtime_ns == stamp, f"{p} was recomputed"
    for p, stamp in fit_stamps.items():
        assert p.stat().st_mtime_ns == stamp, "a cached generator fit was redone"
    cols = ["zero_shot_test_roc_auc", "test_roc_auc", "val_roc_auc", "test_log_loss",
            "best_step", "steps_run"]
    pd.testing.assert_frame_equal(before.loc[after.index, cols], after[cols])
