"""Matplotlib figures of the report (headless backend)."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

REFERENCE_METHOD = "finetune"


def safe_name(name: str) -> str:
    """A file-name-safe version of a method or table name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)) or "unnamed"


def save_figure(fig: plt.Figure, stem: Path, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Write ``fig`` as ``stem.<format>`` for each format and close it."""
    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=150, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def _scale_axis(ax: plt.Axes, scales: np.ndarray) -> None:
    """Log x axis when all scales are positive, symmetric-log when zero is among them."""
    positive = scales[scales > 0]
    if len(positive) == 0:
        return
    if (scales <= 0).any():
        ax.set_xscale("symlog", linthresh=float(positive.min()))
    elif positive.max() / positive.min() >= 4:
        ax.set_xscale("log")
    else:
        return
    ticks = np.unique(scales)
    if len(ticks) <= 12:
        ax.set_xticks(ticks)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())


def scaling_figure(
    curves: pd.DataFrame,
    method: str,
    bands: pd.DataFrame | None = None,
    fit: pd.DataFrame | None = None,
    ylabel: str = "normalised ROC-AUC improvement (%)",
) -> plt.Figure:
    """Median improvement vs synthetic scale for one method; one line per mix ratio.

    The shaded band is the inter-quartile range over dataset-folds, or the bootstrap 95 %
    interval of the median when ``bands`` is given. The reference method (real rows only)
    is drawn as a horizontal line with its IQR.
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    rows = curves[(curves["method"] == method) & (curves["n"] > 0)]
    reference = curves[(curves["method"] == REFERENCE_METHOD) & (curves["n"] > 0)]
    scales = rows["synthetic_scale"].to_numpy(dtype=float)
    ratios = sorted(rows["mix_ratio"].dropna().unique())
    colours = plt.get_cmap("viridis")(np.linspace(0.05, 0.9, max(len(ratios), 1)))
    for colour, ratio in zip(colours, ratios):
        line = rows[rows["mix_ratio"] == ratio].sort_values("synthetic_scale")
        x = line["synthetic_scale"].to_numpy(dtype=float)
        label = f"mix {ratio:g}" if method != REFERENCE_METHOD else None
        ax.plot(x, line["median"], marker="o", color=colour, label=label)
        low, high, band_label = line["q25"], line["q75"], "IQR"
        if bands is not None:
            b = bands[(bands["method"] == method) & (bands["mix_ratio"] == ratio)]
            b = b.set_index("synthetic_scale").reindex(x)
            if b["ci_low"].notna().any():
                low, high, band_label = b["ci_low"].to_numpy(), b["ci_high"].to_numpy(), "95% CI"
        ax.fill_between(x, low, high, color=colour, alpha=0.18, linewidth=0)
        if fit is not None:
            _draw_fit(ax, fit, method, ratio, x, colour)
    if method != REFERENCE_METHOD and not reference.empty:
        ref = reference.iloc[0]
        ax.axhline(ref["median"], color="0.3", linestyle="--", label="finetune (real only)")
        low, high = ref["q25"], ref["q75"]
        if bands is not None and np.isfinite(ref.get("ci_low", np.nan)):
            low, high = ref["ci_low"], ref["ci_high"]
        ax.axhspan(low, high, color="0.5", alpha=0.1, linewidth=0)
    elif method == REFERENCE_METHOD and not rows.empty:
        ref = rows.iloc[0]
        ax.errorbar(
            [0.0],
            [ref["median"]],
            yerr=[[ref["median"] - ref["q25"]], [ref["q75"] - ref["median"]]],
            fmt="o",
            color="0.3",
        )
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    if len(scales):
        _scale_axis(ax, np.append(scales, 0.0) if method == REFERENCE_METHOD else scales)
    band_note = band_label if len(ratios) else "IQR"
    ax.set_xlabel("synthetic scale (synthetic rows / real training rows)")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{method}: median improvement over zero-shot (band: {band_note})")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return fig


def _draw_fit(
    ax: plt.Axes, fit: pd.DataFrame, method: str, ratio: float, x: np.ndarray, colour: object
) -> None:
    """Overlay the fitted saturating curve for one method and mix ratio, when available."""
    from engine.report.fits import predict

    row = fit[(fit["method"] == method) & (fit["mix_ratio"] == ratio) & fit["converged"]]
    if row.empty or len(x) < 2:
        return
    grid = np.geomspace(max(x[x > 0].min(), 1e-6), x.max(), 100) if (x > 0).any() else x
    ax.plot(grid, predict(row.iloc[0], grid), color=colour, linestyle=":", linewidth=1.2)
