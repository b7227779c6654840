"""Fits and trials run at the same time; a fit worker killed mid-fit is retried; warm trial
workers share the zero-shot baseline; the run's exit status reflects trial errors."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pandas as pd
import pytest

from engine.cli import main
from engine.execution.orchestrate import run_sweep
from engine.spec.sweep_file import parse_spec
from tests.conftest import small_spec, write_yaml

SLOW_SCM = {"name": "scm", "options": {"bootstrap": 8}}  # fits slow enough to overlap trials


@pytest.fixture(scope="module")
def pipelined(ray_local, tmp_path_factory):
    """Three datasets, one fit at a time: the last fit lands well after the first trials."""
    tmp = tmp_path_factory.mktemp("pipe")
    spec = parse_spec(small_spec(
        tmp, datasets=["sklearn/breast_cancer", "sklearn/wine", "sklearn/iris"],
        methods=["finetune", SLOW_SCM], resources={"max_concurrent_fits": 1}))
    return run_sweep(spec, report=False)


def test_trials_finish_before_the_last_fit(pipelined):
    res = pd.read_parquet(pipelined / "results.parquet")
    fits = pd.read_parquet(pipelined / "fits.parquet")
    assert (res["status"] == "ok").all() and len(fits) == 3
    last_fit = fits["finished_at"].max()
    assert (res["finished_at"] < last_fit).sum() >= 2, "no trial ran while fits were running"
    synthetic = res[res["method"] == "scm"].merge(fits, on="fit_id", suffixes=("", "_fit"))
    assert (synthetic["started_at"] >= synthetic["finished_at_fit"]).all()
    assert (synthetic["finished_at"] < last_fit).any(), "no fitted trial ran before the last fit"
    assert set(res["device"]) == {"cpu"}
    assert (res["started_at"] <= res["finished_at"]).all()


def test_zero_shot_baseline_is_computed_once_per_fold(pipelined):
    res = pd.read_parquet(pipelined / "results.parquet")
    assert len(list((pipelined / "baselines").glob("*.json"))) == 3
    per_fold = res.groupby("dataset")["zero_shot_test_roc_auc"].nunique()
    assert (per_fold == 1).all()
    assert (res.groupby("dataset")["scoring_seconds"].apply(lambda s: (s > 0).sum()) <= 1).all()


def _kill_first_fit_worker(stop: threading.Event, killed: list[int]) -> None:
    while not stop.is_set() and not killed:
        out = subprocess.run(["pgrep", "-f", "ray::_fit_task"], capture_output=True, text=True)
        pids = [int(p) for p in out.stdout.split()]
        if pids:
            time.sleep(0.5)  # mid-fit, not at start-up
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])
        time.sleep(0.2)


def test_fit_worker_killed_mid_fit_is_retried(ray_local, tmp_path):
    spec = parse_spec(small_spec(tmp_path, datasets=["sklearn/breast_cancer"],
                                 methods=["finetune", SLOW_SCM]))
    stop, killed = threading.Event(), []
    watcher = threading.Thread(target=_kill_first_fit_worker, args=(stop, killed), daemon=True)
    watcher.start()
    try:
        sweep_dir = run_sweep(spec, report=False)
    finally:
        stop.set()
        watcher.join()
    assert killed, "no fit worker was seen"
    res = pd.read_parquet(sweep_dir / "results.parquet")
    assert len(res) == 2 and (res["status"] == "ok").all(), res["error"].tolist()


def test_run_exits_non_zero_when_a_trial_failed(ray_local, tmp_path, capsys):
    """A dataset whose fold holds one class fails its trials: rows say why, exit status 1."""
    import numpy as np

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=60), "label": ["x"] * 58 + ["y"] * 2})
    frame.to_csv(tmp_path / "rare.csv", index=False)
    spec = write_yaml(tmp_path / "s.yaml", small_spec(
        tmp_path, datasets=["sklearn/wine", {"name": "rare", "path": str(tmp_path / "rare.csv"),
                                             "target": "label"}],
        n_train=40, methods=["finetune"]))
    code = main(["run", str(spec), "--no-report"])
    err = capsys.readouterr().err
    assert code == 1
    assert "1 of 2 trials ended in error" in err
    res = pd.read_parquet(tmp_path / "store" / "mini" / "results.parquet")
    assert res.set_index("dataset").loc["rare", "status"] == "error"
    status = main(["status", str(tmp_path / "store" / "mini")])
    out = capsys.readouterr().out
    assert status == 0 and "finished" in out and "trials 1/2 done" in out


def test_a_sweep_runs_as_successive_tune_runs(ray_local, tmp_path, monkeypatch):
    """Beyond ``TUNE_PART`` trials the sweep goes on in further Tune runs over the same searcher:
    every planned trial runs once, and each Tune run holds at most ``TUNE_PART`` trials."""
    import engine.execution.tune_run

    monkeypatch.setattr(engine.execution.tune_run, "TUNE_PART", 2)
    spec = parse_spec(small_spec(
        tmp_path, datasets=["sklearn/breast_cancer", "sklearn/wine"],
        methods=["finetune", "tableaugment"], grid={"synthetic_scale": [0.5, 1.0],
                                                    "mix_ratio": [0.5]}))
    out = run_sweep(spec, report=False)
    res = pd.read_parquet(out / "results.parquet")
    assert len(res) == 6 and (res["status"] == "ok").all() and res["trial_id"].is_unique
    runs = sorted(p.name for p in (out / "tune").iterdir() if p.is_dir())
    assert len(runs) == 3 and runs[0].startswith("run-") and runs[2].endswith("-part3")
    per_run = [len([d for d in (out / "tune" / r).iterdir() if d.is_dir()]) for r in runs]
    assert per_run == [2, 2, 2]
