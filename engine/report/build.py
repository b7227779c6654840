"""Orchestration: from sweep directories to every table, figure and the HTML report."""

from __future__ import annotations

import datetime as dt
import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pandas as pd

from engine.report import html
from engine.report.curves import best_mix_per_dataset, bootstrap_bands, scaling_table
from engine.report.definitions import DEFINITIONS
from engine.report.digest import write_digest
from engine.report.export import Outputs
from engine.report.fits import fit_table
from engine.report.gap import gap_table, tracking_table
from engine.report.imbalance import write_imbalance_report
from engine.report.load import FOLD_KEYS, load_evaluations, load_results
from engine.report.plots import safe_name, scaling_figure
from engine.report.plots_summary import (
    cd_diagram,
    grid_heatmap,
    improvement_boxes,
    tracking_figure,
)
from engine.report.reference import ordered_methods
from engine.report.scaling_stats import write_scaling_stats
from engine.report.scores import PRIMARY_METRIC, add_scores, improvement, score_column
from engine.report.selection import select_by_validation
from engine.report.shift import write_shift_report
from engine.report.stats import average_ranks, block_matrix, friedman_test, nemenyi_cd
from engine.report.tables import grid_summary, method_summary, paper_table
from engine.report.tensorboard import write_tensorboard
from engine.storage.fsio import Location, as_location, delete, is_uri, join, shown, staged
from engine.storage.results_schema import HIGHER_IS_BETTER, METRICS

IMPROVEMENT = score_column("improvement", PRIMARY_METRIC)
METRIC_NAMES = {"roc_auc": "ROC-AUC", "log_loss": "log loss", "accuracy": "accuracy",
                "f1_macro": "macro F1", "f1_minority": "minority-class F1",
                "pr_auc": "minority-class PR-AUC", "balanced_accuracy": "balanced accuracy"}
FAILED_COLUMNS = ["source", "trial_id", "method", "dataset", "fold", "seed", "synthetic_scale",
                  "mix_ratio", "error"]


def build_report(sweep_dirs: list[Location], out_dir: Location | None = None,
                 metric: str = PRIMARY_METRIC) -> Location:
    """Build the report for one or several sweeps and return the output directory.

    ``metric`` (one of ``METRICS``) drives the method tables, rank tests and scaling curves:
    configurations are selected by validation ``metric`` and scored by the normalised
    improvement of test ``metric`` over zero-shot (sign by ``HIGHER_IS_BETTER``); the default
    ROC-AUC uses the recorded ``normalized_improvement_pct``.

    Sweeps and the output may be local folders or URIs (``engine.storage.fsio``); files bound for a
    URI are written locally first and uploaded when the report is done.
    Default ``out_dir`` is ``<first sweep dir>/report``. With a single sweep directory the
    scaling curves (``scaling_curves.csv``, ``scaling_<method>.png``) are also written into
    the sweep directory itself (for the default metric only). Works on partial results of a
    running sweep; a missing ``evaluations.parquet`` only leaves the validation-test tracking
    out.
    """
    if metric not in METRICS:
        from engine.core.errors import CausalMixError

        raise CausalMixError(f"unknown report metric {metric!r} (known: {', '.join(METRICS)})")
    sweep_dirs = [as_location(d) if isinstance(d, str) else Path(d) for d in sweep_dirs]
    if not sweep_dirs:
        raise ValueError("build_report needs at least one sweep directory")
    if out_dir is None:
        out_dir = join(sweep_dirs[0], "report")
    out_dir = as_location(out_dir) if isinstance(out_dir, str) else Path(out_dir)
    with ExitStack() as stack:
        local_out = stack.enter_context(staged(out_dir))
        local_dirs = {str(d): stack.enter_context(staged(d, create=False))
                      for d in sweep_dirs}
        _build(sweep_dirs, local_out, local_dirs, metric)
    return out_dir


def curve_column(results: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, str]:
    """The per-trial improvement column the curves of ``metric`` are drawn from (added to
    ``results`` unless it is the recorded ROC-AUC one)."""
    if metric == PRIMARY_METRIC:
        return results, "normalized_improvement_pct"
    column = score_column("improvement", metric)
    values = improvement(results[f"test_{metric}"], results[f"zero_shot_test_{metric}"],
                         HIGHER_IS_BETTER[metric])
    return results.assign(**{column: values}), column


