"""End-to-end report build on a small demo sweep, partial sweeps, and HTML in Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.report import build_report
from engine.report.demo import demo_tables, write_demo_sweep
from engine.report.reference import ordered_methods

METHODS = ["finetune", "causalmixft", "scm", "ctgan", "tabebm", "tableaugment"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    sweep = write_demo_sweep(tmp_path_factory.mktemp("sweeps") / "demo", n_datasets=3,
                             n_folds=2, n_steps=5, error_rate=0.05)
    return sweep, build_report([sweep])


def test_outputs_in_report_and_sweep_dir(built):
    sweep, out = built
    assert out == sweep / "report"
    curves = pd.read_csv(sweep / "scaling_curves.csv")
    assert {"method", "synthetic_scale", "mix_ratio", "n", "median", "q25", "q75"} <= set(curves)
    for method in METHODS:
        assert (sweep / f"scaling_{method}.png").stat().st_size > 1000
        assert (out / f"scaling_{method}.svg").exists()
    for table in ["scaling_curves", "scaling_fits", "trials_scored", "selected_configurations",
                  "method_summary", "grid_summary", "paper_table", "trial_tracking",
                  "validation_test_gap", "validation_test_gap_grid", "friedman_nemenyi",
                  "best_mix_per_dataset", "failed_trials"]:
        assert (out / f"{table}.csv").exists() and (out / f"{table}.parquet").exists(), table
    for figure in ["critical_difference", "improvement_by_method", "grid_causalmixft",
                   "validation_test_tracking"]:
        assert (out / f"{figure}.png").exists() and (out / f"{figure}.svg").exists(), figure
    runs = list((sweep / "tensorboard" / "hparams").iterdir())
    assert len(runs) == len(pd.read_parquet(sweep / "results.parquet"))


def test_statistics_consistent_with_trials(built):
    sweep, out = built
    results = pd.read_parquet(sweep / "results.parquet")
    ok = results[results["status"] == "ok"]
    curves = pd.read_csv(out / "scaling_curves.csv")
    assert curves["n"].sum() == len(ok)
    assert curves["n_error"].sum() == (results["status"] == "error").sum()
    cell = curves[(curves["method"] == "causalmixft") & (curves["synthetic_scale"] == 2.0)
                  & (curves["mix_ratio"] == 0.5)].iloc[0]
    values = ok[(ok["method"] == "causalmixft") & (ok["synthetic_scale"] == 2.0)
                & (ok["mix_ratio"] == 0.5)]["normalized_improvement_pct"]
    assert cell["median"] == pytest.approx(np.median(values))
    assert cell["ci_low"] <= cell["median"] <= cell["ci_high"]
    paper = pd.read_csv(out / "paper_table.csv")
    assert paper["method"].tolist() == ordered_methods(results["method"])
    assert paper["n_error"].sum() == (results["status"] == "error").sum()
    gap = pd.read_csv(out / "validation_test_gap.csv")
    assert np.allclose(gap["gap"], 1 - gap["median_spearman"])


def test_html_is_self_contained(built):
    _, out = built
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 10
    assert "<script" not in page
    refs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert all(r.startswith(("data:", "#")) for r in refs), refs
    assert "Critical-difference" in page and "Validation–test tracking" in page


def test_partial_results_without_evaluations_and_merged_sweeps(tmp_path):
    results, _ = demo_tables(n_datasets=2, n_folds=1, error_rate=0.0)
    first = tmp_path / "a"
    first.mkdir()
    part = results[results["method"].isin(["finetune", "causalmixft"])].head(5).copy()
    part.loc[part.index[-1], ["status", "normalized_improvement_pct"]] = ["error", np.nan]
    part.to_parquet(first / "results.parquet")
    out = build_report([first])
    assert (first / "scaling_curves.csv").exists() and (out / "report.html").exists()
    assert "No evaluations.parquet" in (out / "report.html").read_text()
    second = tmp_path / "b"
    second.mkdir()
    results[results["method"] == "scm"].to_parquet(second / "results.parquet")
    merged = build_report([first, second], tmp_path / "merged")
    curves = pd.read_csv(merged / "scaling_curves.csv")
    assert set(curves["method"]) == {"finetune", "causalmixft", "scm"}
    assert not (second / "scaling_curves.csv").exists()  # several sweeps: report folder only


def test_all_trials_failed(tmp_path):
    results, _ = demo_tables(n_datasets=1, n_folds=1)
    results = results.head(4).assign(status="error", normalized_improvement_pct=np.nan)
    results.to_parquet(tmp_path / "results.parquet")
    out = build_report([tmp_path])
    curves = pd.read_csv(tmp_path / "scaling_curves.csv")
    assert curves["n"].eq(0).all() and curves["n_error"].sum() == 4
    assert len(pd.read_csv(out / "failed_trials.csv")) == 4
    assert "No finished trials" in (out / "report.html").read_text()


def test_missing_results_raise(tmp_path):
    from engine.report.load import ReportInputError

    with pytest.raises(ReportInputError, match="no results.parquet with rows"):
        build_report([tmp_path])


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _render(page: Path, shot: Path, profile: Path) -> list[str]:
    """Screenshot ``page`` headless; return the console messages Chromium logged."""
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
               "--window-size=1200,2400", f"--screenshot={shot}", page.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    return [line for line in done.stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed")
def test_html_renders_in_headless_chromium(built, tmp_path):
    _, out = built
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>console.error('x'); missing();</script></body></html>")
    assert _render(bad, tmp_path / "bad.png", tmp_path / "profile-bad")  # the check works
    shot = out / "report_screenshot.png"
    console = _render(out / "report.html", shot, tmp_path / "profile")
    assert console == []
    assert shot.stat().st_size > 10_000
