"""A sweep killed mid-run resumes without losing or repeating finished work (slow: real
``causalmix run`` processes, each starting its own local Ray)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from tests.conftest import REPO, small_spec, write_yaml


@pytest.mark.slow
def test_killed_sweep_resumes(tmp_path):
    spec = small_spec(tmp_path, grid={"synthetic_scale": [0.5, 1.0], "mix_ratio": [0.25, 0.5]})
    path = write_yaml(tmp_path / "kill.yaml", spec)
    sweep_dir = tmp_path / "store" / "mini"
    cmd = [sys.executable, "-m", "engine.cli", "run", str(path), "--num-cpus", "2", "--no-report"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 400
    finished: list = []
    while time.time() < deadline and len(finished) < 3 and proc.poll() is None:
        time.sleep(2)
        finished = list((sweep_dir / "trials").glob("**/result.json"))
    assert proc.poll() is None, "the sweep ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    stamps = {p: p.stat().st_mtime_ns for p in finished}
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    res = pd.read_parquet(sweep_dir / "results.parquet")
    assert len(res) == 2 * (1 + 4 + 2) and (res["status"] == "ok").all()
    for p, stamp in stamps.items():
        assert p.stat().st_mtime_ns == stamp, f"{p} was recomputed after the kill"
    assert res["trial_id"].is_unique


@pytest.mark.slow
def test_killed_search_resumes(tmp_path):
    """A search sweep killed mid-run: the rerun tells the studies what finished, asks again
    (same point, same slot) what did not, and ends with exactly the budget per study."""
    import json

    import optuna

    search = {"mode": "optuna", "budget": 5, "max_concurrent": 2, "seed": 1,
              "space": {"synthetic_scale": [0.5, 2], "mix_ratio": [0.1, 0.9],
                        "lr": [1e-5, 1e-4]},
              "scheduler": "asha", "grace_period": 3, "reduction_factor": 2}
    spec = small_spec(tmp_path, methods=["finetune", "causalmixft"], search=search)
    path = write_yaml(tmp_path / "kill_search.yaml", spec)
    sweep_dir = tmp_path / "store" / "mini"
    cmd = [sys.executable, "-m", "engine.cli", "run", str(path), "--num-cpus", "2", "--no-report"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)

    def final_records() -> list:
        out = []
        for p in (sweep_dir / "trials").glob("**/search*/result.json"):
            try:
                if json.loads(p.read_text())["result"]["status"] == "ok":
                    out.append(p)
            except (OSError, ValueError, KeyError):
                pass
        return out

    deadline = time.time() + 400
    finished: list = []
    while time.time() < deadline and len(finished) < 4 and proc.poll() is None:
        time.sleep(1)
        finished = final_records()
    assert proc.poll() is None, "the sweep ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    stamps = {p: p.stat().st_mtime_ns for p in final_records()}
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    res = pd.read_parquet(sweep_dir / "results.parquet")
    assert len(res) == 2 * 5 * 2 and (res["status"] == "ok").all() and res["trial_id"].is_unique
    for p, stamp in stamps.items():
        assert p.stat().st_mtime_ns == stamp, f"{p} was recomputed after the kill"
    storage = f"sqlite:///{sweep_dir}/search/optuna.db"
    for name in res["search"].unique():
        study = optuna.load_study(study_name=name, storage=storage)
        told = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
        assert len(told) == 5, name  # every slot told once; interrupted ones were asked again


@pytest.mark.slow
def test_ctrl_c_stops_the_sweep_now_and_keeps_what_finished(tmp_path):
    """One Ctrl-C (SIGINT): the run exits 130 soon, without first running the fits no trial
    has reached; the tables hold the trials that finished, and status is not 'finished'."""
    import json

    spec = small_spec(tmp_path, folds=4, methods=["finetune", "causalmixft", "scm", "tabebm"])
    path = write_yaml(tmp_path / "ctrl_c.yaml", spec)
    sweep_dir = tmp_path / "store" / "mini"
    cmd = [sys.executable, "-m", "engine.cli", "run", str(path), "--num-cpus", "2", "--no-report"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.time() + 400
    while time.time() < deadline and proc.poll() is None and not list(
            (sweep_dir / "trials").glob("**/result.json")):
        time.sleep(1)
    assert proc.poll() is None, "the sweep ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "run the same command again to resume" in err
    fits = list((sweep_dir / "synthetic").glob("**/fit.json"))
    assert len(fits) < 2 * 4 * 2, "every fit ran after the Ctrl-C"
    assert json.loads((sweep_dir / "status.json").read_text())["finished"] is False
    res = pd.read_parquet(sweep_dir / "results.parquet")
    records = list((sweep_dir / "trials").glob("**/result.json"))
    assert set(res.loc[res["status"] == "ok", "trial_id"]) >= {
        json.loads(p.read_text())["result"]["trial_id"] for p in records
        if json.loads(p.read_text())["result"]["status"] == "ok"}
