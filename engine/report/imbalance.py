"""The report's *Imbalance* section: minority-class scores per method x minority share.

Written only when the results have an imbalance axis (some finite ``minority_share``); the
folds at the dataset's own proportions (``minority_share`` NaN) are the share ``as_is``. The
unit is the dataset-fold of one share (seeds averaged), as in the scaling statistics, with the
same seeded bootstrap (``engine.report.scaling_stats_core``):

* ``imbalance_summary``: per method x grid point x share x metric (minority F1, PR-AUC,
  balanced accuracy, ROC-AUC): mean fine-tuned test score (95 % CI), mean zero-shot test score
  and the mean change against zero-shot (CI);
* ``imbalance_paired``: paired differences on the same dataset-fold-share, every method
  against finetune and each SCM method against its diffusion (TabDDPM) twin, per share and
  pooled (``all``): mean (CI), Wilcoxon signed-rank p, wins / ties / losses;
* ``imbalance_f1``: mean minority F1 against the share, one line per method, CI error bars.
"""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from engine.report.export import Outputs  # noqa: E402
from engine.report.load import CONFIG_KEYS  # noqa: E402
from engine.report.reference import REFERENCE_METHOD, ordered_methods  # noqa: E402
from engine.report.scaling_stats_core import (  # noqa: E402
    DECIMALS,
    _method_order,
    mean_ci,
)
from engine.spec.sweep_file import AS_IS  # noqa: E402

SHARE = "minority_share"
"""The share label of the folds at the dataset's own proportions (``minority_share`` NaN)."""
POOLED = "all"
"""The share label of the paired rows pooled over every share."""
SUMMARY_METRICS: tuple[str, ...] = ("f1_minority", "pr_auc", "balanced_accuracy", "roc_auc")
PAIRED_METRICS: tuple[str, ...] = ("f1_minority", "pr_auc")
UNITS: list[str] = [SHARE, "dataset", "fold"]
"""A dataset-fold of one minority share: the resampling unit (seeds averaged within it)."""
MIN_WILCOXON = 5
"""Fewest non-zero paired differences for a Wilcoxon p (NaN below)."""
SCM_DIFFUSION_PAIRS: tuple[tuple[str, str], ...] = (
    ("causalmixft", "causalmixft_tabddpm"),
    ("causalmixft_balanced", "causalmixft_tabddpm_balanced"),
    ("scm", "tabddpm"),
    ("scm_balanced", "tabddpm_balanced"),
)
"""(SCM method, its diffusion twin): the same method with TabDDPM rows in place of SCM rows."""


def has_imbalance(results: pd.DataFrame) -> bool:
    """True when some trial has a finite ``minority_share`` (an imbalance sweep)."""
    return SHARE in results.columns and bool(
        np.isfinite(pd.to_numeric(results[SHARE], errors="coerce")).any())


def share_label(value: object) -> str:
    """``0.05`` -> ``'0.05'``; NaN (the dataset's own proportions) -> ``'as_is'``."""
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    return f"{number:g}" if np.isfinite(number) else AS_IS


def share_order(labels: object) -> list[str]:
    """Unique share labels, numeric ascending, then ``as_is``, then ``all``."""
    def key(label: str) -> tuple[int, float]:
        if label in (AS_IS, POOLED):
            return (1 if label == AS_IS else 2, 0.0)
        return (0, float(label))
    return sorted({str(x) for x in labels}, key=key)


def unit_values(results: pd.DataFrame) -> pd.DataFrame:
    """One row per grid point x share x dataset-fold: the mean over seeds of every test and
    zero-shot test metric of ``SUMMARY_METRICS`` (NaNs skipped) and ``n_trials``."""
    rows = results[results["status"] == "ok"] if "status" in results.columns else results
    if "search" in rows.columns:
        rows = rows[rows["search"].fillna("") == ""]
    cols = [f"{p}{m}" for m in SUMMARY_METRICS for p in ("test_", "zero_shot_test_")
            if f"{p}{m}" in rows.columns]
    frame = rows[CONFIG_KEYS + ["dataset", "fold"]].copy()
    frame[SHARE] = rows[SHARE].map(share_label) if SHARE in rows.columns else AS_IS
    frame["fold"] = pd.to_numeric(frame["fold"]).astype("int64")
    for col in cols:
        frame[col] = pd.to_numeric(rows[col], errors="coerce").astype(float)
    frame["n_trials"] = 1
    keys = CONFIG_KEYS + UNITS
    grouped = frame.groupby(keys, as_index=False, dropna=False)
    out = grouped[cols].mean().merge(grouped["n_trials"].sum(), on=keys)
    return out.sort_values(keys).reset_index(drop=True)


