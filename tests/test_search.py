"""Search mode: an Optuna study per (dataset, fold, method) through Ray Tune, with ASHA.

Real local Ray, real Optuna (SQLite studies in the sweep folder), real fits and fine-tuning.
"""

from __future__ import annotations

import pandas as pd
import pytest

from engine.core.errors import SpecError
from engine.spec.sweep_file import parse_spec
from tests.conftest import small_spec

VOLATILE = ["seconds", "started_at", "finished_at", "finetune_seconds", "scoring_seconds",
            "worker"]


def _search(**over):
    base = {"mode": "optuna", "budget": 3, "space": {"synthetic_scale": [0.5, 2],
                                                     "mix_ratio": [0.2, 0.8]}}
    base.update(over)
    return base


@pytest.mark.parametrize("search, field, words", [
    ({"mode": "optuna", "budget": 3}, "search.space", "needs a space"),
    (_search(space={}), "search.space", "needs a space"),
    (_search(space={"mix_ratio": [0.9, 0.1]}), "search.space.mix_ratio", "reversed range"),
    (_search(budget=0), "search.budget", ">= 1"),
    ({"mode": "optuna", "space": {"lr": [1e-5, 1e-4]}}, "search.budget", "required"),
    (_search(space={"depth": [1, 2]}), "search.space.depth", "unknown dimension"),
    (_search(sampler="cmaes"), "search.sampler", "expected one of"),
    (_search(space={"lr": [0, 1e-3]}), "search.space.lr.low", "expected a number"),
    ({"mode": "grid", "budget": 3}, "search.budget", "only used with mode: optuna"),
    (_search(space={"synthetic_scale": [1, 5000]}), "search.space.synthetic_scale",
     "max_synthetic_rows"),
])
def test_bad_search_sections_get_one_line(tmp_path, search, field, words):
    raw = small_spec(tmp_path, search=search)
    with pytest.raises(SpecError) as err:
        parse_spec(raw, source="s.yaml")
    msg = str(err.value)
    assert f"field '{field}'" in msg and words in msg and "\n" not in msg


def test_unsearched_dimension_needs_one_grid_value(tmp_path):
    raw = small_spec(tmp_path, grid={"synthetic_scale": [1.0], "mix_ratio": [0.25, 0.5]},
                     search=_search(space={"synthetic_scale": [0.5, 2]}))
    with pytest.raises(SpecError, match="grid.mix_ratio.*does not search mix_ratio"):
        parse_spec(raw, source="s.yaml")


def test_plan_has_one_study_per_dataset_fold_method(tmp_path):
    from engine.plan.sweep_plan import make_plan

    spec = parse_spec(small_spec(tmp_path, search=_search()))
    plan = make_plan(spec)
    # finetune searches nothing here (no lr/steps in the space): one plain trial per fold
    assert [t.method for t in plan.trials] == ["finetune", "finetune"]
    assert sorted(s.name for s in plan.studies) == [
        "causalmixft/sklearn__breast_cancer/fold0", "causalmixft/sklearn__wine/fold0",
        "scm/sklearn__breast_cancer/fold0", "scm/sklearn__wine/fold0"]
    scm = next(s for s in plan.studies if s.name.startswith("scm/"))
    assert [d.name for d in scm.dims] == ["synthetic_scale"]  # synthetic-only: mix is 1
    # one fit per dataset-fold, drawn at the largest scale the space allows
    assert sorted(f.n_samples for f in plan.fits) == [128, 128]
    assert plan.planned_trials == 2 + 4 * 3


def test_interrupted_study_trials_are_settled(tmp_path):
    """A trial left running with a final record is told from it; one without is asked again
    at the same point and slot; finished ones keep their slots."""
    from engine.execution.studies import open_studies
    from engine.plan.sweep_plan import make_plan
    from engine.storage.store import SweepStore
    from engine.trials.trial import base_row, trial_record

    spec = parse_spec(small_spec(tmp_path, datasets=["sklearn/wine"], methods=["causalmixft"],
                                 search=_search(budget=4)))
    plan = make_plan(spec)
    store = SweepStore(spec.sweep_dir)
    store.prepare()
    (st,) = open_studies(store, spec.search, plan.studies)
    jobs = [st.ask() for _ in range(3)]
    st.tell(jobs[0][0].search_number, "complete", 0.9)
    done = jobs[1][0]  # finished on its worker, but the driver died before telling the study
    row = {**base_row(done), "status": "ok", "val_roc_auc": 0.8, "stopped_early": False}
    store.write_trial(done.trial_id, trial_record(done, row, []))

    (again,) = open_studies(store, spec.search, plan.studies)
    trials = {t.number: t for t in again.study.get_trials()}
    assert trials[1].state.name == "COMPLETE" and trials[1].value == 0.8
    assert trials[2].state.name == "FAIL"
    assert again.taken == {0, 1} and again.left == 2
    retry, slot = again.ask()
    assert slot == 2 and retry.trial_id == jobs[2][0].trial_id
    assert retry.synthetic_scale == jobs[2][0].synthetic_scale
    assert retry.key == jobs[2][0].key  # same point: same record, same seed
    nxt, slot = again.ask()
    assert slot == 3 and nxt.synthetic_scale != retry.synthetic_scale


