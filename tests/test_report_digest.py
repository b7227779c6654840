"""digest.md restates the report's tables: every cell comes from the frame it names."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.report.digest import markdown_table, signed, with_ci, write_digest
from engine.report.export import Outputs


def _rows(text: str, heading: str) -> list[list[str]]:
    block = text.split(f"## {heading}")[1].split("\n## ")[0]
    lines = [line for line in block.splitlines() if line.startswith("| ")][1:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_signed_and_ci_formatting():
    assert signed(0.684) == "+0.68"
    assert signed(-0.0831) == "−0.08"
    assert signed(np.nan) == "–" and signed(None) == "–" and signed("x") == "–"
    row = pd.Series({"m": 0.5, "lo": -0.25, "hi": 1.0})
    assert with_ci(row, "m", "lo", "hi", 1) == "+0.5 [−0.2, +1.0]"  # round half to even
    table = markdown_table(pd.DataFrame({"a": [1, 2]}), {"a": lambda r: str(r["a"] * 10)})
    assert table.splitlines() == ["| a |", "|---|", "| 10 |", "| 20 |"]


def test_digest_quotes_the_tables(tmp_path):
    rng = np.random.default_rng(0)
    outputs = Outputs(tmp_path)
    summary = pd.DataFrame({
        "method": ["finetune", "causalmixft", "scm"], "synthetic_scale": [0.0, 2.0, 4.0],
        "mix_ratio": [0.0, 0.25, 1.0], "n": [10, 9, 8], "median": rng.normal(size=3),
        "mean": rng.normal(size=3), "ci_low": [-1.0, -2.0, -3.0], "ci_high": [1.0, 2.0, 3.0],
        "share_step0": [0.2, 0.1, 0.333], "diff_vs_finetune": [np.nan, 0.123, -0.456],
        "diff_ci_low": [np.nan, -0.1, -0.9], "diff_ci_high": [np.nan, 0.3, -0.01]})
    outputs.table("scaling_summary", summary)
    outputs.table("best_mix", pd.DataFrame())  # written with no columns: a section left out
    outputs.table("scaling_curves", summary[["method", "synthetic_scale", "mix_ratio"]].assign(
        ci_low=[-0.5, np.nan, 0.0], ci_high=[0.5, np.nan, 0.25]))
    split = pd.DataFrame({"claim": ["slope", "diff_vs_finetune", "diff_vs_finetune"],
                          "method": ["causalmixft", "causalmixft", "scm"],
                          "synthetic_scale": [np.nan, 2.0, 4.0], "mix_ratio": [np.nan, 0.25, 1.0],
                          "replicates": [True, False, True],
                          "replicates_significant": [True, False, True]})
    outputs.table("split_half", split)
    laws = pd.DataFrame({
        "method": ["causalmixft"] * 2, "mix_ratio": [np.nan] * 2, "law": ["saturating",
        "log2_linear"], "parameter": ["tau", "slope"], "estimate": [np.nan, 0.0216],
        "ci_low": [0.1, -0.0246], "ci_high": [9.0, 0.0754], "p_value": [np.nan, 0.372],
        "aic": [np.nan, 184.21], "n_failed": [600, 0], "n_boot": [1000, 1000]})
    outputs.table("scaling_laws", laws)
    text = write_digest(outputs)
    assert _rows(text, "Scaling laws") == [
        ["causalmixft", "all", "saturating", "tau", "– [+0.100, +9.000]", "–", "–", "600/1000",
         "–"],
        ["causalmixft", "all", "log2_linear", "slope", "+0.022 [−0.025, +0.075]", "0.372",
         "184.2", "0/1000", "agree, both CIs exclude 0"]]
    assert text == (tmp_path / "digest.md").read_text(encoding="utf-8")
    rows = _rows(text, "Improvement over zero-shot")
    assert [r[:3] for r in rows] == [["finetune", "–", "10"], ["causalmixft",
                                     "scale 2, mix 0.25", "9"], ["scm", "scale 4", "8"]]
    for row, (_, expected) in zip(rows, summary.iterrows()):
        assert row[3].split(" [")[0] == signed(expected["median"])
        assert row[4] == f"{signed(expected['mean'])} [{signed(expected['ci_low'])}, " \
                         f"{signed(expected['ci_high'])}]"
        assert row[5] == f"{100 * expected['share_step0']:.0f} %"
    assert rows[0][3].endswith("[−0.50, +0.50]") and rows[1][3].endswith("[–, –]")
    assert rows[2][3].endswith("[+0.00, +0.25]")
    assert rows[0][6] == "–" and rows[2][6] == "−0.46 [−0.90, −0.01]"
    assert [r[7] for r in rows] == ["–", "differ", "agree, both CIs exclude 0"]
    assert _rows(text, "Split-half") == [["diff_vs_finetune", "2", "1", "1"],
                                         ["slope", "1", "1", "1"]]
    assert "Best mix" not in text  # only sections whose tables exist


def test_no_digest_without_its_tables(tmp_path):
    outputs = Outputs(tmp_path)
    outputs.table("method_summary", pd.DataFrame({"method": ["finetune"]}))
    assert write_digest(outputs) is None
    assert not (tmp_path / "digest.md").exists()


def test_imbalance_means_by_share(tmp_path):
    outputs = Outputs(tmp_path)
    rows = []
    for method, scale, mix in [("finetune", 0.0, 0.0), ("scm", 1.0, 1.0), ("scm", 2.0, 1.0)]:
        for share in ["0.05", "as_is"]:
            for metric in ["f1_minority", "pr_auc", "roc_auc"]:
                mean = len(rows) / 100
                rows.append({"method": method, "synthetic_scale": scale, "mix_ratio": mix,
                             "minority_share": share, "metric": metric, "n_dataset_folds": 7,
                             "mean": mean, "ci_low": mean - 0.01, "ci_high": mean + 0.02})
    summary = pd.DataFrame(rows)
    outputs.table("imbalance_summary", summary)
    text = write_digest(outputs)
    block = text.split("## Minority-class F1 and PR-AUC by minority share")[1]
    f1, pr = block.split("pr_auc: mean")
    assert "roc_auc" not in block
    got = _rows("## x" + f1, "x")
    assert [r[0] for r in got] == ["finetune", "scm (scale 1)", "scm (scale 2)"]
    for row, method, scale in zip(got, ["finetune", "scm", "scm"], [0.0, 1.0, 2.0]):
        for cell, share in zip(row[1:], ["0.05", "as_is"]):
            want = summary[(summary["method"] == method) & (summary["synthetic_scale"] == scale)
                           & (summary["minority_share"] == share)
                           & (summary["metric"] == "f1_minority")].iloc[0]
            assert cell == (f"{want['mean']:.3f} [{want['ci_low']:.3f}, {want['ci_high']:.3f}]"
                            " (7)")
    assert "| method | share 0.05 | share as_is |" in pr


def test_imbalance_paired_per_metric(tmp_path):
    outputs = Outputs(tmp_path)
    paired = pd.DataFrame({
        "method": ["scm", "scm", "scm"], "reference": ["finetune"] * 3,
        "minority_share": ["0.05", "all", "0.05"], "metric": ["f1_minority", "f1_minority",
                                                               "pr_auc"],
        "n_pairs": [5, 10, 5], "mean_diff": [-0.0456, 0.012, 0.3], "ci_low": [-0.09, -0.01, 0.1],
        "ci_high": [-0.001, 0.03, 0.5], "p_wilcoxon": [0.0123, np.nan, 0.5],
        "wins": [1, 4, 3], "ties": [0, 2, 1], "losses": [4, 4, 1]})
    outputs.table("imbalance_paired", paired)
    text = write_digest(outputs)
    block = text.split("## Minority-class F1 and PR-AUC, paired")[1]
    f1, pr = block.split("pr_auc: paired")
    assert _rows("## x" + f1, "x") == [
        ["scm − finetune", "0.05", "5", "−0.046 [−0.090, −0.001]", "0.012", "1/0/4"],
        ["scm − finetune", "all", "10", "+0.012 [−0.010, +0.030]", "–", "4/2/4"]]
    assert _rows("## x" + pr, "x") == [
        ["scm − finetune", "0.05", "5", "+0.300 [+0.100, +0.500]", "0.500", "3/1/1"]]


def test_shift_sections(tmp_path):
    outputs = Outputs(tmp_path)
    outputs.table("shift_summary", pd.DataFrame({
        "method": ["finetune", "causalmixft"], "synthetic_scale": [0.0, 4.0],
        "mix_ratio": [0.0, 0.5], "n_dataset_folds": [12, 11],
        "id_mean_improvement_pct": [0.42, -0.1], "id_ci_low": [0.07, -0.5],
        "id_ci_high": [0.82, 0.3], "ood_mean_improvement_pct": [0.7, 0.9],
        "ood_ci_low": [0.2, 0.47], "ood_ci_high": [1.19, 1.36], "id_test_roc_auc": [0.7794, 0.81],
        "ood_test_roc_auc": [0.7022, 0.8161], "mean_gap": [0.0772, -0.0061]}))
    outputs.table("shift_gap", pd.DataFrame({
        "method": ["causalmixft"], "synthetic_scale": [4.0], "mix_ratio": [0.5],
        "n_dataset_folds": [11], "gap_diff_mean": [-0.0017], "gap_diff_ci_low": [-0.0041],
        "gap_diff_ci_high": [0.0005], "gap_diff_p_wilcoxon": [0.0688],
        "ood_improvement_diff_mean": [0.5], "ood_improvement_diff_ci_low": [0.13],
        "ood_improvement_diff_ci_high": [0.93], "ood_improvement_diff_p_wilcoxon": [0.035]}))
    text = write_digest(outputs)
    assert _rows(text, "In-domain and out-of-domain") == [
        ["finetune", "–", "12", "+0.42 [+0.07, +0.82]", "+0.70 [+0.20, +1.19]", "0.779", "0.702",
         "+0.077"],
        ["causalmixft", "scale 4, mix 0.5", "11", "−0.10 [−0.50, +0.30]",
         "+0.90 [+0.47, +1.36]", "0.810", "0.816", "−0.006"]]
    assert _rows(text, "Robustness gap") == [
        ["causalmixft", "scale 4, mix 0.5", "11", "−0.002 [−0.004, +0.001]", "0.069",
         "+0.50 [+0.13, +0.93]", "0.035"]]
