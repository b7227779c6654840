"""A study split over runs: ``--methods`` runs part of a plan, ``--reuse-from`` restores
finished trials from exported tables (a new storage, as in a fresh checkout) instead of
rerunning them; a row under another key is rerun."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from engine.core.errors import CausalMixError
from engine.execution.orchestrate import run_sweep
from engine.spec.sweep_file import load_spec
from tests.conftest import small_spec, write_yaml


def _records(sweep_dir) -> dict[str, dict]:
    return {str(p.parent.relative_to(sweep_dir / "trials")): json.loads(p.read_text())
            for p in (sweep_dir / "trials").glob("**/result.json")}


def test_methods_then_reuse_from_exported_tables(tmp_path, ray_local):
    spec = small_spec(tmp_path, datasets=["sklearn/breast_cancer"])
    path = write_yaml(tmp_path / "mini.yaml", spec)
    first = run_sweep(load_spec(path), report=False, methods=["finetune", "scm"])
    status = json.loads((first / "status.json").read_text())
    assert status["finished"] is False  # causalmixft is still to run
    assert {r["result"]["method"] for r in _records(first).values()} == {"finetune", "scm"}
    assert not (first / "synthetic" / "causalmixft").exists()

    exported = tmp_path / "exported"  # what a study commits: the tables, not the folders
    exported.mkdir()
    for name in ("results.parquet", "evaluations.parquet"):
        shutil.copy(first / name, exported / name)
    res = pd.read_parquet(exported / "results.parquet")
    assert (res["trial_key"].str.len() > 0).all()
    res.loc[res["method"] == "scm", "trial_key"] = "stale"  # as if made from other inputs
    res.to_parquet(exported / "results.parquet")

    fresh = load_spec(path, storage=str(tmp_path / "fresh"))
    second = run_sweep(fresh, report=False, reuse_from=exported)
    recs = _records(second)
    assert len(recs) == 3 and all(r["result"]["status"] == "ok" for r in recs.values())
    restored = {t for t, r in recs.items() if "restored_from" in r}
    assert restored == {t for t, r in recs.items() if r["result"]["method"] == "finetune"}
    old = pd.read_parquet(first / "results.parquet").set_index("trial_id")
    new = pd.read_parquet(second / "results.parquet").set_index("trial_id")
    ft = old.index[old["method"] == "finetune"]
    pd.testing.assert_series_equal(new.loc[ft, "test_roc_auc"], old.loc[ft, "test_roc_auc"])
    evals_old = pd.read_parquet(first / "evaluations.parquet")
    evals_new = pd.read_parquet(second / "evaluations.parquet")
    assert len(evals_new[evals_new["trial_id"].isin(ft)]) == len(
        evals_old[evals_old["trial_id"].isin(ft)])
    assert json.loads((second / "status.json").read_text())["finished"] is True


def test_unknown_method_and_missing_tables_are_one_line(tmp_path, ray_local):
    path = write_yaml(tmp_path / "mini.yaml", small_spec(tmp_path))
    with pytest.raises(CausalMixError, match="--methods: 'ctgan' is not a method"):
        run_sweep(load_spec(path), report=False, methods=["ctgan"])
    with pytest.raises(CausalMixError, match="no results.parquet"):
        run_sweep(load_spec(path), report=False, reuse_from=tmp_path / "nowhere")
