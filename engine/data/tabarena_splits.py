"""An OpenML task's repeat/fold splits as stored beside a mirror or cache table
(``<name>.splits.npz``), and the writer of one entry (table + splits). Both the loader
(``tabarena``) and the downloader (``tabarena_fetch``) use this format."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.core.errors import DataError
from engine.data.tabarena_meta import TabArenaTask


def label_fingerprint(y: pd.Series | np.ndarray) -> str:
    """A hash of the label *pattern* (codes by first appearance): equal for the same rows in the
    same order whatever the labels are called, different after any reordering that moves a
    label."""
    codes, _ = pd.factorize(np.asarray(pd.Series(y).astype(str)), sort=False)
    return hashlib.sha256(codes.astype(np.int32).tobytes()).hexdigest()[:16]


@dataclass(frozen=True)
class TaskSplits:
    """An OpenML task's cross-validation: ``fold_of[r, i]`` is the test fold of row ``i`` in
    repeat ``r`` (the training part of (r, f) is every other row)."""

    task_id: int
    fold_of: np.ndarray  # int8, repeats x rows
    fingerprint: str  # label_fingerprint of the rows the indices refer to

    @property
    def n_repeats(self) -> int:
        return int(self.fold_of.shape[0])

    @property
    def n_rows(self) -> int:
        return int(self.fold_of.shape[1])

    @property
    def n_folds(self) -> int:
        return int(self.fold_of.max()) + 1

    def indices(self, repeat: int, fold: int) -> tuple[np.ndarray, np.ndarray]:
        """Row positions (train, test) of the task's split (repeat, fold)."""
        row = self.fold_of[repeat]
        return np.flatnonzero(row != fold), np.flatnonzero(row == fold)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(buf, fold_of=self.fold_of, task_id=np.int64(self.task_id),
                            fingerprint=np.array(self.fingerprint))
        return buf.getvalue()

    @staticmethod
    def read(path: Path) -> TaskSplits:
        try:
            with np.load(path, allow_pickle=False) as z:
                return TaskSplits(int(z["task_id"]), z["fold_of"].astype(np.int8),
                                  str(z["fingerprint"]))
        except Exception as exc:  # noqa: BLE001 - a torn or foreign file becomes one line
            raise DataError(f"cannot read task splits {path} ({type(exc).__name__}); delete "
                            "it and fetch again") from None


def splits_path(directory: Path, name: str) -> Path:
    return directory / f"{name}.splits.npz"


def write_entry(directory: Path, task: TabArenaTask, frame: pd.DataFrame,
                splits: TaskSplits) -> Path:
    """Write ``<name>.splits.npz`` then ``<name>.parquet`` atomically (temp + rename)."""
    from engine.storage.store import atomic_write_bytes, atomic_write_parquet

    atomic_write_bytes(splits_path(directory, task.name), splits.to_bytes())
    path = directory / f"{task.name}.parquet"
    atomic_write_parquet(path, frame)
    return path
