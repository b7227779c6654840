"""Figure of the per-dataset mean scaling curves (headless backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from engine.report.reference import ordered_methods  # noqa: E402


def per_dataset_figure(table: pd.DataFrame, ncols: int = 3) -> plt.Figure:
    """One panel per method x mix ratio of ``scaling_per_dataset``: one line per dataset
    (mean over its folds) and the mean over datasets in black; log2 scale axis."""
    panels = [(m, r) for m in ordered_methods(table["method"])
              for r in sorted(table.loc[table["method"] == m, "mix_ratio"].unique())]
    nrows = max(1, int(np.ceil(len(panels) / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.7 * nrows), squeeze=False,
                             sharey=True)
    datasets = sorted(table["dataset"].unique())
    colours = dict(zip(datasets, plt.get_cmap("tab20")(np.linspace(0, 1, max(len(datasets), 1)))))
    for ax, (method, ratio) in zip(axes.ravel(), panels):
        part = table[(table["method"] == method) & (table["mix_ratio"] == ratio)]
        for dataset, line in part.groupby("dataset"):
            line = line.sort_values("synthetic_scale")
            ax.plot(line["synthetic_scale"], line["mean"], marker="o", markersize=2.5,
                    linewidth=1, alpha=0.8, color=colours[dataset], label=str(dataset))
        overall = part.groupby("synthetic_scale")["mean"].mean()
        ax.plot(overall.index, overall.to_numpy(), color="black", linewidth=2.2)
        ax.axhline(0.0, color="0.6", linewidth=0.8)
        if len(part) and (part["synthetic_scale"] > 0).all():
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_title(f"{method}, mix {ratio:g}", fontsize=9)
        ax.set_xlabel("synthetic scale", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("mean improvement (%)", fontsize=8)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=colours[d], label=d) for d in datasets]
    handles.append(Line2D([], [], color="black", linewidth=2.2, label="mean over datasets"))
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7)
    fig.suptitle("Per-dataset mean improvement vs synthetic scale (mean over folds)")
    fig.tight_layout()
    return fig
