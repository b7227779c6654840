"""Summary figures: critical-difference diagram, improvement boxes, grid heatmap, tracking."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from engine.report.reference import ordered_methods  # noqa: E402
from engine.report.stats import cd_cliques  # noqa: E402


def cd_diagram(ranks: pd.Series, cd: float, n_blocks: int, title: str = "") -> plt.Figure:
    """Critical-difference diagram: methods on an average-rank axis (1 = best, on the left).

    Thick bars join methods whose average ranks differ by less than the Nemenyi CD.
    """
    ranks = ranks.dropna().sort_values()
    k = len(ranks)
    cliques = cd_cliques(ranks, cd) if np.isfinite(cd) else []
    top = -0.25 - 0.1 * len(cliques)  # labels start below the clique bars
    height = 1.3 + 0.3 * ((max(k, 2) + 1) // 2) + 0.1 * len(cliques)
    fig, ax = plt.subplots(figsize=(7.2, height))
    low, high = 1, max(k, 2)
    ax.set_xlim(low - 0.3, high + 0.3)
    ax.set_ylim(top - 0.2 - 0.32 * ((k + 1) // 2), 1.0)
    ax.axis("off")
    ax.hlines(0, low, high, color="black", linewidth=1)
    for tick in range(low, high + 1):
        ax.vlines(tick, 0, 0.12, color="black", linewidth=1)
        ax.text(tick, 0.2, str(tick), ha="center", va="bottom", fontsize=9)
    half = (k + 1) // 2
    for i, (method, rank) in enumerate(ranks.items()):
        left = i < half
        level = i if left else k - 1 - i
        y = top - 0.1 - 0.32 * level
        x_text = low - 0.25 if left else high + 0.25
        ax.plot([rank, rank, x_text], [0, y, y], color="0.25", linewidth=0.9)
        ax.text(x_text, y, f"{method} ({rank:.2f})", ha="right" if left else "left",
                va="center", fontsize=9)
    if np.isfinite(cd):
        ax.plot([low, low + cd], [0.62, 0.62], color="black", linewidth=2)
        ax.text(low + cd / 2, 0.7, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=9)
        for j, group in enumerate(cliques):
            y = -0.15 - 0.1 * j
            ax.plot([ranks[group[0]] - 0.03, ranks[group[-1]] + 0.03], [y, y], color="crimson",
                    linewidth=3, solid_capstyle="round")
    ax.set_title(title or f"Average rank over {n_blocks} dataset-folds (Nemenyi, alpha = 0.05)",
                 fontsize=10)
    return fig


def improvement_boxes(selected: pd.DataFrame, column: str, label: str) -> plt.Figure:
    """Box plot of the validation-selected score per method over dataset-folds."""
    methods = ordered_methods(selected["method"])
    data = [selected.loc[selected["method"] == m, column].dropna().to_numpy() for m in methods]
    fig, ax = plt.subplots(figsize=(max(4.5, 1.0 * len(methods) + 1.5), 4.0))
    if methods:
        ax.boxplot(data, showfliers=True)
        ax.set_xticks(range(1, len(methods) + 1), methods, rotation=20)
    ax.axhline(0, color="0.6", linewidth=0.8)
    ax.set_ylabel(label)
    ax.set_title("Validation-selected configuration per dataset-fold")
    ax.grid(axis="y", alpha=0.3)
    return fig


def grid_heatmap(curves: pd.DataFrame, method: str) -> plt.Figure:
    """Median improvement over the scale x mix grid of one method."""
    rows = curves[(curves["method"] == method) & (curves["n"] > 0)]
    grid = rows.pivot_table(index="mix_ratio", columns="synthetic_scale", values="median")
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * max(grid.shape[1], 2), 1.4 + 0.6 * grid.shape[0]))
    data = grid.to_numpy(dtype=float)
    limit = float(np.nanmax(np.abs(data))) if np.isfinite(data).any() else 1.0
    image = ax.imshow(data, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto", origin="lower")
    for (i, j), value in np.ndenumerate(data):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(grid.shape[1]), [f"{v:g}" for v in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [f"{v:g}" for v in grid.index])
    ax.set_xlabel("synthetic scale")
    ax.set_ylabel("mix ratio")
    ax.set_title(f"{method}: median improvement (%)")
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def tracking_figure(tracking: pd.DataFrame) -> plt.Figure:
    """Per method: Spearman(val, test) across evaluation steps, and the selection regret."""
    methods = ordered_methods(tracking["method"])
    fig, axes = plt.subplots(1, 2, figsize=(max(7.0, 1.6 * len(methods) + 2), 3.8))
    for ax, column, label in [
        (axes[0], "spearman", "Spearman(val, test) over steps"),
        (axes[1], "regret", "test regret of val-selected step"),
    ]:
        data = [tracking.loc[tracking["method"] == m, column].dropna().to_numpy()
                for m in methods]
        if methods:
            ax.boxplot(data, showfliers=True)
            ax.set_xticks(range(1, len(methods) + 1), methods, rotation=20)
        ax.set_title(label, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    return fig
