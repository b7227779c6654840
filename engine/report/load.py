"""Read and merge the sweep tables (``results.parquet``, ``evaluations.parquet``)."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from engine.core.errors import CausalMixError
from engine.storage.fsio import Location, is_dir, join, read_parquet, shown
from engine.storage.results_schema import EVALUATION_COLUMNS, RESULT_COLUMNS


class ReportInputError(CausalMixError):
    """A results or evaluations file that cannot be reported; the message names it."""

RESULTS_FILE = "results.parquet"
EVALUATIONS_FILE = "evaluations.parquet"
FOLD_KEYS: list[str] = ["dataset", "fold", "seed"]
"""A dataset-fold: one (dataset, fold, seed) combination; the unit statistics are taken over."""
CONFIG_KEYS: list[str] = ["method", "synthetic_scale", "mix_ratio"]
"""One grid point of one method."""


REQUIRED_COLUMNS = ("trial_id", "dataset", "fold", "method", "status")
"""Columns without which a results table cannot be reported at all."""


def _read_parquet(path: Location, retries: int = 3) -> pd.DataFrame | None:
    """Read a Parquet file, local or at a URI (None when missing), retrying briefly while a
    running sweep rewrites it; a file that stays unreadable is a ``ReportInputError``."""
    for attempt in range(retries):
        try:
            return read_parquet(path)
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise ReportInputError(f"{shown(path)}: is a folder, not a Parquet file") from None
        except Exception as exc:  # noqa: BLE001 - any reader failure becomes one line
            if attempt == retries - 1:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise ReportInputError(f"{shown(path)}: not a readable Parquet file "
                                       f"({type(exc).__name__}: {first[:160]})") from None
            time.sleep(0.5)
    return None


def schema_problem(frame: pd.DataFrame, columns: dict[str, str],
                   required: tuple[str, ...]) -> str | None:
    """What makes ``frame`` unusable as a table with ``columns`` (None when it is fine)."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        return f"no column '{missing[0]}' (not a causalmix results table?)"
    for name, dtype in columns.items():
        if name not in frame.columns:
            continue
        col = frame[name]
        if col.map(lambda v: isinstance(v, list | dict | np.ndarray)).any():
            return f"column '{name}' holds lists or mappings, expected {dtype}"
        if dtype in ("float64", "int64") and not pd.api.types.is_numeric_dtype(col):
            bad = pd.to_numeric(col, errors="coerce").isna() & col.notna() & (col != "")
            if bad.any():
                return f"column '{name}' has non-numeric values (e.g. {col[bad].iloc[0]!r})"
    return None


def _conform(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Add missing contract columns (as missing values) and coerce numeric dtypes."""
    frame = frame.copy()
    for name, dtype in columns.items():
        if name not in frame.columns:
            frame[name] = np.nan if dtype in ("float64", "int64") else ""
        if dtype == "bool":
            frame[name] = frame[name].map(_as_bool).astype("bool")
        elif dtype == "float64":
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        elif dtype == "int64":
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
        else:
            frame[name] = frame[name].astype("string").fillna("")
    return frame


def _as_bool(value: object) -> bool:
    """A flag as written by the engine (bool) or read back from text ('True', '1'); missing is
    False."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value) if pd.notna(value) else False


def _load_frames(sweep_dirs: list[Location], filename: str, columns: dict[str, str],
                 keys: list[str], required: tuple[str, ...]) -> list[pd.DataFrame]:
    """One conformed frame per sweep that has rows in ``filename``; ``source`` names the sweep,
    and within a sweep the last row of each ``keys`` wins."""
    frames = []
    for sweep_dir in sweep_dirs:
        frame = _read_parquet(join(sweep_dir, filename))
        if frame is None or frame.empty:
            continue
        problem = schema_problem(frame, columns, required)
        if problem:
            raise ReportInputError(f"{shown(join(sweep_dir, filename))}: {problem}")
        frame = _conform(frame, columns)
        frame["source"] = str(sweep_dir)
        frames.append(frame.drop_duplicates(subset=keys, keep="last"))
    return frames


def load_results(sweep_dirs: list[Location]) -> pd.DataFrame:
    """All trials of the given sweeps, merged (``source`` names the sweep directory).

    Within one sweep the last row of a repeated trial wins; across sweeps all rows are kept
    and repeats of a configuration on the same dataset-fold are averaged downstream.
    """
    frames = _load_frames(sweep_dirs, RESULTS_FILE, RESULT_COLUMNS, ["trial_id"],
                          REQUIRED_COLUMNS)
    if not frames:
        raise ReportInputError(
            f"no {RESULTS_FILE} with rows in: {', '.join(map(shown, sweep_dirs))}"
        )
    for frame in frames:
        if (frame["sweep"] == "").all():
            frame["sweep"] = _last_part(str(frame["source"].iloc[0]))
    results = pd.concat(frames, ignore_index=True)
    results["status"] = results["status"].where(results["status"] != "", "ok")
    return _imbalance_as_dataset(results).reset_index(drop=True)


def _imbalance_as_dataset(results: pd.DataFrame) -> pd.DataFrame:
    """Each minority share of an imbalance sweep is its own task: ``dataset`` becomes
    ``<dataset> [minority <share>]`` there, so statistics never pool shares (or pick the best
    configuration across them); rows without an imbalance keep their name."""
    share = pd.to_numeric(results["minority_share"], errors="coerce")
    marked = share.notna()
    if marked.any():
        results = results.copy()
        labels = share[marked].map(lambda x: f" [minority {x:g}]")
        results.loc[marked, "dataset"] = results.loc[marked, "dataset"].astype(str) + labels
    return results


def load_evaluations(sweep_dirs: list[Location]) -> pd.DataFrame | None:
    """All evaluation steps of the given sweeps, or ``None`` when no sweep has readable ones
    (a damaged file only leaves the validation-test tracking out, with a warning)."""
    try:
        frames = _load_frames(sweep_dirs, EVALUATIONS_FILE, EVALUATION_COLUMNS,
                              ["trial_id", "step"], ("trial_id", "step"))
    except ReportInputError as exc:
        warnings.warn(f"{exc}; validation-test tracking left out", stacklevel=2)
        return None
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True)


