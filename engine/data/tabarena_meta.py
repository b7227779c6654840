"""TabArena-v0.1 classification suite as data: the 38 tasks, their OpenML ids and sizes.

``tabarena_v0.1.csv`` (package data) was built once from the curated metadata in the
``tabarena`` 0.1.0 wheel (``curated_tabarena_dataset_metadata.csv`` and the per-split
``TabArena-v0.1_tasks_metadata.csv``); see docs/data.md. ``features`` excludes the target
(OpenML's NumberOfFeatures counts it); ``max_train_rows`` is the largest training part over the
task's splits. Nothing here touches the network.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import pandas as pd

from engine.core.errors import DataError

SUITE = "tabarena-v0.1"
STUDY = "reference-study"
MITRA = "mitra-compatible"
SUITES = (SUITE, STUDY, MITRA)
STUDY_MAX_ROWS = 50_000  # the reference study's rule: classification tasks with <= 50,000 rows
MITRA_MAX_TRAIN_ROWS, MITRA_MAX_FEATURES, MITRA_MAX_CLASSES = 10_000, 500, 10


@dataclass(frozen=True)
class TabArenaTask:
    """One TabArena-v0.1 classification task (OpenML dataset + task with its CV splits)."""

    name: str
    dataset_id: int
    task_id: int
    target: str
    problem_type: str
    rows: int
    features: int  # excluding the target
    classes: int
    tabarena_repeats: int  # repeats TabArena evaluates (10 for small tasks, 3 otherwise)
    folds: int  # folds per repeat (3 for every task)
    openml_repeats: int  # repeats the OpenML task defines (10 for every task)
    max_train_rows: int
    licence: str
    mitra_compatible: bool

    @property
    def dataset(self) -> str:
        """The engine's dataset name, ``tabarena/<name>``."""
        return f"tabarena/{self.name}"

    @property
    def n_splits(self) -> int:
        """Train/test splits the OpenML task defines (repeats x folds)."""
        return self.openml_repeats * self.folds

    @property
    def in_study(self) -> bool:
        return self.rows <= STUDY_MAX_ROWS


@lru_cache(maxsize=1)
def tabarena_tasks() -> tuple[TabArenaTask, ...]:
    """All 38 classification tasks, sorted by name (case-insensitive)."""
    with resources.files("engine.data").joinpath("tabarena_v0.1.csv").open("r") as fh:
        df = pd.read_csv(fh, keep_default_na=False)
    fields = TabArenaTask.__dataclass_fields__
    return tuple(TabArenaTask(**{k: _typed(k, row[k]) for k in fields}) for _, row in df.iterrows())


def _typed(field: str, value: object) -> object:
    if field == "mitra_compatible":
        return str(value).lower() == "true"
    kind = TabArenaTask.__dataclass_fields__[field].type
    return int(value) if kind == "int" else str(value)


def task_names() -> list[str]:
    return [t.name for t in tabarena_tasks()]


def closest_names(name: str, n: int = 3) -> list[str]:
    """The metadata names closest to ``name`` (case-insensitive), best first."""
    names = task_names()
    lower = {x.lower(): x for x in names}
    hits = difflib.get_close_matches(name.lower(), list(lower), n=n, cutoff=0.4)
    return [lower[h] for h in hits]


def get_task(name: str) -> TabArenaTask:
    """The task of ``<name>`` or ``tabarena/<name>``; unknown names list the closest ones."""
    short = name.split("/", 1)[1] if name.startswith("tabarena/") else name
    for t in tabarena_tasks():
        if t.name == short:
            return t
    close = closest_names(short)
    hint = f"; closest: {', '.join('tabarena/' + c for c in close)}" if close else ""
    raise DataError(f"unknown TabArena-v0.1 dataset 'tabarena/{short}'{hint} "
                    "(see  causalmix datasets)")


def suite_tasks(suite: str) -> list[TabArenaTask]:
    """Tasks of a named suite: all 38, the reference study's 33, or the 26 Mitra-compatible."""
    tasks = tabarena_tasks()
    if suite == SUITE:
        return list(tasks)
    if suite == STUDY:
        return [t for t in tasks if t.in_study]
    if suite == MITRA:
        return [t for t in tasks if t.mitra_compatible]
    raise DataError(f"unknown suite '{suite}' (known: {', '.join(SUITES)})")
