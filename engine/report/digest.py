"""``digest.md``: the report's headline numbers as Markdown tables, ready to quote on a study page.

Every number here comes from a table the report has just written (the frame kept in
``Outputs``, not read back from disk), so a study page that quotes the digest is rebuilt by
the same ``causalmix report`` command as the tables.
Sections appear only for the tables this report has (scaling grid, laws, split halves,
paper table, shift, imbalance means and paired differences)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from engine.report.export import Outputs

Formatter = Callable[[pd.Series], str]


def signed(value: object, digits: int = 2) -> str:
    """``+0.68`` / ``−0.08`` (typographic minus); ``–`` for a missing value."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(number):
        return "–"
    text = f"{number:+.{digits}f}"
    return text.replace("-", "−")


def with_ci(row: pd.Series, mean: str, low: str, high: str, digits: int = 2) -> str:
    """``+0.68 [+0.37, +1.06]``."""
    return (f"{signed(row.get(mean), digits)} "
            f"[{signed(row.get(low), digits)}, {signed(row.get(high), digits)}]")


def text(column: str) -> Formatter:
    """The cell as text."""
    return lambda row: str(row[column])


def count(column: str) -> Formatter:
    """The cell as an integer."""
    return lambda row: str(int(row[column]))


def percent(column: str) -> Formatter:
    """A share in [0, 1] as a whole percentage."""
    return lambda row: f"{100 * float(row[column]):.0f} %"


def number(column: str, spec: str) -> Formatter:
    """The cell in format ``spec``; ``–`` when missing."""
    return lambda row: "–" if pd.isna(row.get(column)) else format(float(row[column]), spec)


def ci(mean: str, low: str, high: str, digits: int = 2) -> Formatter:
    """The ``with_ci`` cell of three columns."""
    return lambda row: with_ci(row, mean, low, high, digits)


