"""The report's Imbalance section against direct numpy/scipy computations."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from engine.report.export import Outputs
from engine.report.imbalance import (
    SUMMARY_METRICS,
    diffusion_twin,
    imbalance_paired,
    imbalance_summary,
    paired_stats,
    unit_values,
    write_imbalance_report,
)
from engine.report.scaling_stats_core import bootstrap_indices

METHODS = ["finetune", "causalmixft", "causalmixft_tabddpm"]
SHARES = [0.05, 0.2, np.nan]
FILES = ["imbalance_summary.csv", "imbalance_paired.csv", "imbalance_f1.png"]


def _results() -> pd.DataFrame:
    """3 datasets x 2 folds x (0.05, 0.2, as_is) x 3 methods x 2 seeds, random scores."""
    rng = np.random.default_rng(7)
    rows = []
    for d in ("a", "b", "c"):
        for fold in range(2):
            for share in SHARES:
                zero = {m: rng.uniform(0.2, 0.6) for m in SUMMARY_METRICS}
                for method in METHODS:
                    for seed in range(2):
                        row = dict(method=method, dataset=d, fold=fold, seed=seed,
                                   synthetic_scale=0.0 if method == "finetune" else 1.0,
                                   mix_ratio=0.0 if method == "finetune" else 0.5,
                                   status="ok", search="", minority_share=share)
                        for m in SUMMARY_METRICS:
                            row[f"zero_shot_test_{m}"] = zero[m]
                            row[f"test_{m}"] = zero[m] + rng.normal(0.02, 0.05)
                        rows.append(row)
    return pd.DataFrame(rows)


def _per_unit(results: pd.DataFrame, method: str, share: float, col: str) -> pd.Series:
    """Seed means per (dataset, fold), sorted, of one method and share (NaN: as_is)."""
    rows = results[results["method"] == method]
    rows = rows[rows["minority_share"].isna()] if np.isnan(share) else \
        rows[rows["minority_share"] == share]
    return rows.groupby(["dataset", "fold"])[col].mean().sort_index()


def _boot(values: np.ndarray) -> tuple[float, float]:
    draws = values[bootstrap_indices(len(values))].mean(axis=1)
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(low), float(high)


@pytest.mark.parametrize("share,label", [(0.05, "0.05"), (0.2, "0.2"), (np.nan, "as_is")])
def test_summary_means_and_cis_match_numpy(share, label):
    results = _results()
    summary = imbalance_summary(unit_values(results))
    assert set(summary["minority_share"]) == {"0.05", "0.2", "as_is"}
    row = summary[(summary["method"] == "causalmixft") & (summary["minority_share"] == label)
                  & (summary["metric"] == "f1_minority")].iloc[0]
    test = _per_unit(results, "causalmixft", share, "test_f1_minority").to_numpy()
    zero = _per_unit(results, "causalmixft", share, "zero_shot_test_f1_minority").to_numpy()
    assert row["n_dataset_folds"] == 6
    assert row["mean"] == pytest.approx(test.mean())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(_boot(test))
    assert row["zero_shot_mean"] == pytest.approx(zero.mean())
    assert row["change_mean"] == pytest.approx((test - zero).mean())
    assert (row["change_ci_low"], row["change_ci_high"]) == pytest.approx(_boot(test - zero))
    assert set(summary["metric"]) == set(SUMMARY_METRICS)


def test_paired_differences_and_wilcoxon_match_scipy():
    results = _results()
    paired = imbalance_paired(unit_values(results))
    assert set(paired["comparison"]) == {"vs_finetune", "scm_vs_diffusion"}
    assert set(paired["minority_share"]) == {"0.05", "0.2", "as_is", "all"}
    pick = paired[(paired["method"] == "causalmixft") & (paired["reference"] == "finetune")
                  & (paired["metric"] == "pr_auc")].set_index("minority_share")
    diff = (_per_unit(results, "causalmixft", 0.05, "test_pr_auc")
            - _per_unit(results, "finetune", 0.05, "test_pr_auc")).to_numpy()
    row = pick.loc["0.05"]
    assert row["n_pairs"] == 6 and row["mean_diff"] == pytest.approx(diff.mean())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(_boot(diff))
    assert row["p_wilcoxon"] == pytest.approx(wilcoxon(diff).pvalue)
    assert row["wins"] + row["ties"] + row["losses"] == 6
    assert row["wins"] == (diff > 0).sum()
    pooled = np.concatenate([(_per_unit(results, "causalmixft", s, "test_pr_auc")
                              - _per_unit(results, "finetune", s, "test_pr_auc")).to_numpy()
                             for s in SHARES])
    assert pick.loc["all", "n_pairs"] == 18
    assert pick.loc["all", "mean_diff"] == pytest.approx(pooled.mean())
    assert pick.loc["all", "p_wilcoxon"] == pytest.approx(wilcoxon(pooled).pvalue)
    scm = paired[(paired["comparison"] == "scm_vs_diffusion")
                 & (paired["minority_share"] == "as_is") & (paired["metric"] == "f1_minority")]
    assert list(scm["method"]) == ["causalmixft"]
    assert list(scm["reference"]) == ["causalmixft_tabddpm"]
    twin = (_per_unit(results, "causalmixft", np.nan, "test_f1_minority")
            - _per_unit(results, "causalmixft_tabddpm", np.nan, "test_f1_minority")).to_numpy()
    assert scm["mean_diff"].iloc[0] == pytest.approx(twin.mean())


def test_paired_stats_counts_and_too_few_pairs_for_wilcoxon():
    stats = paired_stats(np.array([0.1, 0.2, 0.0, 0.0, -0.1, 0.3, np.nan]))
    assert (stats["n_pairs"], stats["wins"], stats["ties"], stats["losses"]) == (6, 3, 2, 1)
    assert np.isnan(stats["p_wilcoxon"])  # 4 non-zero differences < 5
    assert stats["mean_diff"] == pytest.approx(0.5 / 6)


def test_diffusion_twins():
    assert diffusion_twin("causalmixft") == "causalmixft_tabddpm"
    assert diffusion_twin("causalmixft_balanced") == "causalmixft_tabddpm_balanced"
    assert diffusion_twin("scm_balanced") == "tabddpm_balanced"
    assert diffusion_twin("causalmixft_minority0.3") == "causalmixft_tabddpm_minority0.3"
    assert diffusion_twin("tabddpm") is None and diffusion_twin("ctgan") is None


@pytest.mark.parametrize("drop", [True, False])
def test_no_imbalance_axis_writes_nothing(tmp_path: Path, drop: bool):
    results = _results()
    results = results.drop(columns="minority_share") if drop else \
        results.assign(minority_share=np.nan)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_imbalance_report(results, Outputs(tmp_path))
    assert not list(tmp_path.iterdir())
    assert not caught


def test_files_appear_in_a_built_report(tmp_path: Path):
    from engine.report import build_report
    from tests.test_report_rows import frame, trial

    rows = []
    for d in ("a", "b"):
        for f in range(2):
            for share in SHARES:
                for m, s in (("finetune", 0.0), ("causalmixft", 1.0),
                             ("causalmixft_tabddpm", 1.0)):
                    row = trial(m, d, f, 0.8 + 0.01 * f + (0.02 if m != "finetune" else 0),
                                scale=s, mix=0.5 if s else 0.0)
                    row["trial_id"] += f"_minority{share:g}"
                    row["minority_share"] = share
                    rows.append(row)
    (tmp_path / "sweep").mkdir()
    frame(rows).to_parquet(tmp_path / "sweep" / "results.parquet")
    out = build_report([tmp_path / "sweep"], tmp_path / "report")
    for name in FILES:
        assert (out / name).exists(), name
    summary = pd.read_parquet(out / "imbalance_summary.parquet")
    assert set(summary["minority_share"]) == {"0.05", "0.2", "as_is"}
    assert set(summary["n_dataset_folds"]) == {4}