def _build(sweep_dirs: list[Location], out_dir: Path, local_dirs: dict[str, Path],
           metric: str = PRIMARY_METRIC) -> None:
    """The report of ``sweep_dirs`` into the local ``out_dir``; files that go into a sweep
    folder itself are written into its local folder in ``local_dirs``."""
    results = load_results(sweep_dirs)
    evaluations = load_evaluations(sweep_dirs)
    outputs = Outputs(out_dir)
    extra = ((local_dirs[str(sweep_dirs[0])],) if len(sweep_dirs) == 1
             and metric == PRIMARY_METRIC else ())

    # (a) scaling curves first: the cheapest and most needed output. They are drawn over grid
    # points; a search's trials are each at their own point and get the Search section.
    grid_rows, column = curve_column(results[results["search"].fillna("") == ""], metric)
    curves = scaling_table(grid_rows, column)
    bands = bootstrap_bands(grid_rows, column)
    fits = fit_table(curves)
    if len(bands):
        curves = curves.merge(bands, on=["method", "synthetic_scale", "mix_ratio"], how="left")
    outputs.table("scaling_curves", curves)
    for directory in extra:
        curves.to_csv(directory / "scaling_curves.csv", index=False)
    methods = ordered_methods(curves["method"])
    for method in methods:
        fig = scaling_figure(curves, method, bands=bands, fit=fits,
                             ylabel=f"normalised {METRIC_NAMES[metric]} improvement (%)")
        outputs.figure(f"scaling_{safe_name(method)}", fig, extra_dirs=extra)
    outputs.table("scaling_fits", fits)
    write_scaling_stats(grid_rows, outputs, column)  # only with a scale grid; never fatal
    write_shift_report(grid_rows, outputs)  # only with OOD scores (a shift:)
    write_imbalance_report(grid_rows, outputs)  # only with a minority_share axis

    try:
        sections = _analyse(results, evaluations, curves, fits, outputs, metric)
    except Exception as exc:  # keep the scaling curves even if a later stage fails
        warnings.warn(f"report analysis failed: {exc!r}", stacklevel=2)
        sections = [html.Section("Analysis failed", [html.paragraph(repr(exc))])]
    sections[1:1] = _search(results, outputs)
    _tensorboard(results, evaluations, sweep_dirs, local_dirs, outputs)
    try:
        if write_digest(outputs) is not None:
            outputs.notes.append("Headline numbers as Markdown: digest.md.")
    except Exception as exc:  # the digest only restates tables already written
        warnings.warn(f"report digest failed: {exc!r}", stacklevel=2)
    sections.append(_files_section(outputs))
    subtitle = (
        f"Sweeps: {', '.join(shown(d) for d in sweep_dirs)}. Generated "
        f"{dt.datetime.now().isoformat(timespec='seconds')}. "
        + " ".join(outputs.notes)
    )
    page = html.render("CausalMix Sweep report", subtitle, sections)
    (out_dir / "report.html").write_text(page, encoding="utf-8")


def _tensorboard(results: pd.DataFrame, evaluations: pd.DataFrame | None,
                 sweep_dirs: list[Location], local_dirs: dict[str, Path],
                 outputs: Outputs) -> None:
    """TensorBoard hparams summaries into each sweep folder (a convenience, never fatal)."""
    for directory in sweep_dirs:
        source = str(directory)
        trials = results[results["source"] == source]
        if trials.empty:
            continue
        runs = None if evaluations is None else evaluations[evaluations["source"] == source]
        try:
            if is_uri(directory):  # rebuilt on each call, as the local folder is
                delete(join(directory, "tensorboard", "hparams"))
            note = write_tensorboard(trials, runs, local_dirs[source])
            if is_uri(directory):
                note = note.replace(str(local_dirs[source]), shown(directory))
            outputs.notes.append(note)
        except Exception as exc:  # summaries are a convenience, never fatal
            outputs.notes.append(f"TensorBoard summaries failed for {shown(directory)}: "
                                 f"{exc!r}")


def _analyse(
    results: pd.DataFrame,
    evaluations: pd.DataFrame | None,
    curves: pd.DataFrame,
    fits: pd.DataFrame,
    outputs: Outputs,
    metric: str = PRIMARY_METRIC,
) -> list[html.Section]:
    """Compute every table and figure after the scaling curves; return the HTML sections."""
    errors = results[results["status"] != "ok"]
    if len(errors) == len(results):
        outputs.table("failed_trials", errors[FAILED_COLUMNS])
        return [html.Section("No finished trials", [html.paragraph(
            f"All {len(results)} trials so far failed; see failed_trials.csv.")])]
    scored = outputs.table("trials_scored", add_scores(results))
    selected = outputs.table("selected_configurations",
                             select_by_validation(scored, f"val_{metric}"))
    summary = outputs.table("method_summary", method_summary(scored, selected))
    grid = outputs.table("grid_summary", grid_summary(scored[scored["search"].fillna("") == ""]))
    tracking, gap, grid_gap = _tracking_tables(evaluations, results, outputs, metric)
    paper = outputs.table("paper_table", _paper_table(summary, gap, metric))
    tests = _rank_tests(selected, outputs, metric)
    grid_rows, column = curve_column(results[results["search"].fillna("") == ""], metric)
    best_mix = outputs.table("best_mix_per_dataset", best_mix_per_dataset(grid_rows, column))
    grid_methods = [m for m in ordered_methods(curves["method"])
                    if curves.loc[(curves["method"] == m) & (curves["n"] > 0), "mix_ratio"]
                    .nunique() > 1]
    for method in grid_methods:
        outputs.figure(f"grid_{safe_name(method)}", grid_heatmap(curves, method))
    if tracking is not None and not tracking.empty:
        outputs.figure("validation_test_tracking", tracking_figure(tracking))
    error_table = outputs.table("failed_trials", errors[FAILED_COLUMNS])
    img = outputs.images
    return [_overview(results, errors), *_method_sections(paper, summary, tests, img, metric),
            _scaling_section(curves, grid_methods, fits, best_mix, img),
            _tracking_section(gap, grid_gap, img),
            *_detail_sections(summary, grid, error_table, metric)]


