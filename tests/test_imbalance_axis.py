"""``imbalance: {minority_share: ...}`` as a fold axis: exact minority counts in the n_train
rows, test rows untouched, its own trial identity and keys, refused when it cannot be met."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.core.errors import SpecError
from engine.folds.fold_data import load_fold
from engine.plan.sweep_plan import make_plan
from engine.spec.cache_keys import fold_inputs
from engine.spec.sweep_file import parse_spec
from tests.conftest import small_spec, write_yaml

SHARES = [0.05, 0.2]


def _spec(tmp_path, **overrides):
    base = dict(datasets=["sklearn/breast_cancer"], folds=2, n_train=100,
                methods=["finetune"], finetune={"steps": 2, "eval_every": 1, "patience": 1,
                                                "episode_rows": 32})
    return small_spec(tmp_path, **{**base, **overrides})


def _folds(plan):
    return {(t.fold.fold, t.fold.minority_share): t.fold for t in plan.trials}


def test_minority_count_exact_and_test_rows_untouched(tmp_path):
    plain = make_plan(parse_spec(_spec(tmp_path)))
    plan = make_plan(parse_spec(_spec(tmp_path, imbalance={"minority_share": SHARES})))
    assert len(plan.trials) == 2 * len(plain.trials)
    base = {k[0]: load_fold(ref) for k, ref in _folds(plain).items()}
    for (fold, share), ref in _folds(plan).items():
        data = load_fold(ref)
        y = data.dataset.label_codes()
        minority = int(np.argmin(np.bincount(y)))
        drawn = np.concatenate([data.split.train, data.split.val])
        assert len(drawn) == 100 and len(np.unique(drawn)) == 100
        assert abs(int((y[drawn] == minority).sum()) - round(share * 100)) <= 1
        assert abs((y[data.split.val] == minority).mean() - share) < 0.1  # shares it
        assert np.array_equal(data.split.test, base[fold].split.test)
        assert not set(drawn) & set(data.split.test)


def test_share_is_trial_identity_and_key_only_when_set(tmp_path):
    plain = make_plan(parse_spec(_spec(tmp_path)))
    plan = make_plan(parse_spec(_spec(tmp_path, imbalance={"minority_share": SHARES})))
    assert "imbalance" not in fold_inputs(plain.trials[0].fold)
    ids = {t.trial_id for t in plan.trials}
    assert len(ids) == len(plan.trials)
    assert "finetune/sklearn__breast_cancer/fold0_minority0.05/scale0_mix0_seed0" in ids
    keys = {t.key for t in plan.trials} | {t.key for t in plain.trials}
    assert len(keys) == len(plan.trials) + len(plain.trials)
    one = make_plan(parse_spec(_spec(tmp_path, imbalance={"minority_share": 0.05})))
    assert one.trials[0].inputs["fold"]["imbalance"] == {"minority_share": 0.05}
    assert one.trials[0].key in {t.key for t in plan.trials}


def test_as_is_is_the_unimbalanced_fold_with_its_keys(tmp_path):
    plain = make_plan(parse_spec(_spec(tmp_path)))
    plan = make_plan(parse_spec(_spec(tmp_path, imbalance={"minority_share": [0.05, "as_is"]})))
    assert len(plan.trials) == 2 * len(plain.trials)
    as_is = {t.key: t for t in plan.trials if t.fold.minority_share is None}
    assert set(as_is) == {t.key for t in plain.trials}
    assert {t.trial_id for t in as_is.values()} == {t.trial_id for t in plain.trials}


def test_fits_are_per_share(tmp_path):
    spec = parse_spec(_spec(tmp_path, methods=["causalmixft"], folds=1,
                            imbalance={"minority_share": SHARES}))
    plan = make_plan(spec)
    assert len(plan.fits) == 2 and len({f.out_dir for f in plan.fits}) == 2


@pytest.mark.parametrize(("value", "field", "words"), [
    (0.7, "imbalance.minority_share", "(0, 0.5]"),
    (0, "imbalance.minority_share", "(0, 0.5]"),
    ([0.1, -0.2], "imbalance.minority_share[1]", "(0, 0.5]"),
    (0.01, "imbalance.minority_share", "at least 2"),
    ("lots", "imbalance.minority_share", "a number"),
    ([], "imbalance.minority_share", "non-empty"),
    ([0.1, "most"], "imbalance.minority_share[1]", "as_is"),
])
def test_bad_shares_are_named(tmp_path, value, field, words):
    with pytest.raises(SpecError) as err:
        parse_spec(_spec(tmp_path, imbalance={"minority_share": value}), source="s.yaml")
    assert err.value.field == field and words in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_imbalance_field_is_named(tmp_path):
    with pytest.raises(SpecError) as err:
        parse_spec(_spec(tmp_path, imbalance={"minority_share": 0.1, "ratio": 3}))
    assert err.value.field == "imbalance.ratio"


def test_validate_refuses_a_share_the_data_cannot_give(tmp_path, capsys):
    from engine.cli.commands import main

    # breast_cancer: 212 malignant rows, ~159 outside a test fold of 4; 0.5 x 400 needs 200
    path = write_yaml(tmp_path / "s.yaml", _spec(tmp_path, n_train=400, outer_folds=4,
                                                 imbalance={"minority_share": 0.5}))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "imbalance.minority_share" in err and "minority-class rows" in err
    assert len(err.splitlines()) == 1


def test_trials_record_minority_counts(tmp_path):
    from engine.trials.trial import run_trial

    plan = make_plan(parse_spec(_spec(tmp_path, imbalance={"minority_share": SHARES})))
    for job in plan.trials:
        row = run_trial(job)["result"]
        assert row["status"] == "ok", row["error"]
        share = job.fold.minority_share
        assert row["minority_share"] == share and row["minority_class"] == "0"
        assert abs(row["n_minority_train"] - round(share * 100)) <= 1
    plain = make_plan(parse_spec(_spec(tmp_path, folds=1))).trials[0]
    row = run_trial(plain)["result"]
    assert np.isnan(row["minority_share"]) and row["n_minority_train"] > 30  # ~37 % malignant


@pytest.mark.slow
def test_sweep_records_minority_counts(ray_local, tmp_path):
    from engine.execution.orchestrate import run_sweep

    spec = parse_spec(_spec(tmp_path, folds=1, imbalance={"minority_share": SHARES}))
    sweep_dir = run_sweep(spec, report=False)
    res = pd.read_parquet(sweep_dir / "results.parquet")
    assert (res["status"] == "ok").all(), res["error"].tolist()
    assert len(res) == 2 and sorted(res["minority_share"]) == SHARES
    for _, row in res.iterrows():
        assert abs(row["n_minority_train"] - round(row["minority_share"] * 100)) <= 1
        assert row["minority_class"] == "0"  # malignant, the rarer class
        assert f"_minority{row['minority_share']:g}/" in row["trial_id"]
        assert np.isfinite(row["test_pr_auc"]) and np.isfinite(row["zero_shot_val_f1_minority"])
    ev = pd.read_parquet(sweep_dir / "evaluations.parquet")
    assert {"val_balanced_accuracy", "test_f1_minority", "test_pr_auc"} <= set(ev.columns)


def test_report_keeps_shares_apart(tmp_path):
    from engine.report.demo import demo_tables
    from engine.report.load import load_results

    res, _ = demo_tables(n_datasets=1, n_folds=1)
    both = pd.concat([res.assign(minority_share=0.05), res.assign(minority_share=float("nan")),
                      res.assign(minority_share=0.2)], ignore_index=True)
    both["trial_id"] = both["trial_id"] + both.index.astype(str)
    (tmp_path / "s").mkdir()
    both.to_parquet(tmp_path / "s" / "results.parquet", index=False)
    names = set(load_results([tmp_path / "s"])["dataset"])
    assert names == {"ds0", "ds0 [minority 0.05]", "ds0 [minority 0.2]"}
