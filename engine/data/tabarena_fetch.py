"""Download a TabArena task (dataset + repeat/fold splits) from OpenML into a cache or mirror.

Needs the ``openml`` extra and network. ``openml``'s own downloads go to a temporary folder that
is removed afterwards; only ``<name>.parquet`` and ``<name>.splits.npz`` are kept, both written
atomically, so a failed or killed fetch leaves no partial file behind.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.core.errors import CausalMixError, DataError, MissingExtraError
from engine.data.tabarena_meta import TabArenaTask
from engine.data.tabarena_splits import TaskSplits, label_fingerprint, write_entry


def _openml(task: TabArenaTask) -> Any:
    try:
        import openml
    except ImportError:
        raise MissingExtraError(
            f"downloading tabarena/{task.name} from OpenML (offline, make a mirror instead: "
            f"{task.name}.csv with the target last, or  causalmix data fetch {task.name} --dir "
            "DIR  where openml and network are available; then CAUSALMIX_DATA=DIR)", "openml",
            "openml") from None
    return openml


def fetch_task(task: TabArenaTask, directory: Path) -> Path:
    """Download ``task`` from OpenML and write it into ``directory``; returns the table path."""
    openml = _openml(task)
    previous = getattr(openml.config, "_root_cache_directory", None)  # restored afterwards
    with tempfile.TemporaryDirectory(prefix="causalmix-openml-") as tmp:
        openml.config.set_root_cache_directory(tmp)
        try:
            frame, splits = _download(openml, task)
        except CausalMixError:
            raise
        except Exception as exc:  # noqa: BLE001 - network/server failures become one line
            raise DataError(_offline_message(task, exc)) from None
        finally:
            if previous is not None:
                openml.config.set_root_cache_directory(previous)
    return write_entry(directory, task, frame, splits)


def _offline_message(task: TabArenaTask, exc: Exception) -> str:
    return (f"tabarena/{task.name}: OpenML task {task.task_id} could not be downloaded "
            f"({type(exc).__name__}; offline?) and no mirror is set; to work offline make a "
            "mirror: on a machine "
            f"with network run  causalmix data fetch {task.name} --dir DIR  (or put "
            f"{task.name}.csv with the target last in DIR), then set CAUSALMIX_DATA=DIR")


def _download(openml: Any, task: TabArenaTask) -> tuple[pd.DataFrame, TaskSplits]:
    """The task's table (features + target last) and its splits, in OpenML row order."""
    otask = openml.tasks.get_task(task.task_id, download_splits=True, download_data=True,
                                  download_qualities=False, download_features_meta_data=False)
    dataset = otask.get_dataset()
    if int(dataset.dataset_id) != task.dataset_id:
        raise DataError(f"tabarena/{task.name}: OpenML task {task.task_id} uses dataset "
                        f"{dataset.dataset_id}, the metadata says {task.dataset_id}")
    X, y, _, _ = dataset.get_data(target=task.target, dataset_format="dataframe")
    frame = X.reset_index(drop=True)
    frame[task.target] = pd.Series(y).reset_index(drop=True)
    repeats, folds, _ = otask.get_split_dimensions()
    fold_of = np.full((repeats, len(frame)), -1, dtype=np.int8)
    for r in range(repeats):
        for f in range(folds):
            train, test = otask.get_train_test_split_indices(fold=f, repeat=r)
            fold_of[r, test] = f
            if len(train) + len(test) != len(frame):
                raise DataError(f"tabarena/{task.name}: split r{r}f{f} of task {task.task_id} "
                                "is not a plain cross-validation (train + test != all rows)")
    if (fold_of < 0).any():
        raise DataError(f"tabarena/{task.name}: task {task.task_id} leaves rows in no test fold")
    fingerprint = label_fingerprint(frame[task.target].dropna())
    return frame, TaskSplits(task.task_id, fold_of, fingerprint)