def _paper_table(summary: pd.DataFrame, gap: pd.DataFrame | None, metric: str) -> pd.DataFrame:
    """``paper_table`` of ``metric``'s improvement; the reference study's published columns
    are ROC-AUC values, so they are blank for another metric."""
    table = paper_table(summary[summary["metric"] == metric].assign(metric=PRIMARY_METRIC),
                        gap)
    if metric != PRIMARY_METRIC:
        for col in [c for c in table.columns if c.startswith("reference_")]:
            table[col] = float("nan")
    return table


def _tracking_tables(
    evaluations: pd.DataFrame | None, results: pd.DataFrame, outputs: Outputs,
    metric: str = PRIMARY_METRIC,
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, pd.DataFrame | None]:
    """Per-trial validation-test tracking and the gap tables (none without evaluations)."""
    if evaluations is None:
        return None, None, None
    tracking = outputs.table("trial_tracking", tracking_table(evaluations, results, metric))
    gap = outputs.table("validation_test_gap", gap_table(tracking))
    grid_gap = outputs.table("validation_test_gap_grid", gap_table(
        tracking, ["method", "synthetic_scale", "mix_ratio"]))
    return tracking, gap, grid_gap


def _rank_tests(selected: pd.DataFrame, outputs: Outputs,
                metric: str = PRIMARY_METRIC) -> dict[str, Any]:
    """Friedman test and Nemenyi critical difference over complete dataset-folds, with the
    critical-difference and per-method improvement figures."""
    column = score_column("improvement", metric)
    matrix = block_matrix(selected, column) if not selected.empty else pd.DataFrame()
    ranks = average_ranks(matrix) if len(matrix) else pd.Series(dtype=float)
    chi2, p_value = friedman_test(matrix) if len(matrix) else (float("nan"),) * 2
    cd = nemenyi_cd(matrix.shape[1], matrix.shape[0]) if len(matrix) else float("nan")
    outputs.table("friedman_nemenyi", pd.DataFrame([dict(
        metric=metric, score="improvement", n_methods=matrix.shape[1],
        n_blocks=matrix.shape[0], chi2=chi2, p_value=p_value, nemenyi_cd=cd)]))
    if len(ranks) >= 2:
        outputs.figure("critical_difference", cd_diagram(ranks, cd, matrix.shape[0]))
    if not selected.empty:
        outputs.figure("improvement_by_method", improvement_boxes(
            selected, column, f"normalised {METRIC_NAMES[metric]} improvement (%)"))
    return {"chi2": chi2, "p": p_value, "cd": cd, "blocks": matrix.shape[0],
            "methods": matrix.shape[1]}


def _overview(results: pd.DataFrame, errors: pd.DataFrame) -> html.Section:
    overview = html.Section("Overview", [html.stats_row({
        "trials": len(results),
        "ok": int((results["status"] == "ok").sum()),
        "failed": len(errors),
        "datasets": results["dataset"].nunique(),
        "dataset-folds": len(results[FOLD_KEYS].drop_duplicates()),
        "methods": results["method"].nunique(),
    })])
    counts = results.groupby("method")["status"].value_counts().unstack(fill_value=0)
    counts = counts.reindex(ordered_methods(counts.index)).reset_index()
    overview.blocks += [html.table(counts)]
    return overview