def _summary_row(part: pd.DataFrame, metric: str) -> dict[str, object]:
    test = part.get(f"test_{metric}", pd.Series(np.nan, index=part.index)).to_numpy(float)
    zero = part.get(f"zero_shot_test_{metric}",
                    pd.Series(np.nan, index=part.index)).to_numpy(float)
    has = np.isfinite(test)
    mean, low, high = mean_ci(test)
    change, c_low, c_high = mean_ci(test - zero)
    zero_mean = float(np.nanmean(zero[has])) if np.isfinite(zero[has]).any() else np.nan
    return {"metric": metric, "n_dataset_folds": int(has.sum()), "mean": mean,
            "ci_low": low, "ci_high": high, "zero_shot_mean": zero_mean,
            "change_mean": change, "change_ci_low": c_low, "change_ci_high": c_high}


def imbalance_summary(units: pd.DataFrame) -> pd.DataFrame:
    """Per grid point x share x metric: the fine-tuned test mean (CI), zero-shot mean, and the
    mean change against zero-shot (CI), over dataset-folds."""
    rows = []
    for point, part in units.groupby(CONFIG_KEYS + [SHARE], dropna=False):
        for metric in SUMMARY_METRICS:
            rows.append({**dict(zip(CONFIG_KEYS + [SHARE], point)), **_summary_row(part, metric)})
    if not rows:
        return pd.DataFrame()
    return _sorted(pd.DataFrame(rows), ["metric"])


def _sorted(table: pd.DataFrame, extra: list[str]) -> pd.DataFrame:
    """Report method order, then scale, mix, share (numeric, ``as_is``, ``all``), ``extra``."""
    rank = {label: i for i, label in enumerate(share_order(table[SHARE]))}
    table = table.assign(_share=table[SHARE].map(rank))
    table = _method_order(table, ["synthetic_scale", "mix_ratio", "_share", *extra])
    return table.drop(columns="_share")


def paired_stats(diff: np.ndarray) -> dict[str, float]:
    """n, mean difference (CI), Wilcoxon p (NaN with < ``MIN_WILCOXON`` non-zero pairs),
    wins / ties / losses (differences rounded to ``DECIMALS``)."""
    from scipy.stats import wilcoxon

    diff = np.round(diff[np.isfinite(diff)], DECIMALS)
    mean, low, high = mean_ci(diff)
    p = np.nan
    if int(np.count_nonzero(diff)) >= MIN_WILCOXON:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = float(wilcoxon(diff).pvalue)
    return {"n_pairs": len(diff), "mean_diff": mean, "ci_low": low, "ci_high": high,
            "p_wilcoxon": p, "wins": int((diff > 0).sum()), "ties": int((diff == 0).sum()),
            "losses": int((diff < 0).sum())}


def diffusion_twin(method: str) -> str | None:
    """The diffusion twin of an SCM method: ``SCM_DIFFUSION_PAIRS``, else ``causalmixft<x>`` ->
    ``causalmixft_tabddpm<x>`` and ``scm<x>`` -> ``tabddpm<x>`` (None for other methods)."""
    explicit = dict(SCM_DIFFUSION_PAIRS)
    if method in explicit:
        return explicit[method]
    if "tabddpm" in method:
        return None
    if method.startswith("causalmixft"):
        return "causalmixft_tabddpm" + method[len("causalmixft"):]
    if method.startswith("scm"):
        return "tabddpm" + method[len("scm"):]
    return None


def comparisons(methods: object) -> list[tuple[str, str, str]]:
    """``(comparison, method, reference)`` of the methods present: each against finetune,
    then each SCM method against its diffusion twin."""
    present = ordered_methods(methods)
    rows = [("vs_finetune", m, REFERENCE_METHOD) for m in present if m != REFERENCE_METHOD
            and REFERENCE_METHOD in present]
    rows += [("scm_vs_diffusion", m, diffusion_twin(m)) for m in present
             if diffusion_twin(m) in present]
    return rows  # type: ignore[return-value]


