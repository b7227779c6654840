"""Report statistics checked against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from engine.report.curves import best_mix_per_dataset, bootstrap_bands, scaling_table
from engine.report.fits import fit_curve, saturating
from engine.report.gap import gap_table, tracking_table, trial_tracking
from engine.report.load import FOLD_KEYS
from engine.report.scores import add_scores
from engine.report.selection import select_by_validation
from engine.report.stats import (
    average_ranks,
    cd_cliques,
    friedman_test,
    holm,
    nemenyi_cd,
    wilcoxon_test,
    win_rate,
)
from engine.report.tables import method_summary, paper_table
from tests.test_report_rows import frame, steps, trial


def test_scaling_table_quantiles_errors_and_repeats():
    rows = [trial("causalmixft", f"d{i}", 0, 0.8 * (1 + v / 100), scale=1.0, mix=0.5)
            for i, v in enumerate([1.0, 2.0, 3.0, 10.0])]
    rows.append(trial("causalmixft", "d9", 0, 0.0, scale=1.0, mix=0.5, status="error"))
    rows.append(trial("finetune", "d0", 0, 0.88))
    rows.append(trial("finetune", "d0", 0, 0.80) | {"trial_id": "repeat"})  # averaged: 5 %
    table = scaling_table(frame(rows)).set_index("method")
    cm = table.loc["causalmixft"]
    assert (cm["n"], cm["n_error"]) == (4, 1)
    assert cm["median"] == pytest.approx(2.5)
    assert cm["q25"] == pytest.approx(1.75)  # linear interpolation between 1 and 2
    assert cm["q75"] == pytest.approx(4.75)  # 3 + 0.25 * (10 - 3)
    assert table.loc["finetune", "median"] == pytest.approx(5.0)


def test_scaling_table_all_failed_keeps_the_grid_point():
    table = scaling_table(frame([trial("scm", "d", 0, 0.0, scale=2, mix=1, status="error")]))
    assert table["n"].tolist() == [0] and table["n_error"].tolist() == [1]
    assert math.isnan(table["median"].iloc[0])


def test_scores_improvement_and_normalised_error():
    rows = [trial("finetune", "d", 0, 0.88), trial("scm", "d", 0, 0.76, scale=1, mix=1),
            trial("ctgan", "d", 0, 0.84, scale=1, mix=1),
            trial("tabebm", "d", 0, 0.0, scale=1, mix=1, status="error")]
    scored = add_scores(frame(rows)).set_index("method")
    assert scored.loc["finetune", "improvement_roc_auc"] == pytest.approx(10.0)
    assert scored.loc["scm", "improvement_accuracy"] == pytest.approx(-5.0)
    # log-loss 0.2 -> 0.12 at zero-shot 0.2 is a 40 % reduction: improvement +40
    assert scored.loc["finetune", "improvement_log_loss"] == pytest.approx(40.0)
    # errors: zero-shot 0.20, finetune 0.12, scm 0.24, ctgan 0.16 -> min 0.12, max 0.24
    err = scored["normalized_error_roc_auc"]
    assert err["finetune"] == pytest.approx(0.0)
    assert err["scm"] == pytest.approx(1.0)
    assert err["ctgan"] == pytest.approx(1 / 3)
    assert math.isnan(err["tabebm"]) and math.isnan(scored.loc["tabebm", "improvement_roc_auc"])


def test_selection_by_validation_breaks_ties_towards_small_scale():
    rows = [trial("causalmixft", "d", 0, 0.90, scale=4, mix=0.5, val=0.85),
            trial("causalmixft", "d", 0, 0.82, scale=1, mix=0.5, val=0.85),
            trial("causalmixft", "d", 0, 0.95, scale=2, mix=0.5, val=0.80),
            trial("causalmixft", "d", 0, 0.99, scale=0.5, mix=0.5, status="error")]
    chosen = select_by_validation(add_scores(frame(rows)))
    assert len(chosen) == 1
    assert chosen["synthetic_scale"].iloc[0] == 1.0
    assert chosen["test_roc_auc"].iloc[0] == pytest.approx(0.82)


def test_average_ranks_with_ties():
    matrix = pd.DataFrame({"A": [5, 3, 1], "B": [5, 2, 2], "C": [1, 1, 2]}, dtype=float)
    ranks = average_ranks(matrix)
    assert ranks["A"] == pytest.approx((1.5 + 1 + 3) / 3)
    assert ranks["B"] == pytest.approx((1.5 + 2 + 1.5) / 3)
    assert ranks["C"] == pytest.approx((3 + 3 + 1.5) / 3)
    assert average_ranks(matrix, higher_is_better=False)["C"] == pytest.approx((1 + 1 + 2.5) / 3)


def test_win_rate_counts_ties_as_half_and_skips_missing():
    assert win_rate([1, 2, 3, 4, np.nan], [0, 2, 5, 3, 1]) == pytest.approx(0.625)
    assert win_rate([1, 2, 3, 4], [0, 2, 5, 3], higher_is_better=False) == pytest.approx(0.375)
    assert math.isnan(win_rate([np.nan], [1.0]))


def test_wilcoxon_matches_scipy_and_holm_by_hand():
    a = np.array([1.2, 3.4, 2.2, 5.0, 0.3, 4.4, 2.9, np.nan])
    b = np.array([1.0, 2.0, 2.5, 3.0, 0.1, 4.0, 1.0, 9.0])
    stat, p, n = wilcoxon_test(a, b)
    direct = stats.wilcoxon(a[:7] - b[:7])
    assert n == 7 and stat == direct.statistic and p == pytest.approx(direct.pvalue)
    assert math.isnan(wilcoxon_test([1, 2], [1, 2])[1])  # all differences zero
    adjusted = holm(pd.Series([0.01, 0.04, 0.03, np.nan], index=list("wxyz")))
    assert adjusted["w"] == pytest.approx(0.03)  # 3 x 0.01
    assert adjusted["y"] == pytest.approx(0.06)  # 2 x 0.03
    assert adjusted["x"] == pytest.approx(0.06)  # max(1 x 0.04, 0.06): monotone
    assert math.isnan(adjusted["z"])


def test_nemenyi_critical_difference_and_friedman():
    # q_0.05 / sqrt(2) for k = 2..5 from the studentised range: 1.960, 2.343, 2.569, 2.728
    for k, q in [(2, 1.960), (3, 2.343), (4, 2.569), (5, 2.728)]:
        assert nemenyi_cd(k, 10) == pytest.approx(q * math.sqrt(k * (k + 1) / 60), abs=2e-3)
    matrix = pd.DataFrame({"A": [1.0, 2, 3, 4], "B": [2.0, 3, 4, 5], "C": [0.5, 2.5, 1, 6]})
    chi2, p = friedman_test(matrix)
    direct = stats.friedmanchisquare(matrix["A"], matrix["B"], matrix["C"])
    assert chi2 == pytest.approx(direct.statistic) and p == pytest.approx(direct.pvalue)
    ranks = pd.Series({"A": 1.0, "B": 1.5, "C": 3.0, "D": 3.2})
    assert cd_cliques(ranks, 1.0) == [["A", "B"], ["C", "D"]]


def test_method_summary_and_paper_table():
    ft = [0.84, 0.80, 0.88, 0.82]  # improvements 5, 0, 10, 2.5
    cm = [0.88, 0.80, 0.84, 0.86]  # improvements 10, 0, 5, 7.5
    rows = [trial("finetune", f"d{i}", 0, t) for i, t in enumerate(ft)]
    rows += [trial("causalmixft", f"d{i}", 0, t, scale=1, mix=0.5) for i, t in enumerate(cm)]
    rows += [trial("causalmixft", f"d{i}", 0, 0.70, scale=2, mix=0.5, val=0.5) for i in range(4)]
    rows.append(trial("causalmixft", "d0", 0, 0.0, scale=4, mix=0.5, status="error"))
    scored = add_scores(frame(rows))
    selected = select_by_validation(scored)
    summary = method_summary(scored, selected)
    auc = summary[(summary["metric"] == "roc_auc") & (summary["score"] == "improvement")]
    auc = auc.set_index("method")
    assert auc.loc["finetune", "median"] == pytest.approx(3.75)
    assert auc.loc["causalmixft", "median"] == pytest.approx(6.25)
    assert auc.loc["causalmixft", "std"] == pytest.approx(np.std([10, 0, 5, 7.5], ddof=1))
    assert auc.loc["causalmixft", "iqr"] == pytest.approx(8.125 - 3.75)
    # per fold: cm wins, tie, loses, wins -> ranks cm 1, 1.5, 2, 1
    assert auc.loc["causalmixft", "avg_rank"] == pytest.approx(5.5 / 4)
    assert auc.loc["finetune", "avg_rank"] == pytest.approx(6.5 / 4)
    assert auc.loc["causalmixft", "win_rate_vs_finetune"] == pytest.approx(2.5 / 4)
    direct = stats.wilcoxon(np.array([10, 0, 5, 7.5]) - np.array([5, 0, 10, 2.5]))
    assert auc.loc["causalmixft", "p_value"] == pytest.approx(direct.pvalue)
    assert auc.loc["causalmixft", "p_holm"] == pytest.approx(direct.pvalue)  # one test
    assert (auc.loc["causalmixft", "n_trials"], auc.loc["causalmixft", "n_error"]) == (9, 1)
    paper = paper_table(summary, None).set_index("method")
    assert paper.loc["causalmixft", "improvement"] == "6.25 ± 4.27"
    assert paper.loc["causalmixft", "reference_gap"] == pytest.approx(0.30)


def test_spearman_regret_and_gap():
    a = trial_tracking(steps("a", "finetune", [0.5, 0.6, 0.7, 0.65], [0.5, 0.62, 0.66, 0.7]))
    assert a["spearman"] == pytest.approx(0.8)  # 1 - 6 * 2 / (4 * 15)
    assert a["regret"] == pytest.approx(0.04)  # best val at 0.7 -> test 0.66, max test 0.70
    b = trial_tracking(steps("b", "finetune", [0.5, 0.7, 0.7], [0.5, 0.6, 0.8]))
    assert b["spearman"] == pytest.approx(1.5 / math.sqrt(3.0))  # tied val ranks 2.5, 2.5
    assert b["regret"] == pytest.approx(0.2)  # first best-val step is selected
    evaluations = pd.concat([
        steps("a", "finetune", [0.5, 0.6, 0.7, 0.65], [0.5, 0.62, 0.66, 0.7]),
        steps("b", "finetune", [0.5, 0.7, 0.7], [0.5, 0.6, 0.8]),
        steps("c", "finetune", [0.5, 0.7], [0.5, 0.6]),  # too short for a correlation
        steps("x", "finetune", [0.5, 0.6, 0.7], [0.7, 0.6, 0.5]),  # failed trial: left out
    ])
    results = pd.DataFrame({"trial_id": ["a", "b", "c", "x"],
                            "status": ["ok", "ok", "ok", "error"]})
    tracking = tracking_table(evaluations, results)
    assert sorted(tracking["trial_id"]) == ["a", "b", "c"]
    gap = gap_table(tracking).set_index("method").loc["finetune"]
    assert gap["median_spearman"] == pytest.approx((0.8 + 1.5 / math.sqrt(3)) / 2)
    assert gap["gap"] == pytest.approx(1 - (0.8 + 1.5 / math.sqrt(3)) / 2)
    assert gap["median_regret"] == pytest.approx(0.04)  # regrets 0.04, 0.2, 0.0
    assert (gap["n_trials"], gap["n_spearman"]) == (3, 2)


def test_curve_fit_recovers_exact_saturating_and_power_law():
    s = np.array([0.5, 1, 2, 4, 8])
    fit = fit_curve(s, saturating(s, 3.0, 1.5, 2.0))
    assert fit["model"] == "saturating"
    assert (fit["a"], fit["tau"], fit["b"]) == pytest.approx((3.0, 1.5, 2.0), rel=1e-5)
    assert fit["scale_90"] == pytest.approx(1.5 * math.log(10), rel=1e-5)
    assert saturating(fit["scale_90"], 3.0, 1.5, 0.0) == pytest.approx(0.9 * 3.0)
    line = fit_curve(s, 1 + 0.1 * s)  # never saturates -> power-law fallback
    assert line["model"] == "power_law"
    assert (line["c"], line["p"], line["d"]) == pytest.approx((0.1, 1.0, 1.0), rel=1e-4)
    assert fit_curve(s[:2], s[:2])["model"] == "none"


def test_bootstrap_bands_are_seeded_and_bracket_the_median():
    rng = np.random.default_rng(1)
    rows = [trial("scm", f"d{i}", 0, 0.8 * (1 + rng.normal(2 * s, 1) / 100), scale=s, mix=1)
            for i in range(15) for s in (1.0, 2.0)]
    results = frame(rows)
    first, second = bootstrap_bands(results, seed=3), bootstrap_bands(results, seed=3)
    pd.testing.assert_frame_equal(first, second)
    table = scaling_table(results).merge(first, on=["method", "synthetic_scale", "mix_ratio"])
    assert (table["ci_low"] <= table["median"]).all()
    assert (table["median"] <= table["ci_high"]).all()


def test_best_mix_per_dataset():
    rows = [trial("causalmixft", "d", f, 0.8 * (1 + v / 100), scale=s, mix=m)
            for f in (0, 1) for s, m, v in [(1, 0.25, 2), (2, 0.25, 6), (1, 0.75, 5), (2, 0.75, 4)]]
    best = best_mix_per_dataset(frame(rows)).iloc[0]
    assert (best["best_mix_ratio"], best["best_synthetic_scale"]) == (0.25, 2.0)
    assert best["median_improvement_pct"] == pytest.approx(6.0)
    assert best["improvement_mix_0.75"] == pytest.approx(5.0)
    assert FOLD_KEYS == ["dataset", "fold", "seed"]