def test_search_sweep_runs_budget_stops_early_and_resumes(tmp_path, ray_local):
    from engine.execution.orchestrate import run_sweep

    search = {"mode": "optuna", "budget": 4, "max_concurrent": 1, "seed": 3,
              "metric": "log_loss",  # continuous: ASHA has no ties to keep everyone
              "space": {"synthetic_scale": [0.5, 2], "mix_ratio": [0.1, 0.9],
                        "lr": [1e-5, 3e-4]},
              "scheduler": "asha", "grace_period": 5, "reduction_factor": 4}
    raw = small_spec(tmp_path, datasets=["sklearn/digits"], methods=["causalmixft"],
                     n_train=96, search=search,
                     finetune={"steps": 20, "eval_every": 5, "patience": 4,
                               "episode_rows": 64})
    spec = parse_spec(raw)
    sweep_dir = run_sweep(spec, report=False)
    res = pd.read_parquet(sweep_dir / "results.parquet")
    assert len(res) == 4 and (res["status"] == "ok").all() and res["trial_id"].is_unique
    assert res["synthetic_scale"].between(0.5, 2).all() and res["mix_ratio"].between(0.1, 0.9).all()
    assert res["synthetic_scale"].nunique() == 4 and res["mix_ratio"].nunique() == 4
    assert (res["n_synthetic"] == (res["synthetic_scale"] * 96).round()).all()

    import optuna

    study = optuna.load_study(study_name="causalmixft/sklearn__digits/fold0",
                              storage=f"sqlite:///{sweep_dir}/search/optuna.db")
    by_number = {t.number: t for t in study.trials}
    stopped = res[res["stopped_early"]]
    assert len(stopped) >= 1, "ASHA stopped no trial"
    evals = pd.read_parquet(sweep_dir / "evaluations.parquet")
    for _, r in res.iterrows():
        trial = by_number[int(r["search_number"])]
        mine = evals[evals["trial_id"] == r["trial_id"]].set_index("step")
        # the row holds the test score at its best validation step (test never selects)
        assert mine.loc[r["best_step"], "test_roc_auc"] == r["test_roc_auc"]
        if r["stopped_early"]:
            assert trial.state.name == "PRUNED" and r["steps_run"] < 20
        else:
            assert trial.state.name == "COMPLETE" and trial.value == r["val_log_loss"]

    run_sweep(spec, report=False)  # everything is reused: nothing reruns, rows unchanged
    again = pd.read_parquet(sweep_dir / "results.parquet")
    pd.testing.assert_frame_equal(res.drop(columns=VOLATILE), again.drop(columns=VOLATILE))
    assert len(optuna.load_study(study_name=study.study_name,
                                 storage=f"sqlite:///{sweep_dir}/search/optuna.db").trials) == 4


def test_a_study_whose_fit_failed_gets_one_error_row(tmp_path):
    """Its fit failed: one error row under the study's name, the whole budget counted failed."""
    from engine.execution.studies import open_studies
    from engine.execution.tune_run import SweepRun
    from engine.plan.sweep_plan import make_plan
    from engine.storage.progress import Progress
    from engine.storage.store import ResultsBook, SweepStore

    spec = parse_spec(small_spec(tmp_path, datasets=["sklearn/wine"], methods=["causalmixft"],
                                 search=_search(budget=4)))
    plan = make_plan(spec)
    store = SweepStore(spec.sweep_dir)
    store.prepare()
    studies = open_studies(store, spec.search, plan.studies)
    progress = Progress(store, spec.name, plan.planned_trials, 0, len(plan.fits), 0)
    run = SweepRun(store, ResultsBook(store, []), progress, [], plan.fits, set(), studies,
                   spec.search)
    run.searcher.fit_done(plan.fits[0], "no graph")
    row = store.read_trial(studies[0].job.template.trial_id)["result"]
    assert row["status"] == "error" and row["error"] == "generator fit failed: no graph"
    assert row["search"] == "causalmixft/sklearn__wine/fold0"
    assert progress.trials["failed"] == 4
    assert run.searcher.suggest("t0") == "FINISHED"
