"""The report's *Shift* section: in-domain (ID) against out-of-domain (OOD) test scores.

Written only when the results hold OOD scores (a sweep with ``shift:``). The unit is the
dataset-fold (seeds averaged), as in the scaling statistics, with the same seeded bootstrap
(``engine.report.scaling_stats_core``):

* ``shift_summary``: per method x grid point, mean (95 % CI) and median of the ID and the OOD
  normalised improvement, the mean ID and OOD test ROC-AUC of the selected model and their
  gap (ID - OOD): the TableShift view, and over scale x mix the OOD scaling curves;
* ``shift_gap``: the robustness gap of each method against finetune's on the same
  dataset-fold: mean difference (CI) and a Wilcoxon signed-rank test, and the same for the OOD
  improvement (does a method shrink the OOD loss?);
* ``shift_gap_by_kind``: the same pairs split by the kind of shift (``domain``, ``feature``,
  ``cluster``: the first word of the trial's ``shift``), when the sweep mixes kinds: a natural
  domain and a k-means subpopulation are different questions (TableShift against WhyShift);
* ``shift_scale``: does robustness grow with synthetic scale? Per method x mix, the largest
  scale against the smallest on the same dataset-folds: the difference of the OOD improvement
  and of the gap (CI, Wilcoxon);
* ``shift_scatter``: ID against OOD test ROC-AUC, one point per trial, by method;
* ``shift_curves``: the ID and the OOD mean improvement (95 % CI) over synthetic scale, one
  line per method x mix, finetune as the dashed reference: the OOD scaling curves.
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
    UNIT_KEYS,
    _method_order,
    grid_values,
    mean_ci,
)

ID_IMPROVEMENT = "normalized_improvement_pct"
OOD_IMPROVEMENT = "ood_normalized_improvement_pct"
ID_SCORE, OOD_SCORE = "test_roc_auc", "ood_test_roc_auc"


def has_shift(results: pd.DataFrame) -> bool:
    """True when some finished trial has an OOD test score."""
    return OOD_SCORE in results.columns and bool(
        np.isfinite(pd.to_numeric(results[OOD_SCORE], errors="coerce")).any())


def unit_values(results: pd.DataFrame) -> pd.DataFrame:
    """One row per grid point x dataset-fold: the mean ID/OOD improvement, scores and gap."""
    rows = results.assign(shift_gap=pd.to_numeric(results[ID_SCORE], errors="coerce")
                          - pd.to_numeric(results[OOD_SCORE], errors="coerce"))
    keys = CONFIG_KEYS + UNIT_KEYS
    frames = [grid_values(rows, col).rename(columns={"value": col})[keys + [col]]
              for col in (ID_IMPROVEMENT, OOD_IMPROVEMENT, ID_SCORE, OOD_SCORE, "shift_gap")]
    out = frames[0]
    for frame in frames[1:]:
        out = out.merge(frame, on=keys, how="outer")
    return out


def shift_summary(units: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for point, part in units.groupby(CONFIG_KEYS, dropna=False):
        row = dict(zip(CONFIG_KEYS, point))
        row["n_dataset_folds"] = int(part[OOD_IMPROVEMENT].notna().sum())
        for name, col in (("id", ID_IMPROVEMENT), ("ood", OOD_IMPROVEMENT)):
            mean, low, high = mean_ci(part[col].to_numpy(dtype=float))
            row.update({f"{name}_mean_improvement_pct": mean, f"{name}_ci_low": low,
                        f"{name}_ci_high": high,
                        f"{name}_median_improvement_pct": float(part[col].median())})
        row.update(id_test_roc_auc=float(part[ID_SCORE].mean()),
                   ood_test_roc_auc=float(part[OOD_SCORE].mean()),
                   mean_gap=float(part["shift_gap"].mean()))
        rows.append(row)
    return _method_order(pd.DataFrame(rows))


def _paired(diff: np.ndarray) -> dict[str, float]:
    from scipy.stats import wilcoxon

    diff = diff[np.isfinite(diff)]
    mean, low, high = mean_ci(diff)
    p = np.nan
    if len(diff) >= 2 and np.any(diff != 0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = float(wilcoxon(diff).pvalue)
    return {"n": len(diff), "mean": mean, "ci_low": low, "ci_high": high, "p_wilcoxon": p}


def _paired_diff(pairs: pd.DataFrame, column: str, suffix: str) -> dict[str, float]:
    """``_paired`` of ``column`` minus its twin ``column + suffix`` (rows: dataset-folds)."""
    return _paired((pairs[column] - pairs[column + suffix]).to_numpy(dtype=float))


def _prefixed(name: str, stats: dict[str, float]) -> dict[str, float]:
    """A ``_paired`` result as table columns ``<name>_mean`` ..., without its count."""
    return {f"{name}_{k}": v for k, v in stats.items() if k != "n"}


def _has_scale(frame: pd.DataFrame) -> pd.Series:
    """Rows of a method with synthetic rows (scale > 0)."""
    return pd.to_numeric(frame["synthetic_scale"], errors="coerce") > 0


def shift_gap(units: pd.DataFrame) -> pd.DataFrame:
    """Each method x grid point against finetune on the same dataset-folds: the difference of
    the robustness gap (negative: more robust) and of the OOD improvement (positive: better)."""
    base = units[units["method"] == REFERENCE_METHOD].set_index(UNIT_KEYS)
    rows = []
    if base.empty:
        return pd.DataFrame()
    for point, part in units[units["method"] != REFERENCE_METHOD].groupby(CONFIG_KEYS):
        part = part.set_index(UNIT_KEYS).join(base[["shift_gap", OOD_IMPROVEMENT]],
                                              rsuffix="_ref", how="inner")
        gap = _paired_diff(part, "shift_gap", "_ref")
        ood = _paired_diff(part, OOD_IMPROVEMENT, "_ref")
        rows.append({**dict(zip(CONFIG_KEYS, point)), "n_dataset_folds": gap["n"],
                     **_prefixed("gap_diff", gap), **_prefixed("ood_improvement_diff", ood)})
    return _method_order(pd.DataFrame(rows)) if rows else pd.DataFrame()


def shift_scale(units: pd.DataFrame) -> pd.DataFrame:
    """Per method x mix with two or more scales: largest minus smallest scale, paired over
    dataset-folds, of the OOD improvement (positive: more scale, less OOD loss) and the gap."""
    rows = []
    scaled = units[_has_scale(units)]
    for (method, mix), part in scaled.groupby(["method", "mix_ratio"], dropna=False):
        scales = sorted(part["synthetic_scale"].unique())
        if len(scales) < 2:
            continue
        low = part[part["synthetic_scale"] == scales[0]].set_index(UNIT_KEYS)
        high = part[part["synthetic_scale"] == scales[-1]].set_index(UNIT_KEYS)
        both = high.join(low[[OOD_IMPROVEMENT, "shift_gap"]], rsuffix="_low", how="inner")
        ood = _paired_diff(both, OOD_IMPROVEMENT, "_low")
        gap = _paired_diff(both, "shift_gap", "_low")
        rows.append({"method": method, "mix_ratio": mix, "scale_low": scales[0],
                     "scale_high": scales[-1], "n_dataset_folds": ood["n"],
                     **_prefixed("ood_improvement_diff", ood), **_prefixed("gap_diff", gap)})
    return _method_order(pd.DataFrame(rows), ["mix_ratio"]) if rows else pd.DataFrame()


def unit_kinds(results: pd.DataFrame) -> pd.DataFrame:
    """The kind of shift of each dataset-fold: the first word of its trials' ``shift``."""
    if "shift" not in results.columns:
        return pd.DataFrame(columns=UNIT_KEYS + ["shift_kind"])
    kinds = results["shift"].fillna("").astype(str).str.split(" ", n=1).str[0]
    return (results[UNIT_KEYS].assign(shift_kind=kinds)
            .drop_duplicates(UNIT_KEYS).reset_index(drop=True))


