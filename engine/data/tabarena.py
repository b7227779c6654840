"""``tabarena/<name>``: TabArena-v0.1 tasks from a mirror directory, the cache, or OpenML.

Where a dataset comes from, in order:

1. a **mirror** (``data_dir`` of the sweep, else ``$CAUSALMIX_DATA``): ``<name>.parquet`` or
   ``<name>.csv``; the target is the metadata's target column if present, else the last column.
   With a mirror set the network is never used.
2. the **cache** (``$CAUSALMIX_CACHE/tabarena``, default ``~/.cache/causalmix/tabarena``):
   ``<name>.parquet`` written by ``causalmix data fetch`` (or the first load).
3. **OpenML** (the ``openml`` extra): the task and its dataset are downloaded into the cache.

Next to a table, ``<name>.splits.npz`` holds the OpenML task's repeat/fold splits (see
``TaskSplits``); a mirror made with ``causalmix data fetch --dir DIR`` has both.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from engine.core.errors import DataError
from engine.data.registry import Dataset, register_dataset
from engine.data.tabarena_meta import TabArenaTask, get_task, tabarena_tasks
from engine.data.tabarena_splits import TaskSplits, splits_path

TABLE_SUFFIXES = (".parquet", ".csv")


# ---------------------------------------------------------------------------- locations
def cache_dir() -> Path:
    """``$CAUSALMIX_CACHE/tabarena`` (default ``~/.cache/causalmix/tabarena``)."""
    root = os.environ.get("CAUSALMIX_CACHE") or Path.home() / ".cache" / "causalmix"
    return Path(root).expanduser() / "tabarena"


def mirror_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The mirror directory: ``data_dir`` if given, else ``$CAUSALMIX_DATA``, else None."""
    raw = data_dir if data_dir is not None else os.environ.get("CAUSALMIX_DATA") or None
    if raw is None:
        return None
    path = Path(raw).expanduser().resolve()
    if not path.is_dir():
        raise DataError(f"mirror directory {path} does not exist (data_dir / CAUSALMIX_DATA)")
    return path


def find_table(directory: Path, name: str) -> Path | None:
    """``<name>.parquet`` or ``<name>.csv`` in ``directory`` (Parquet first), or None."""
    for suffix in TABLE_SUFFIXES:
        path = directory / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def fetch_hint(name: str, directory: Path | None = None) -> str:
    where = f" --dir {directory}" if directory is not None else ""
    return f"causalmix data fetch {name}{where}"


def where_available(task: TabArenaTask, data_dir: str | os.PathLike | None = None) -> str:
    """'mirror', 'cache' or '' (not available offline)."""
    mirror = mirror_dir(data_dir)
    if mirror is not None and find_table(mirror, task.name):
        return "mirror"
    return "cache" if (cache_dir() / f"{task.name}.parquet").is_file() else ""


# ---------------------------------------------------------------------------- tables
def read_frame(path: Path) -> pd.DataFrame:
    """A mirror or cache table as read from disk; unreadable files become one line."""
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, low_memory=False)
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes one line
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise DataError(f"cannot read {path}: {type(exc).__name__}: {first}") from None


def target_column(frame: pd.DataFrame, task: TabArenaTask) -> str:
    """The metadata's target column if present, else the last column."""
    if task.target in frame.columns:
        return task.target
    if frame.shape[1] < 2:
        raise DataError(f"tabarena/{task.name}: table has {frame.shape[1]} column(s); need "
                        "features and a target")
    return str(frame.columns[-1])


def dataset_from_frame(frame: pd.DataFrame, task: TabArenaTask, path: Path) -> Dataset:
    """A ``Dataset`` from a table; the number of classes must match the metadata."""
    target = target_column(frame, task)
    n_classes = int(frame[target].nunique(dropna=True))
    if n_classes != task.classes:
        which = ("target" if target == task.target
                 else f"last column '{target}' (no column '{task.target}')")
        raise DataError(f"tabarena/{task.name}: {path}: the {which} has {n_classes:,} classes "
                        f"against TabArena's {task.classes}")
    return Dataset(name=task.dataset, X=frame.drop(columns=[target]),
                   y=frame[target].rename("target"))


def mirror_problem(task: TabArenaTask, data_dir: str | os.PathLike | None = None) -> str:
    """'' if the mirror (if any) holds the task's table, else the one-line reason."""
    mirror = mirror_dir(data_dir)
    if mirror is None or find_table(mirror, task.name) is not None:
        return ""
    return (f"tabarena/{task.name}: the mirror {mirror} has no {task.name}.parquet or "
            f"{task.name}.csv (make it with  {fetch_hint(task.name, mirror)}  on a machine "
            "with network)")


def load_tabarena(name: str, data_dir: str | os.PathLike | None = None) -> Dataset:
    """Load ``tabarena/<name>`` from the mirror, else the cache, else OpenML (into the cache)."""
    task = get_task(name)
    mirror = mirror_dir(data_dir)
    if mirror is not None:
        path = find_table(mirror, task.name)
        if path is None:
            raise DataError(mirror_problem(task, mirror))
        return dataset_from_frame(read_frame(path), task, path)
    path = cache_dir() / f"{task.name}.parquet"
    if not path.is_file():
        from engine.data.tabarena_fetch import fetch_task

        fetch_task(task, cache_dir())
    return dataset_from_frame(read_frame(path), task, path)


def _find_splits(task: TabArenaTask, mirror: Path | None) -> Path | None:
    for directory in ([mirror] if mirror is not None else []) + [cache_dir()]:
        path = splits_path(directory, task.name)
        if path.is_file():
            return path
    return None


def splits_problem(task: TabArenaTask, data_dir: str | os.PathLike | None = None) -> str:
    """'' unless a mirror is set and neither it nor the cache holds the task's splits."""
    mirror = mirror_dir(data_dir)
    if mirror is None or _find_splits(task, mirror) is not None:
        return ""
    return (f"tabarena/{task.name}: split: tabarena needs the OpenML task's splits "
            f"({task.name}.splits.npz), in neither the mirror {mirror} nor the cache "
            f"{cache_dir()}: run  {fetch_hint(task.name, mirror)}  on a machine with network, "
            "or use split: kfold")


def load_task_splits(task: TabArenaTask, data_dir: str | os.PathLike | None = None) -> TaskSplits:
    """The task's splits from the mirror, else the cache; without a mirror, fetched if missing."""
    mirror = mirror_dir(data_dir)
    path = _find_splits(task, mirror)
    if path is not None:
        return TaskSplits.read(path)
    if mirror is not None:
        raise DataError(splits_problem(task, mirror))
    from engine.data.tabarena_fetch import fetch_task

    fetch_task(task, cache_dir())
    return TaskSplits.read(splits_path(cache_dir(), task.name))


def _register(task: TabArenaTask) -> None:
    @register_dataset(task.dataset)
    def _load() -> Dataset:
        return load_tabarena(task.name)


for _task in tabarena_tasks():
    _register(_task)
