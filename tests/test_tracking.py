"""``tracking:``: a real sweep logs one MLflow run per trial (its hyperparameters and its
evaluation curve) in every Tune run of the sweep, W&B writes offline runs, a bad section is
refused in one line naming the field, and tracking never changes a cache key."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import pytest

import engine.execution.tune_run
from engine.core.errors import SpecError
from engine.execution.orchestrate import run_sweep
from engine.plan.sweep_plan import make_plan
from engine.spec.sweep_file import load_spec, parse_spec
from engine.spec.tracking import installed
from tests.conftest import small_spec, write_yaml

FINETUNE = {"steps": 6, "eval_every": 2, "patience": 10, "episode_rows": 48}
CONFIG_PARAMS = {"dataset", "fold", "method", "generator", "synthetic_scale", "mix_ratio",
                 "n_train", "seed", "model", "steps", "lr", "eval_every", "episode_rows"}


def _tracked(tmp_path: Path, tracking: dict, **overrides: object) -> dict:
    return small_spec(tmp_path, methods=["finetune"], finetune=FINETUNE, tracking=tracking,
                      **overrides)


@pytest.fixture(scope="module")
def mlflow_sweep(ray_local, tmp_path_factory):
    """Two trials, each in its own Tune run (``TUNE_PART`` = 1), logged to a file store."""
    tmp = tmp_path_factory.mktemp("mlflow")
    uri = f"file:{tmp / 'mlruns'}"
    spec = parse_spec(_tracked(tmp, {"mlflow": {"tracking_uri": uri}}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine.execution.tune_run, "TUNE_PART", 1)
        sweep_dir = run_sweep(spec, report=False)
    return tmp, uri, sweep_dir


def _runs(uri: str, experiment: str) -> list:
    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id])


def test_one_mlflow_run_per_trial_with_params_and_curve(mlflow_sweep):
    from mlflow.tracking import MlflowClient

    _, uri, sweep_dir = mlflow_sweep
    res = pd.read_parquet(sweep_dir / "results.parquet")
    assert len(res) == 2 and (res["status"] == "ok").all(), res["error"].tolist()
    runs = _runs(uri, "mini")  # the experiment defaults to the sweep name
    assert sorted(r.info.run_name for r in runs) == sorted(res["trial_id"].str.replace("/", "_"))
    client = MlflowClient(uri)
    for run in runs:
        row = res[res["trial_id"] == run.data.params["trial_id"]].iloc[0]
        assert run.info.status == "FINISHED"
        assert CONFIG_PARAMS <= set(run.data.params), sorted(run.data.params)
        assert run.data.params["dataset"] == row["dataset"]
        assert run.data.params["method"] == "finetune" and run.data.params["steps"] == "6"
        curve = client.get_metric_history(run.info.run_id, "val_roc_auc")
        assert len(curve) > 1 and len({m.step for m in curve}) == len(curve)
        assert {m.step for m in curve} == {0, 2, 4, 6}  # the evaluations' fine-tuning steps
        assert run.data.metrics["test_roc_auc"] == pytest.approx(row["test_roc_auc"])
        assert run.data.metrics["selected_val_roc_auc"] == pytest.approx(row["val_roc_auc"])
        assert run.data.tags["causalmix.sweep"] == "mini"


def test_changed_tracking_reruns_nothing(mlflow_sweep, capsys):
    tmp, uri, _ = mlflow_sweep
    moved = parse_spec(_tracked(tmp, {"mlflow": {"tracking_uri": uri, "experiment": "other"}}))
    plain = parse_spec(_tracked(tmp, None))
    assert [t.key for t in make_plan(moved).trials] == [t.key for t in make_plan(plain).trials]
    run_sweep(moved, report=False)
    assert "2 reused, 0 to run" in capsys.readouterr().out
    assert _runs(uri, "other") == []  # reused trials are not logged again


def test_wandb_offline_writes_a_run_per_trial(ray_local, tmp_path):
    pytest.importorskip("wandb", reason="wandb is not installed")
    spec = parse_spec(_tracked(tmp_path, {"wandb": {"project": "p", "mode": "offline",
                                                    "dir": str(tmp_path / "wb")}},
                               datasets=["sklearn/iris"]))
    sweep_dir = run_sweep(spec, report=False)
    assert (pd.read_parquet(sweep_dir / "results.parquet")["status"] == "ok").all()
    runs = list((tmp_path / "wb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    log = next(runs[0].glob("*.wandb")).read_bytes()  # the run's records, offline
    assert all(key in log for key in (b"synthetic_scale", b"eval_test_roc_auc",
                                      b"selected_val_roc_auc"))


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    t = parse_spec(_tracked(tmp_path, {"mlflow": {"tracking_uri": "./mlruns"}})).tracking
    assert (t.backend, t.experiment, t.tracking_uri) == ("mlflow", "mini",
                                                        (tmp_path / "mlruns").as_uri())
    assert parse_spec(_tracked(tmp_path, {"mlflow": None})).tracking.tracking_uri is None
    if installed("wandb"):
        t = parse_spec(_tracked(tmp_path, {"wandb": {"project": "p"}})).tracking
        assert (t.project, t.group, t.mode) == ("p", "mini", None)
    assert parse_spec(small_spec(tmp_path)).tracking is None


@pytest.mark.parametrize("tracking, field", [
    ({"mlflow": {}, "wandb": {"project": "p"}}, "tracking"),
    ({}, "tracking"),
    ("mlflow", "tracking"),
    ({"neptune": {}}, "tracking.neptune"),
    ({"mlflow": ["file:/x"]}, "tracking.mlflow"),
    ({"mlflow": {"uri": "file:/x"}}, "tracking.mlflow.uri"),
    ({"mlflow": {"tracking_uri": 5}}, "tracking.mlflow.tracking_uri"),
    ({"mlflow": {"experiment": ["a"]}}, "tracking.mlflow.experiment"),
    ({"wandb": {"project": "p", "mode": "cloud"}}, "tracking.wandb.mode"),
    ({"wandb": {"project": "p", "entity": "me"}}, "tracking.wandb.entity"),
    ({"wandb": {}}, "tracking.wandb.project"),
])
def test_bad_section_is_refused_naming_the_field(tmp_path, monkeypatch, tracking, field):
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    monkeypatch.setitem(sys.modules, "wandb", sys.modules.get("wandb") or object())
    path = write_yaml(tmp_path / "bad.yaml", _tracked(tmp_path, tracking))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value).startswith(f"{path}: field '{field}': ")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("backend", ["mlflow", "wandb"])
def test_missing_package_names_the_extra(tmp_path, monkeypatch, backend):
    monkeypatch.setitem(sys.modules, backend, None)  # as if not installed
    section = {"project": "p"} if backend == "wandb" else {}
    with pytest.raises(SpecError) as err:
        parse_spec(_tracked(tmp_path, {backend: section}), source="s.yaml")
    msg = str(err.value)
    assert msg.startswith(f"s.yaml: field 'tracking.{backend}': ") and "\n" not in msg
    assert f"causalmix-sweep[{backend}]" in msg


def test_wandb_online_without_a_key_fails_in_one_line(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="wandb is not installed")
    from engine.core.errors import CausalMixError
    from engine.execution.tracking import tracking_callbacks
    from engine.spec.tracking import TrackingSpec

    for var in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_SETUP_API_KEY_HOOK"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc login
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path))
    with pytest.raises(CausalMixError) as err:
        tracking_callbacks(TrackingSpec(backend="wandb", project="p", group="g"), "mini")
    assert str(err.value).startswith("tracking.wandb: No WandB API key found")
    assert "\n" not in str(err.value) and "mode: offline" in str(err.value)