def _method_sections(paper: pd.DataFrame, summary: pd.DataFrame, tests: dict[str, Any],
                     img: dict[str, str], metric: str = PRIMARY_METRIC) -> list[html.Section]:
    """The headline table and the comparison of methods."""
    name = METRIC_NAMES[metric]
    headline = html.Section("Headline table", [
        html.paragraph(f"Per method the configuration with the best validation {name} on each "
                       f"dataset-fold; improvement = median ± std of the normalised {name} "
                       "improvement (%), "
                       "average rank over complete dataset-folds (1 = best), gap = 1 − median "
                       "Spearman(val, test) over evaluation steps. Reference columns: published "
                       "values of the reference study on its own benchmark and scale."),
        html.table(paper),
    ])
    methods_section = html.Section("Methods compared", [
        html.table(_primary(summary, metric)),
        html.paragraph(f"Friedman chi² = {tests['chi2']:.3f}, p = {tests['p']:.3g} over "
                       f"{tests['blocks']} complete dataset-folds and {tests['methods']} "
                       f"methods; Nemenyi critical difference = {tests['cd']:.3f}."),
    ])
    for name, caption in [("critical_difference", "Critical-difference diagram (average ranks)."),
                          ("improvement_by_method", "Improvement per dataset-fold.")]:
        if name in img:
            methods_section.blocks.append(html.image(img[name], caption))
    return [headline, methods_section]


def _scaling_section(curves: pd.DataFrame, grid_methods: list[str], fits: pd.DataFrame,
                     best_mix: pd.DataFrame, img: dict[str, str]) -> html.Section:
    scaling = html.Section("Scaling with synthetic data")
    for method in ordered_methods(curves["method"]):
        name = f"scaling_{safe_name(method)}"
        scaling.blocks.append(html.image(img[name], f"{method}: median improvement vs scale; "
                                         "band = bootstrap 95 % CI of the median; dotted = fit."))
    for method in grid_methods:
        scaling.blocks.append(html.image(img[f"grid_{safe_name(method)}"],
                                         f"{method}: median improvement over the grid."))
    scaling.blocks += [html.paragraph("Saturating fits y = a·(1 − exp(−s/τ)) + b of the median "
                                      "curve (power law c·s^p + d as the fallback)."),
                       html.table(fits), html.paragraph("Best mix ratio per dataset."),
                       html.table(best_mix)]
    return scaling


def _tracking_section(gap: pd.DataFrame | None, grid_gap: pd.DataFrame | None,
                      img: dict[str, str]) -> html.Section:
    section = html.Section("Validation–test tracking")
    if gap is None:
        section.blocks.append(html.paragraph("No evaluations.parquet: not available."))
        return section
    section.blocks += [html.table(gap)]
    if "validation_test_tracking" in img:
        section.blocks.append(html.image(
            img["validation_test_tracking"], "Per trial: Spearman(val, test) and regret."))
    section.blocks += [html.paragraph("Per grid point:"), html.table(grid_gap)]
    return section


def _detail_sections(summary: pd.DataFrame, grid: pd.DataFrame,
                     error_table: pd.DataFrame, metric: str = PRIMARY_METRIC,
                     ) -> list[html.Section]:
    """All metrics of the selected configurations, every grid point, failures, definitions."""
    other = html.Section("All metrics and scores", [
        html.paragraph("Median of the validation-selected configuration per method; improvement "
                       "in % (higher is better), normalised error in [0, 1] (lower is better)."),
        html.table(summary.pivot_table(index="method", columns=["score", "metric"],
                                       values="median").reindex(
            ordered_methods(summary["method"])).reset_index()
            if not summary.empty else summary),
    ])
    grid_section = html.Section("Per grid point", [
        html.table(_primary(grid, metric).drop(columns=["metric", "score"], errors="ignore"))
    ])
    failed = html.Section("Failed trials", [
        html.paragraph(f"{len(error_table)} failed trials (excluded from all statistics)."),
        html.table(error_table),
    ])
    definitions = html.Section("Definitions", [html.definitions(DEFINITIONS)])
    return [other, grid_section, failed, definitions]


def _search(results: pd.DataFrame, outputs: Outputs) -> list[html.Section]:
    """The "Search" section when search trials are reported (none for a grid-only report)."""
    from engine.report.search import search_section

    try:
        section = search_section(results, outputs)
    except Exception as exc:  # keep the rest of the report if the search views fail
        warnings.warn(f"report search section failed: {exc!r}", stacklevel=2)
        return [html.Section("Search", [html.paragraph(f"Search views failed: {exc!r}")])]
    return [section] if section is not None else []


def _primary(frame: pd.DataFrame, metric: str = PRIMARY_METRIC) -> pd.DataFrame:
    """Rows of ``metric``'s improvement score (the report's metric)."""
    if frame.empty:
        return frame
    keep = (frame["metric"] == metric) & (frame["score"] == "improvement")
    return frame[keep].drop(columns=["metric", "score"])


def _files_section(outputs: Outputs) -> html.Section:
    """The list of written files."""
    rows = [dict(kind="table", name=n, files=f"{n}.csv, {n}.parquet") for n in outputs.tables]
    rows += [dict(kind="figure", name=n, files=f"{n}.png, {n}.svg") for n in outputs.figures]
    notes = [html.paragraph(n) for n in outputs.notes]
    return html.Section("Files", [html.table(pd.DataFrame(rows)), *notes])
