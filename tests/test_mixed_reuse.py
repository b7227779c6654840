"""``mixed`` samples from its members' fits in the sweep instead of refitting them."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pandas as pd

from engine.execution.orchestrate import run_sweep
from engine.plan.sweep_plan import make_plan
from engine.spec.sweep_file import parse_spec
from tests.conftest import small_spec

MEMBERS = {"members": ["scm", "tableaugment"]}


def test_mixed_reuses_member_fits(ray_local, tmp_path):
    spec = parse_spec(small_spec(
        tmp_path, datasets=["sklearn/wine"], methods=["scm", "tableaugment",
                                                      {"name": "mixed", "options": MEMBERS}]))
    sweep_dir = run_sweep(spec, report=False)
    res = pd.read_parquet(sweep_dir / "results.parquet")
    assert (res["status"] == "ok").all(), res["error"].tolist()
    plan = make_plan(spec)
    mixed = next(f for f in plan.fits if f.generator == "mixed")
    members = {f.generator: f for f in plan.fits if f.generator != "mixed"}
    assert set(mixed.after) == {f.out_dir for f in members.values()}
    meta = json.loads((Path(mixed.out_dir) / "fit.json").read_text())
    assert meta["members"] == {"scm": "reused", "tableaugment": "reused"}
    for name, fit in members.items():
        member_meta = json.loads((Path(fit.out_dir) / "fit.json").read_text())
        assert member_meta["finished_at"] <= meta["started_at"]
        kept = pickle.loads(Path(fit.fitted_path).read_bytes())
        assert kept.name == name and list(kept.seen_index_) == member_meta["train_rows"]


def test_mixed_alone_fits_members_as_their_own_fits_would(ray_local, tmp_path):
    """Without the members' methods, mixed fits them itself, with the members' own seeds: its
    rows equal those of a sweep where the members' fits were reused."""
    alone = run_sweep(parse_spec(small_spec(
        tmp_path, storage=str(tmp_path / "alone"), datasets=["sklearn/wine"],
        methods=[{"name": "mixed", "options": MEMBERS}])), report=False)
    both = run_sweep(parse_spec(small_spec(
        tmp_path, storage=str(tmp_path / "both"), datasets=["sklearn/wine"],
        methods=["scm", "tableaugment", {"name": "mixed", "options": MEMBERS}])), report=False)
    rows = [pd.read_parquet(next((d / "synthetic" / "mixed").glob("**/synthetic.parquet")))
            for d in (alone, both)]
    pd.testing.assert_frame_equal(rows[0], rows[1])
