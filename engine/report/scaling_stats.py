"""Scaling statistics over dataset-folds, written by :func:`write_scaling_stats`.

``scaling_summary``, ``scaling_per_dataset`` (table and figure), ``scaling_laws``, ``best_mix``
and ``split_half``; the unit is the dataset-fold (seeds averaged), bootstrap intervals resample
dataset-folds with a fixed seed (``scaling_stats_core``). Tables: ``scaling_stats_tables``; laws
and the slope test: ``scaling_stats_laws`` / ``scaling_stats_fit``; split-half replication:
``scaling_stats_split``; figure: ``scaling_stats_plot``. Definitions in docs/report.md.
"""

from __future__ import annotations

import warnings

import pandas as pd

from engine.report.export import Outputs
from engine.report.scaling_stats_core import IMPROVEMENT, grid_values, has_scale_grid
from engine.report.scaling_stats_laws import scaling_laws
from engine.report.scaling_stats_plot import per_dataset_figure
from engine.report.scaling_stats_split import split_half_table
from engine.report.scaling_stats_tables import best_mix_table, per_dataset_table, scaling_summary


def write_scaling_stats(results: pd.DataFrame, outputs: Outputs,
                        column: str = IMPROVEMENT) -> None:
    """Write ``scaling_summary``, ``scaling_per_dataset`` (+ figure), ``scaling_laws``,
    ``best_mix`` and ``split_half`` when some method has a scale grid (silently nothing
    otherwise). A failure is a warning and a note in the report, never fatal."""
    try:
        if not has_scale_grid(grid_values(results, column)):
            return
        outputs.table("scaling_summary", scaling_summary(results, column))
        per_dataset = outputs.table("scaling_per_dataset", per_dataset_table(results, column))
        outputs.figure("scaling_per_dataset", per_dataset_figure(per_dataset))
        outputs.table("scaling_laws", scaling_laws(results, column))
        outputs.table("best_mix", best_mix_table(results, column))
        outputs.table("split_half", split_half_table(results, column))
    except Exception as exc:  # the other report outputs stay
        warnings.warn(f"scaling statistics failed: {exc!r}", stacklevel=2)
        outputs.notes.append(f"Scaling statistics failed: {exc!r}.")
