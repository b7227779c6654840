"""The ``tabarena`` split protocol: the OpenML task's own train/test indices.

Sweep fold ``k`` is the task's split ``(repeat, fold) = (k // folds, k % folds)`` -- TabArena's
own order (r0f0, r0f1, r0f2, r1f0, ...), so folds 0-2 are the three folds of repeat 0 and every
row is tested once per repeat. The test rows are the split's test part (capped at
``max_test_rows`` by a seeded stratified subsample); the scarce ``n_train`` rows (training +
validation) are drawn from the split's training part only.
"""

from __future__ import annotations

import numpy as np

from engine.core.errors import DataError
from engine.data.registry import Dataset
from engine.data.tabarena_meta import TabArenaTask
from engine.data.tabarena_splits import TaskSplits, label_fingerprint
from engine.folds.splits import FoldSplit, derive_seed, draw_scarce


def split_position(task: TabArenaTask, fold: int) -> tuple[int, int]:
    """The OpenML (repeat, fold) of sweep fold ``fold``."""
    if not 0 <= fold < task.n_splits:
        raise DataError(f"{task.dataset}: fold {fold} outside 0..{task.n_splits - 1} (the task "
                        f"has {task.openml_repeats} repeats x {task.folds} folds)")
    return fold // task.folds, fold % task.folds


def check_alignment(ds: Dataset, task: TabArenaTask, splits: TaskSplits) -> None:
    """Refuse a table whose rows are not the task's rows in the task's order."""
    if splits.task_id != task.task_id:
        raise DataError(f"{task.dataset}: the splits file is for task {splits.task_id}, not "
                        f"{task.task_id}; fetch it again")
    if len(ds.y) != splits.n_rows or label_fingerprint(ds.y) != splits.fingerprint:
        what = (f"has {len(ds.y):,} rows against the task's {splits.n_rows:,}"
                if len(ds.y) != splits.n_rows else "holds the labels in another row order")
        raise DataError(f"{task.dataset}: the table {what}, so the OpenML task's splits do not "
                        "apply; use split: kfold, or a mirror written by  causalmix data fetch")


def tabarena_fold(ds: Dataset, task: TabArenaTask, splits: TaskSplits, fold: int, seed: int,
                  n_train: int, val_fraction: float, max_test_rows: int,
                  minority_share: float | None = None,
                  in_domain: np.ndarray | None = None) -> FoldSplit:
    """Train/validation/test row positions of sweep fold ``fold`` under the task's splits
    (with ``in_domain``, a row mask: of its in-domain rows)."""
    check_alignment(ds, task, splits)
    repeat, part = split_position(task, fold)
    if repeat >= splits.n_repeats or part >= splits.n_folds:
        raise DataError(f"{task.dataset}: the splits file has {splits.n_repeats} x "
                        f"{splits.n_folds} splits; fold {fold} needs r{repeat}f{part}")
    rest, test = splits.indices(repeat, part)
    if in_domain is not None:  # a shift: the in-domain rows of the task's split only
        rest, test = rest[in_domain[rest]], test[in_domain[test]]
    y = ds.label_codes()
    rng = np.random.default_rng(derive_seed("tabarena", seed, fold))
    return draw_scarce(y, rest, test, rng, n_train, val_fraction, max_test_rows,
                       f"{task.dataset} fold {fold} (r{repeat}f{part})", minority_share)