def shift_gap_by_kind(units: pd.DataFrame, kinds: pd.DataFrame) -> pd.DataFrame:
    """``shift_gap`` within each kind of shift; empty unless the units hold two kinds."""
    units = units.merge(kinds, on=UNIT_KEYS, how="left")
    named = sorted(k for k in units["shift_kind"].dropna().unique() if k)
    if len(named) < 2:
        return pd.DataFrame()
    frames = [shift_gap(units[units["shift_kind"] == kind]).assign(shift_kind=kind)
              for kind in named]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    return out[["shift_kind"] + [c for c in out.columns if c != "shift_kind"]]


def scatter_figure(results: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ok = results[np.isfinite(pd.to_numeric(results[OOD_SCORE], errors="coerce"))]
    colours = plt.get_cmap("tab10")
    for i, method in enumerate(ordered_methods(ok["method"])):
        part = ok[ok["method"] == method]
        ax.scatter(part[ID_SCORE], part[OOD_SCORE], s=9, alpha=0.6, color=colours(i % 10),
                   label=method)
    lo = float(np.nanmin(ok[[ID_SCORE, OOD_SCORE]].to_numpy(dtype=float)))
    ax.plot([lo, 1], [lo, 1], color="0.5", linewidth=0.8, linestyle="--")
    ax.set_xlabel("in-domain test ROC-AUC")
    ax.set_ylabel("out-of-domain test ROC-AUC")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("in-domain vs out-of-domain, one point per trial", fontsize=9)
    return fig


def curves_figure(summary: pd.DataFrame) -> plt.Figure:
    """ID (left) and OOD (right) mean improvement over synthetic scale, one line per method x
    mix with its bootstrap band; finetune's mean and band as the dashed reference."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    scaled = summary[_has_scale(summary)]
    ref = summary[summary["method"] == REFERENCE_METHOD]
    lines = list(scaled.groupby(["method", "mix_ratio"], dropna=False, sort=False))
    colours = plt.get_cmap("tab10")
    for ax, side, title in zip(axes, ("id", "ood"), ("in-domain test", "out-of-domain test")):
        for i, ((method, mix), line) in enumerate(lines):
            line = line.sort_values("synthetic_scale")
            x = line["synthetic_scale"].to_numpy(dtype=float)
            label = f"{method} mix {mix:g}" if method == "causalmixft" else method
            ax.plot(x, line[f"{side}_mean_improvement_pct"], marker="o", color=colours(i % 10),
                    label=label)
            ax.fill_between(x, line[f"{side}_ci_low"], line[f"{side}_ci_high"],
                            color=colours(i % 10), alpha=0.12, linewidth=0)
        if len(ref):
            r = ref.iloc[0]
            ax.axhline(r[f"{side}_mean_improvement_pct"], color="0.3", linestyle="--",
                       label=REFERENCE_METHOD)
            ax.axhspan(r[f"{side}_ci_low"], r[f"{side}_ci_high"], color="0.5", alpha=0.1,
                       linewidth=0)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("synthetic scale (x n_train)")
        ax.set_title(title, fontsize=9)
    axes[0].set_ylabel("mean normalised ROC-AUC improvement (%)")
    axes[1].legend(fontsize=7, loc="best")
    return fig


def write_shift_report(results: pd.DataFrame, outputs: Outputs) -> None:
    """The Shift files (module docstring) for a shifted sweep; nothing (and no warning)
    otherwise. ``shift_scale`` and ``shift_curves`` need a method with synthetic scales,
    ``shift_gap_by_kind`` two kinds of shift."""
    if not has_shift(results):
        return
    ok = results[results["status"] == "ok"] if "status" in results.columns else results
    units = unit_values(ok)
    summary = shift_summary(units)
    outputs.table("shift_summary", summary)
    outputs.table("shift_gap", shift_gap(units))
    scale = shift_scale(units)
    if len(scale):
        outputs.table("shift_scale", scale)
    by_kind = shift_gap_by_kind(units, unit_kinds(ok))
    if len(by_kind):
        outputs.table("shift_gap_by_kind", by_kind)
    outputs.figure("shift_scatter", scatter_figure(ok))
    if _has_scale(summary).any():
        outputs.figure("shift_curves", curves_figure(summary))