def _joined(units: pd.DataFrame, method: str, reference: str, metric: str) -> pd.DataFrame:
    """Paired rows of ``method`` and ``reference`` on the same dataset-fold-share, and on the
    same grid point where the reference has several (not finetune: it is averaged)."""
    col, grid = f"test_{metric}", ["synthetic_scale", "mix_ratio"]
    left = units[units["method"] == method]
    right = units[units["method"] == reference]
    several = len(right[grid].drop_duplicates()) > 1
    on = UNITS + grid if several and reference != REFERENCE_METHOD else UNITS
    right = right.groupby(on, as_index=False, dropna=False)[col].mean()
    joined = left.merge(right, on=on, suffixes=("", "_ref"))
    return joined.assign(diff=joined[col] - joined[f"{col}_ref"])


def imbalance_paired(units: pd.DataFrame) -> pd.DataFrame:
    """Paired differences (method - reference) per comparison x grid point x share (and
    pooled: ``all``) x metric."""
    rows = []
    for comparison, method, reference in comparisons(units["method"]):
        for metric in PAIRED_METRICS:
            if f"test_{metric}" not in units.columns:
                continue
            joined = _joined(units, method, reference, metric)
            for point, part in joined.groupby(["synthetic_scale", "mix_ratio"], dropna=False):
                shares = [(s, part[part[SHARE] == s]) for s in share_order(part[SHARE])]
                for share, sub in [*shares, (POOLED, part)]:
                    rows.append({"comparison": comparison, "method": method,
                                 "reference": reference, "synthetic_scale": point[0],
                                 "mix_ratio": point[1], SHARE: share, "metric": metric,
                                 **paired_stats(sub["diff"].to_numpy(dtype=float))})
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows)
    table["_cmp"] = (table["comparison"] != "vs_finetune").astype(int)
    return _sorted(table, ["_cmp", "reference", "metric"]).drop(columns="_cmp")


def f1_figure(summary: pd.DataFrame) -> plt.Figure:
    """Mean minority F1 (95 % CI) against the minority share, one line per grid point."""
    f1 = summary[summary["metric"] == "f1_minority"]
    shares = share_order(f1[SHARE])
    xpos = {s: i for i, s in enumerate(shares)}
    fig, ax = plt.subplots(figsize=(6.0, 4.4))
    colours = plt.get_cmap("tab10")
    points = list(f1.groupby(CONFIG_KEYS, sort=False, dropna=False))
    many = f1.drop_duplicates(CONFIG_KEYS).groupby("method").size() > 1
    for i, (point, part) in enumerate(points):
        part = part.sort_values(SHARE, key=lambda s: s.map(xpos))
        x = part[SHARE].map(xpos).to_numpy(float) + (i - (len(points) - 1) / 2) * 0.04
        y = part["mean"].to_numpy(float)
        err = np.vstack([y - part["ci_low"].to_numpy(float), part["ci_high"].to_numpy(float) - y])
        label = point[0] + (f" (scale {point[1]:g}, mix {point[2]:g})" if many[point[0]] else "")
        ax.errorbar(x, y, yerr=np.clip(np.nan_to_num(err), 0, None), fmt="o", ms=4,
                    capsize=2, linewidth=1, color=colours(i % 10), label=label)
        drawn = (part[SHARE] != AS_IS).to_numpy()  # as_is: a point of its own, no line to it
        ax.plot(x[drawn], y[drawn], linewidth=1, color=colours(i % 10))
    if AS_IS in xpos and len(shares) > 1:
        ax.axvline(xpos[AS_IS] - 0.5, color="0.6", linewidth=0.8, linestyle=":")
    ax.set_xticks(range(len(shares)), shares)
    ax.set_xlabel("minority share of the training rows (as_is: the dataset's own)")
    ax.set_ylabel("minority-class F1 (test)")
    ax.legend(fontsize=7, loc="best")
    ax.set_title("minority F1 per method and share; bars = bootstrap 95 % CI", fontsize=9)
    return fig


def write_imbalance_report(results: pd.DataFrame, outputs: Outputs) -> None:
    """``imbalance_summary``, ``imbalance_paired`` and ``imbalance_f1`` for a sweep with a
    minority-share axis; nothing (and no warning) otherwise. A failure is a warning and a note
    in the report, never fatal."""
    if not has_imbalance(results):
        return
    try:
        units = unit_values(results)
        summary = outputs.table("imbalance_summary", imbalance_summary(units))
        outputs.table("imbalance_paired", imbalance_paired(units))
        if not summary.empty:
            outputs.figure("imbalance_f1", f1_figure(summary))
    except Exception as exc:  # the other report outputs stay
        warnings.warn(f"imbalance report failed: {exc!r}", stacklevel=2)
        outputs.notes.append(f"Imbalance report failed: {exc!r}.")
