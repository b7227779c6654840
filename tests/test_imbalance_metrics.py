"""Metrics for imbalanced classification: equal to scikit-learn's on the same predictions;
selection by them; the report on another metric."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, balanced_accuracy_score, f1_score

from engine.core.errors import SpecError
from engine.spec.sweep_file import parse_spec
from engine.storage.results_schema import HIGHER_IS_BETTER, METRICS
from engine.trials.finetune import _better
from engine.trials.metrics import minority_class, scores
from tests.conftest import small_spec


def _predictions(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.choice(k, size=n, p=np.linspace(1, 3, k) / np.linspace(1, 3, k).sum())
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


@pytest.mark.parametrize("k", [2, 3, 5])
def test_new_metrics_equal_sklearn(k):
    y_train = np.array([0] * 30 + [1] * 10 + list(range(2, k)) * 20)  # class 1 is the rarest
    y, proba = _predictions(400, k, seed=k)
    minority = minority_class(y_train)
    assert minority == 1
    got = scores(y, proba, minority)
    pred = proba.argmax(axis=1)
    assert set(got) == set(METRICS) and set(HIGHER_IS_BETTER) == set(METRICS)
    assert got["f1_minority"] == pytest.approx(f1_score(y == 1, pred == 1))
    assert got["f1_minority"] == pytest.approx(
        f1_score(y, pred, labels=[1], average=None)[0])
    assert got["pr_auc"] == pytest.approx(average_precision_score(y == 1, proba[:, 1]))
    assert got["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert got["f1_macro"] == pytest.approx(f1_score(y, pred, average="macro"))


def test_minority_is_the_rarest_training_class_ties_to_the_smaller_label():
    assert minority_class(np.array([2, 2, 0, 0, 1, 1, 1])) == 0
    assert minority_class(np.array([0, 0, 0, 1])) == 1
    y, proba = _predictions(50, 2, seed=0)
    assert scores(y, proba)["pr_auc"] == pytest.approx(  # default: y's own minority
        average_precision_score(y == minority_class(y), proba[:, minority_class(y)]))


def test_scores_without_minority_rows_are_nan_not_errors():
    y = np.zeros(10, dtype=np.int64)
    proba = np.tile([0.7, 0.3], (10, 1))
    got = scores(y, proba, minority=1)
    assert np.isnan(got["pr_auc"])
    assert got["f1_minority"] == 0.0
    assert got["balanced_accuracy"] == 1.0


@pytest.mark.parametrize("by", ["f1_macro", "pr_auc", "balanced_accuracy"])
def test_select_by_accepts_imbalance_metrics(tmp_path, by):
    spec = parse_spec(small_spec(tmp_path, finetune={"select_by": by}))
    assert spec.finetune.select_by == by
    worse = dict.fromkeys(METRICS, 0.5)
    better = {**worse, by: 0.6, "roc_auc": 0.4}
    assert _better(better, worse, by) and not _better(worse, better, by)
    tie = {**worse, "log_loss": 0.4}
    assert _better(tie, worse, by)  # equal score: lower log loss wins


def test_bad_select_by_is_one_line_naming_the_field(tmp_path):
    with pytest.raises(SpecError) as err:
        parse_spec(small_spec(tmp_path, finetune={"select_by": "f1_minority_typo"}),
                   source="s.yaml")
    assert err.value.field == "finetune.select_by"
    assert "pr_auc" in str(err.value) and "\n" not in str(err.value)


def test_report_with_metric_writes_its_tables(tmp_path):
    from engine.cli.commands import main
    from engine.report.demo import write_demo_sweep

    sweep = write_demo_sweep(tmp_path / "demo", n_datasets=3, n_folds=2)
    assert main(["report", str(sweep), "--metric", "f1_minority"]) == 0
    out = sweep / "report_f1_minority"
    assert not (sweep / "report").exists()  # the default report is left alone
    assert not (sweep / "scaling_curves.csv").exists()
    paper = pd.read_csv(out / "paper_table.csv")
    assert {"finetune", "causalmixft"} <= set(paper["method"])
    results = pd.read_parquet(sweep / "results.parquet")
    ok = results[(results["status"] == "ok") & (results["method"] == "finetune")]
    gain = (ok["test_f1_minority"] / ok["zero_shot_test_f1_minority"] - 1) * 100
    row = paper.set_index("method").loc["finetune"]
    assert row["median_improvement_pct"] == pytest.approx(gain.median())
    curves = pd.read_csv(out / "scaling_curves.csv")
    ref = curves[curves["method"] == "finetune"].iloc[0]
    assert ref["median"] == pytest.approx(gain.median())
    tests = pd.read_csv(out / "friedman_nemenyi.csv")
    assert tests["metric"].tolist() == ["f1_minority"]
    assert (out / "report.html").is_file()


def test_report_metric_sign_for_losses(tmp_path):
    from engine.report.build import curve_column

    frame = pd.DataFrame({"test_log_loss": [0.4], "zero_shot_test_log_loss": [0.5]})
    out, column = curve_column(frame, "log_loss")
    assert out[column].iloc[0] == pytest.approx(20.0)  # lower loss: positive improvement
