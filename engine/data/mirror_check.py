"""``causalmix data check DIR``: compare a mirror directory with the TabArena-v0.1 metadata.

One line per dataset of the suite: ``exact`` (rows, features and classes as TabArena's),
``close`` (same classes; rows within 1 % and features within 2 of TabArena's; says how),
``wrong`` (anything further off, an unreadable file, or a class count that differs) or
``missing``; then one line per table in DIR that is not a suite dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.core.errors import DataError
from engine.data.tabarena import TABLE_SUFFIXES, find_table, read_frame, target_column
from engine.data.tabarena_meta import TabArenaTask, closest_names, tabarena_tasks, task_names

ROW_TOLERANCE = 0.01  # relative
FEATURE_TOLERANCE = 2  # columns


@dataclass(frozen=True)
class CheckLine:
    """The verdict on one dataset (or one stray file) of a mirror."""

    name: str
    status: str  # exact | close | wrong | missing | unknown
    detail: str

    def render(self, width: int = 42) -> str:
        return f"{self.name:<{width}} {self.status:<7} {self.detail}"


def check_task(directory: Path, task: TabArenaTask) -> CheckLine:
    """Compare the mirror's table of ``task`` (if any) with the metadata."""
    path = find_table(directory, task.name)
    if path is None:
        return CheckLine(task.name, "missing", f"no {task.name}.parquet or .csv (causalmix "
                         f"data fetch {task.name} --dir {directory})")
    try:
        frame = read_frame(path)
        target = target_column(frame, task)
    except DataError as exc:
        return CheckLine(task.name, "wrong", str(exc))
    rows, features = len(frame), frame.shape[1] - 1
    classes = int(frame[target].nunique(dropna=True))
    where = "target" if target == task.target else f"target = last column '{target}'"
    diffs = []
    if rows != task.rows:
        diffs.append(f"{rows:,} rows against TabArena's {task.rows:,}")
    if features != task.features:
        diffs.append(f"{features:,} features against TabArena's {task.features:,}")
    if classes != task.classes:
        diffs.append(f"{classes:,} classes against TabArena's {task.classes}")
    if not diffs:
        return CheckLine(task.name, "exact", f"{path}: {rows:,} rows, {features} features, "
                         f"{classes} classes ({where})")
    near = (classes == task.classes and abs(rows - task.rows) <= ROW_TOLERANCE * task.rows
            and abs(features - task.features) <= FEATURE_TOLERANCE)
    return CheckLine(task.name, "close" if near else "wrong",
                     f"{path} has {'; '.join(diffs)} ({where})")


def stray_tables(directory: Path) -> list[CheckLine]:
    """Tables in ``directory`` that are no suite dataset (e.g. a misspelt file name)."""
    known = set(task_names())
    out = []
    for path in sorted(directory.iterdir()):
        stem = path.name[: -len(path.suffix)] if path.suffix else path.name
        if path.suffix.lower() not in TABLE_SUFFIXES or stem in known or not path.is_file():
            continue
        if stem.startswith("openml-"):
            continue
        close = closest_names(stem)
        hint = f" (closest: {', '.join(close)})" if close else ""
        out.append(CheckLine(stem, "unknown", f"{path} is not a TabArena-v0.1 classification "
                             f"dataset{hint}"))
    return out


def check_mirror(directory: str | Path) -> list[CheckLine]:
    """One line per suite dataset, then one per stray table."""
    path = Path(directory).expanduser()
    if not path.is_dir():
        raise DataError(f"{directory}: no such directory")
    return [check_task(path, t) for t in tabarena_tasks()] + stray_tables(path)