def markdown_table(frame: pd.DataFrame, columns: dict[str, Formatter]) -> str:
    """A Markdown table with one column per ``columns`` entry (header → cell formatter).

    Written by hand because pandas' ``to_markdown`` needs the optional ``tabulate``."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(f(row) for f in columns.values()) + " |")
    return "\n".join(lines)


def _point(row: pd.Series) -> str:
    if row["method"] == "finetune" or not float(row.get("synthetic_scale") or 0):
        return "–"
    text = f"scale {row['synthetic_scale']:g}"
    mix = row.get("mix_ratio")
    if row["method"] == "causalmixft" and pd.notna(mix):
        text += f", mix {mix:g}"
    return text


def _verdict(row: pd.Series) -> str:
    if pd.isna(row.get("replicates")):
        return "–"
    text = "agree" if bool(row["replicates"]) else "differ"
    return text + (", both CIs exclude 0" if bool(row.get("replicates_significant")) else "")


def _with_halves(frame: pd.DataFrame, tables: dict[str, pd.DataFrame], claim: str,
                 keys: list[str]) -> pd.DataFrame:
    """``frame`` with the split-half verdict of ``claim`` joined on ``keys``."""
    split = tables.get("split_half")
    if split is None or split.empty:
        return frame.assign(replicates=np.nan, replicates_significant=np.nan)
    split = split[split["claim"] == claim][keys + ["replicates", "replicates_significant"]]
    return frame.merge(split, on=keys, how="left")


def _scaling(frame: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> str:
    keys = ["method", "synthetic_scale", "mix_ratio"]
    frame = _with_halves(frame, tables, "diff_vs_finetune", keys)
    curves = tables.get("scaling_curves")
    if curves is not None and {"ci_low", "ci_high"} <= set(curves.columns):
        medians = curves[keys + ["ci_low", "ci_high"]].rename(
            columns={"ci_low": "median_ci_low", "ci_high": "median_ci_high"})
        frame = frame.merge(medians, on=keys, how="left")
    else:
        frame = frame.assign(median_ci_low=np.nan, median_ci_high=np.nan)
    return markdown_table(frame, {
        "method": text("method"),
        "grid point": _point,
        "dataset-folds": count("n"),
        "median [95 % CI]": ci("median", "median_ci_low", "median_ci_high"),
        "mean [95 % CI]": ci("mean", "ci_low", "ci_high"),
        "step-0 share": percent("share_step0"),
        "mean − finetune [95 % CI]": lambda r: "–" if pd.isna(r.get("diff_vs_finetune"))
        else with_ci(r, "diff_vs_finetune", "diff_ci_low", "diff_ci_high"),
        "split halves": _verdict,
    })


def _best_mix(frame: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> str:
    return markdown_table(frame, {
        "method": text("method"),
        "dataset": text("dataset"),
        "folds": count("n_folds"),
        "best mix": number("best_mix_ratio", "g"),
        "its mean [95 % CI]": ci("mean", "ci_low", "ci_high"),
        "chosen in (share of resamples)": percent("win_share"),
    })


def _laws(frame: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> str:
    slopes = frame["parameter"] == "slope"
    halves = _with_halves(frame[slopes], tables, "slope", ["method", "mix_ratio"])
    frame = pd.concat([frame[~slopes], halves.set_axis(frame.index[slopes])]).sort_index()
    frame = frame.assign(mix=frame["mix_ratio"].map(lambda m: "all" if pd.isna(m) else f"{m:g}"))
    return markdown_table(frame, {
        "method": text("method"),
        "mix": lambda r: r["mix"],
        "law": text("law"),
        "parameter": text("parameter"),
        "estimate [95 % CI]": ci("estimate", "ci_low", "ci_high", 3),
        "p (slope = 0)": number("p_value", ".3f"),
        "AIC": number("aic", ".1f"),
        "failed fits": lambda r: f"{int(r['n_failed'])}/{int(r['n_boot'])}",
        "split halves (slope)": _verdict,
    })


def _split_half(frame: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> str:
    counts = frame.groupby("claim").agg(
        checks=("replicates", "size"), replicated=("replicates", "sum"),
        both_significant=("replicates_significant", "sum")).reset_index()
    return markdown_table(counts, {
        "claim": text("claim"),
        "checks": count("checks"),
        "same sign / choice in both halves": count("replicated"),
        "and both CIs exclude 0": count("both_significant"),
    })


def _paper(frame: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> str:
    return markdown_table(frame, {
        "method": text("method"),
        "median ± std (%)": text("improvement"),
        "dataset-folds": count("n_dataset_folds"),
        "mean rank": number("avg_rank", ".2f"),
        "reference median ± std (%)": lambda r: (
            "–" if pd.isna(r.get("reference_median_improvement")) else
            f"{signed(r['reference_median_improvement'])} ± {r['reference_std_improvement']:.2f}"),
    })


IMBALANCE_METRICS = ("f1_minority", "pr_auc")


def _per_metric(frame: pd.DataFrame, caption: str, render: Callable[[pd.DataFrame], str]) -> str:
    """One captioned table per imbalance metric that ``frame`` holds (``caption`` follows the
    metric's name), rendered from that metric's rows."""
    parts = []
    for metric in IMBALANCE_METRICS:
        rows = frame[frame["metric"] == metric]
        if not rows.empty:
            parts += [f"{metric}: {caption}", "", render(rows), ""]
    return "\n".join(parts).rstrip("\n")


def _imbalance(frame: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> str:
    return _per_metric(frame, "paired differences (method − reference)", _paired)


def _paired(frame: pd.DataFrame) -> str:
    return markdown_table(frame, {
        "comparison": lambda r: f"{r['method']} − {r['reference']}",
        "minority share": text("minority_share"),
        "pairs": count("n_pairs"),
        "mean difference [95 % CI]": ci("mean_diff", "ci_low", "ci_high", 3),
        "Wilcoxon p": number("p_wilcoxon", ".3f"),
        "wins/ties/losses": lambda r: f"{int(r['wins'])}/{int(r['ties'])}/{int(r['losses'])}",
    })


def _share_grid(frame: pd.DataFrame) -> str:
    """One row per method (and grid point, where a method has several), one column per
    minority share: the selected model's mean test score [95 % CI] (dataset-folds), from the
    rows of one metric."""
    frame = frame.copy()
    points = frame.groupby("method")[["synthetic_scale", "mix_ratio"]].transform("nunique")
    several = (points > 1).any(axis=1)
    frame["row"] = [f"{r['method']} ({_point(r)})" if many else r["method"]
                    for many, (_, r) in zip(several, frame.iterrows())]
    frame["cell"] = [f"{r['mean']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] "
                     f"({int(r['n_dataset_folds'])})" for _, r in frame.iterrows()]
    shares = sorted(frame["minority_share"].astype(str).unique(),
                    key=lambda v: (v == "as_is", float(v) if v != "as_is" else 0.0))
    wide = frame.assign(share=frame["minority_share"].astype(str)).pivot(
        index="row", columns="share", values="cell")
    order = list(dict.fromkeys(frame["row"]))
    wide = wide.reindex(index=order, columns=shares).fillna("–").reset_index()
    columns: dict[str, Formatter] = {"method": text("row")}
    columns.update({f"share {v}": text(v) for v in shares})
    return markdown_table(wide, columns)


def _imbalance_means(frame: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> str:
    return _per_metric(frame, "mean of the selected model [95 % CI] (dataset-folds)",
                       _share_grid)


def _shift(frame: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> str:
    return markdown_table(frame, {
        "method": text("method"),
        "grid point": _point,
        "dataset-folds": count("n_dataset_folds"),
        "in-domain improvement (%) [95 % CI]": ci("id_mean_improvement_pct", "id_ci_low",
                                                   "id_ci_high"),
        "out-of-domain improvement (%) [95 % CI]": ci("ood_mean_improvement_pct", "ood_ci_low",
                                                       "ood_ci_high"),
        "ID ROC-AUC": number("id_test_roc_auc", ".3f"),
        "OOD ROC-AUC": number("ood_test_roc_auc", ".3f"),
        "gap (ID − OOD)": lambda r: signed(r.get("mean_gap"), 3),
    })


Column = Callable[[pd.Series], str]


def _diff_columns(name: str) -> dict[str, Column]:
    """The CI and Wilcoxon columns of one paired difference of the shift tables (``gap``:
    ``gap_diff_*`` in ROC-AUC, ``ood``: ``ood_improvement_diff_*`` in percent)."""
    if name == "gap":
        return {"gap difference [95 % CI]": ci("gap_diff_mean", "gap_diff_ci_low",
                                               "gap_diff_ci_high", 3),
                "Wilcoxon p (gap)": number("gap_diff_p_wilcoxon", ".3f")}
    return {"OOD improvement difference (%) [95 % CI]": ci(
                "ood_improvement_diff_mean", "ood_improvement_diff_ci_low",
                "ood_improvement_diff_ci_high"),
            "Wilcoxon p (OOD)": number("ood_improvement_diff_p_wilcoxon", ".3f")}


def _gap_columns() -> dict[str, Column]:
    return {"method − finetune": text("method"), "grid point": _point,
            "pairs": count("n_dataset_folds"), **_diff_columns("gap"), **_diff_columns("ood")}


def _shift_gap(frame: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> str:
    return markdown_table(frame, _gap_columns())


def _shift_gap_by_kind(frame: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> str:
    return markdown_table(frame, {"shift": text("shift_kind"), **_gap_columns()})


def _shift_scale(frame: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> str:
    return markdown_table(frame, {
        "method": text("method"),
        "mix": lambda r: "–" if r["method"] != "causalmixft" else f"{r['mix_ratio']:g}",
        "scales": lambda r: f"{r['scale_high']:g} − {r['scale_low']:g}",
        "pairs": count("n_dataset_folds"), **_diff_columns("ood"), **_diff_columns("gap"),
    })


Renderer = Callable[[pd.DataFrame, dict[str, pd.DataFrame]], str]
JOINED = ("scaling_curves",)
"""Tables read only to be joined into a section (the median's interval)."""
SECTIONS: tuple[tuple[str, str, Renderer], ...] = (
    ("scaling_summary", "Improvement over zero-shot by grid point (%)", _scaling),
    ("scaling_laws", "Scaling laws", _laws),
    ("best_mix", "Best mix ratio per dataset and pooled", _best_mix),
    ("split_half", "Split-half replication", _split_half),
    ("paper_table", "In the reference study's units", _paper),
    ("shift_summary", "In-domain and out-of-domain improvement", _shift),
    ("shift_gap", "Robustness gap against finetune, paired", _shift_gap),
    ("shift_scale", "Out-of-domain change with synthetic scale, paired", _shift_scale),
    ("shift_gap_by_kind", "Robustness gap against finetune, paired, by kind of shift",
     _shift_gap_by_kind),
    ("imbalance_summary", "Minority-class F1 and PR-AUC by minority share", _imbalance_means),
    ("imbalance_paired", "Minority-class F1 and PR-AUC, paired", _imbalance),
)


def write_digest(outputs: Outputs) -> str | None:
    """Write ``digest.md`` from the tables already written to ``outputs``; None when none
    applies."""
    parts = ["# Report digest", "",
             "Numbers read from this report's tables (file name in each heading)."]
    wanted = {name for name, _, _ in SECTIONS} | set(JOINED)
    tables = {n: f for n, f in outputs.frames.items() if n in wanted}
    for name, title, render in SECTIONS:
        frame = tables.get(name)
        if frame is None or frame.empty:
            continue
        parts += ["", f"## {title} (`{name}.csv`)", "", render(frame, tables)]
    if len(parts) == 3:
        return None
    text = "\n".join(parts) + "\n"
    (outputs.out_dir / "digest.md").write_text(text, encoding="utf-8")
    return text
