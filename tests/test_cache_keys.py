"""Cached fits and trials are keyed on everything that made them: a rerun with one thing
changed recomputes exactly what depends on it, and its results equal a fresh run's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from engine.core.errors import CausalMixError
from engine.execution.orchestrate import run_sweep
from engine.folds.fold_data import load_fold
from engine.plan.sweep_plan import make_plan
from engine.spec.sweep_file import parse_spec
from tests.conftest import small_spec

TIMING = ["seconds", "started_at", "finished_at", "finetune_seconds", "scoring_seconds",
          "worker"]  # where and when, not what


def _spec(tmp: Path, store: str, **overrides: Any):
    base = small_spec(tmp, storage=str(tmp / store), datasets=["sklearn/wine"],
                      methods=["finetune", "tableaugment"], n_train=48,
                      finetune={"steps": 4, "eval_every": 2, "patience": 2, "episode_rows": 32})
    base.update(overrides)
    return parse_spec(base)


def _results(sweep_dir: Path) -> pd.DataFrame:
    res = pd.read_parquet(sweep_dir / "results.parquet").drop(columns=TIMING)
    return res.sort_values("trial_id").reset_index(drop=True)


def _stamps(sweep_dir: Path, pattern: str) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in sweep_dir.glob(pattern)}


def _fresh_equal(tmp: Path, sweep_dir: Path, **overrides: Any) -> None:
    fresh = run_sweep(_spec(tmp, "fresh-" + "-".join(sorted(overrides)), **overrides),
                      report=False)
    pd.testing.assert_frame_equal(_results(sweep_dir), _results(fresh))


@pytest.fixture(scope="module")
def seed0(ray_local, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("keys")
    sweep_dir = run_sweep(_spec(tmp, "shared"), report=False)
    return tmp, sweep_dir


def test_new_seed_on_same_storage_never_reuses_other_rows(seed0):
    tmp, sweep_dir = seed0
    spec1 = _spec(tmp, "shared", seed=1)
    run_sweep(spec1, report=False)
    res = _results(sweep_dir)
    assert len(res) == 2 and (res["status"] == "ok").all() and (res["seed"] == 1).all()
    for fit in make_plan(spec1).fits:
        seen = set(json.loads((Path(fit.out_dir) / "fit.json").read_text())["train_rows"])
        split = load_fold(fit.fold).split
        assert seen == set(split.train.tolist())
        assert not seen & (set(split.val.tolist()) | set(split.test.tolist()))
    _fresh_equal(tmp, sweep_dir, seed=1)


def test_finetune_setting_change_reruns_trials_not_fits(seed0):
    tmp, sweep_dir = seed0
    fits = _stamps(sweep_dir, "synthetic/**/synthetic.parquet")
    trials = _stamps(sweep_dir, "trials/**/result.json")
    steps = {"steps": 6, "eval_every": 2, "patience": 2, "episode_rows": 32}
    run_sweep(_spec(tmp, "shared", seed=1, finetune=steps), report=False)
    assert _stamps(sweep_dir, "synthetic/**/synthetic.parquet") == fits
    seed1 = {p: s for p, s in _stamps(sweep_dir, "trials/**/result.json").items()
             if p.parent.name.endswith("seed1")}
    assert all(trials.get(p) != s for p, s in seed1.items()), "a trial was not rerun"
    assert (_results(sweep_dir)["steps_run"] == 6).all()
    _fresh_equal(tmp, sweep_dir, seed=1, finetune=steps)


def test_generator_option_change_refits_only_that_method(seed0):
    tmp, sweep_dir = seed0
    finetune_trial = sweep_dir / "trials" / "finetune"
    before = _stamps(finetune_trial, "**/result.json")
    methods = ["finetune", {"name": "tableaugment", "options": {"k": 3}}]
    run_sweep(_spec(tmp, "shared", methods=methods), report=False)
    assert _stamps(finetune_trial, "**/result.json") == before
    res = _results(sweep_dir)
    assert (res["status"] == "ok").all()
    fit_ids = set(res.loc[res["method"] == "tableaugment", "fit_id"])
    options = [json.loads((sweep_dir / "synthetic" / f / "fit.json").read_text())["options"]
               for f in fit_ids]
    assert options == [{"k": 3}]
    _fresh_equal(tmp, sweep_dir, methods=methods)


def test_fold_setting_change_refits_and_reruns(seed0):
    tmp, sweep_dir = seed0
    run_sweep(_spec(tmp, "shared", val_fraction=0.3), report=False)
    res = _results(sweep_dir)
    assert (res["status"] == "ok").all() and (res["n_val"] == 14).all()
    _fresh_equal(tmp, sweep_dir, val_fraction=0.3)


def test_fit_with_other_training_rows_is_refused(seed0):
    tmp, sweep_dir = seed0
    spec = _spec(tmp, "shared", val_fraction=0.3)
    plan = make_plan(spec)
    fit = next(f for f in plan.fits)
    meta_path = Path(fit.out_dir) / "fit.json"
    meta = json.loads(meta_path.read_text())
    meta["train_rows"] = meta["train_rows"][1:] + [10**6]
    meta_path.write_text(json.dumps(meta))
    trial = next(t for t in plan.trials if t.generator)
    (sweep_dir / "trials" / trial.trial_id / "result.json").unlink()
    with pytest.raises(CausalMixError, match="other training rows"):
        run_sweep(spec, report=False)


def test_mixed_key_follows_its_members_versions(tmp_path, monkeypatch):
    """A member plug-in whose rows change (its VERSION bumped) changes the mixed fit's key."""
    from engine.generators import GENERATORS

    def mixed_key() -> str:
        plan = make_plan(_spec(tmp_path, "m", methods=["mixed"]))
        return next(f.key for f in plan.fits if f.generator == "mixed")

    before = mixed_key()
    scm = GENERATORS.get("scm")
    monkeypatch.setattr(scm, "VERSION", getattr(scm, "VERSION", 1) + 1)
    assert mixed_key() != before


def test_model_identity_carries_the_backend_version():
    """A backend that declares ``VERSION`` (the PFN: 2 since category columns are
    target-encoded) puts it in every trial key, so results of an older engine are rerun."""
    from engine.spec.cache_keys import model_identity

    ident = model_identity({"name": "pfn"})
    assert ident["model_version"] == 2 and ident["weights_sha256"]
    assert "model_version" not in model_identity({"name": "mitra", "checkpoint": "/nowhere"})


def test_a_relative_checkpoint_is_read_from_the_sweep_folder_and_keyed_by_content(tmp_path):
    """``model.checkpoint: models/w.pt`` resolves beside the sweep file; the key names the
    file and its content, not the folder it sits in, so a moved checkout keeps its trials."""
    import shutil

    from engine.models.pfn import bundled_checkpoint_path
    from engine.spec.cache_keys import model_identity
    from engine.spec.sweep_file import load_spec

    keys = []
    for where in ("a", "b"):
        (tmp_path / where / "models").mkdir(parents=True)
        shutil.copy(bundled_checkpoint_path(), tmp_path / where / "models" / "w.pt")
        sweep = tmp_path / where / "s.yaml"
        sweep.write_text("name: s\ndatasets: [sklearn/wine]\nmethods: [finetune]\n"
                         "model: {name: pfn, checkpoint: models/w.pt}\n")
        spec = load_spec(sweep)
        assert spec.model["checkpoint"] == str((tmp_path / where / "models" / "w.pt").resolve())
        keys.append(model_identity(spec.model))
    assert keys[0] == keys[1] and keys[0]["checkpoint"] == "w.pt"
