"""The studies resume across sessions from their committed tables (``--reuse-from``), which
match trials by key: a change to what enters a cache key would silently rerun all of a study.
Every committed row must be a planned trial under its current key, and the scaling study's
keys are pinned; a deliberate change updates the digest (and the study reruns, as a new sweep
if its results are published)."""

from __future__ import annotations

import hashlib

import pytest

from engine.plan.sweep_plan import make_plan
from engine.spec.sweep_file import load_spec
from tests.conftest import REPO, SHARED_DATASETS

STUDY = REPO / "sweeps" / "study_scaling.yaml"
PINNED = "6d8f5bd285991cb158c0bba1fcbb17352d812250223c46fad45ae62ee245dc72"


@pytest.mark.skipif(not SHARED_DATASETS.is_dir(), reason=f"{SHARED_DATASETS} is absent")
def test_scaling_study_keys_are_unchanged(monkeypatch):
    monkeypatch.setenv("CAUSALMIX_DATA", str(SHARED_DATASETS))
    plan = make_plan(load_spec(STUDY))
    lines = sorted(f"{t.trial_id} {t.key}" for t in plan.trials)
    assert len(lines) == 4125
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    assert digest == PINNED, ("the scaling study's trial keys changed: its committed tables "
                              "(docs/study/scaling) would no longer be reused")


@pytest.mark.skipif(not SHARED_DATASETS.is_dir(), reason=f"{SHARED_DATASETS} is absent")
@pytest.mark.parametrize("sweep, tables", [
    ("study_scaling.yaml", "study/scaling"),
    ("shift.yaml", "study_shift/tables"),
    ("imbalance.yaml", "study_imbalance/tables"),
])
def test_committed_study_rows_are_planned_trials(monkeypatch, sweep, tables):
    """Every committed row of each study is a planned trial under its current key, so all of
    them resume (``--reuse-from``) instead of running again."""
    import pandas as pd

    monkeypatch.setenv("CAUSALMIX_DATA", str(SHARED_DATASETS))
    plan = {t.trial_id: t.key for t in make_plan(load_spec(REPO / "sweeps" / sweep)).trials}
    rows = pd.read_parquet(REPO / "docs" / tables / "results.parquet",
                           columns=["trial_id", "trial_key", "status"])
    assert rows["trial_id"].is_unique and set(rows["status"]) == {"ok"}
    assert all(plan.get(i) == k for i, k in zip(rows["trial_id"], rows["trial_key"]))
