"""TensorBoard hparams summaries, one run per trial (needs ``tensorboardX``; skipped without)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from engine.report.plots import safe_name
from engine.storage.results_schema import METRICS

HPARAM_COLUMNS = ["method", "generator", "dataset", "fold", "seed", "synthetic_scale",
                  "mix_ratio", "model", "status"]
SUBDIR = Path("tensorboard") / "hparams"


def _python(value: object) -> bool | str | float | int:
    """A plain Python scalar accepted by the hparams plugin."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def write_tensorboard(
    results: pd.DataFrame, evaluations: pd.DataFrame | None, sweep_dir: Path
) -> str:
    """Write ``<sweep_dir>/tensorboard/hparams/<trial>/`` for every trial; returns a note.

    Each run holds the hparams (grid point, dataset, fold, seed), the final scores as
    ``hparam/<score>`` metrics and, when available, val/test curves per evaluation step.
    The folder is rebuilt on each call so reruns on a growing sweep do not pile up.
    """
    try:
        from tensorboardX import SummaryWriter
        from tensorboardX.summary import hparams
    except ImportError:
        return "tensorboardX is not installed: TensorBoard summaries skipped"
    root = Path(sweep_dir) / SUBDIR
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    by_trial = {} if evaluations is None else dict(list(evaluations.groupby("trial_id")))
    metric_names = ["normalized_improvement_pct"] + [f"test_{m}" for m in METRICS]
    metric_names += [f"val_{m}" for m in METRICS]
    for _, trial in results.iterrows():
        hp = {c: _python(trial[c]) for c in HPARAM_COLUMNS if c in trial.index}
        metrics = {
            f"hparam/{m}": float(trial[m]) for m in metric_names if np.isfinite(float(trial[m]))
        }
        run = root / safe_name(str(trial["trial_id"]).replace("/", "__"))
        with SummaryWriter(logdir=str(run)) as writer:
            for summary in hparams(hp, metrics):
                writer.file_writer.add_summary(summary)
            for name, value in metrics.items():
                writer.add_scalar(name, value)
            steps = by_trial.get(trial["trial_id"])
            if steps is not None:
                for split in ("val", "test"):
                    pairs = steps[["step", f"{split}_roc_auc"]].to_numpy(dtype=float)
                    for step, value in pairs[np.isfinite(pairs[:, 1])]:
                        writer.add_scalar(f"curve/{split}_roc_auc", value, int(step))
    return f"TensorBoard hparams for {len(results)} trials in {root}"