def ok_trials(results: pd.DataFrame, column: str = "normalized_improvement_pct") -> pd.DataFrame:
    """Trials that finished ('ok') and have a finite value in ``column``."""
    finite = np.isfinite(results[column].to_numpy(dtype=float, na_value=np.nan))
    return results[(results["status"] == "ok") & finite]


def per_fold_config(results: pd.DataFrame, column: str) -> pd.DataFrame:
    """One value per dataset-fold and configuration (repeats from merged sweeps are averaged)."""
    ok = ok_trials(results, column)
    return ok.groupby(CONFIG_KEYS + FOLD_KEYS, as_index=False, dropna=False)[column].mean()


def _last_part(location: str) -> str:
    """The last folder name of a path or URI (``s3://b/runs/x?opt=1`` -> ``x``)."""
    return Path(location.partition("?")[0].rstrip("/")).name


def results_problem(sweep_dir: Location) -> str | None:
    """Why ``sweep_dir`` has no reportable results table (None when it has one)."""
    try:
        found = is_dir(sweep_dir)
    except Exception as exc:  # noqa: BLE001 - e.g. an unknown URI scheme or no such bucket
        from engine.storage.fsio import first_line

        return f"{shown(sweep_dir)}: cannot be read ({first_line(exc)})"
    if not found:
        return f"{shown(sweep_dir)}: no such sweep folder"
    path = join(sweep_dir, RESULTS_FILE)
    try:
        frame = _read_parquet(path, retries=1)
    except ReportInputError as exc:
        return str(exc)
    if frame is None:
        return f"{shown(path)}: missing (is this a sweep folder?)"
    problem = schema_problem(frame, RESULT_COLUMNS, REQUIRED_COLUMNS)
    if problem:
        return f"{shown(path)}: {problem}"
    return f"{shown(path)}: no rows yet" if frame.empty else None


def usable_sweep_dirs(sweep_dirs: list[Location]) -> list[Location]:
    """The sweeps that can be reported. A damaged results table is rebuilt from the sweep's
    trial records when it has any; other damaged sweeps are left out with a warning, and when
    none is left the first problem is the error."""
    from engine.storage.store import SweepStore

    usable, problems = [], []
    for d in sweep_dirs:
        problem = results_problem(d)
        if problem and _has_records(d):
            SweepStore(d).write_results()
            warnings.warn(f"{problem}; rebuilt it from the sweep's trial records", stacklevel=2)
            problem = results_problem(d)
        if problem:
            problems.append(problem)
        else:
            usable.append(d)
    if not usable:
        raise ReportInputError(problems[0])
    for problem in problems:
        warnings.warn(f"{problem}; left out of the report", stacklevel=2)
    return usable


def _has_records(sweep_dir: Location) -> bool:
    from engine.storage.store import SweepStore

    try:
        return SweepStore(sweep_dir).has_trial_records()
    except Exception:  # noqa: BLE001 - an unreadable location has none; its problem is reported
        return False
