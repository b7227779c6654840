"""Read and merge the sweep tables (``results.parquet``, ``evaluations.parquet``)."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from engine.results_schema import EVALUATION_COLUMNS, RESULT_COLUMNS

RESULTS_FILE = "results.parquet"
EVALUATIONS_FILE = "evaluations.parquet"
FOLD_KEYS: list[str] = ["dataset", "fold", "seed"]
"""A dataset-fold: one (dataset, fold, seed) combination; the unit statistics are taken over."""
CONFIG_KEYS: list[str] = ["method", "synthetic_scale", "mix_ratio"]
"""One grid point of one method."""


def _read_parquet(path: Path, retries: int = 3) -> pd.DataFrame | None:
    """Read a Parquet file, retrying briefly when a running sweep is rewriting it."""
    for attempt in range(retries):
        try:
            return pd.read_parquet(path)
        except FileNotFoundError:
            return None
        except Exception as exc:  # a half-written file while the sweep is running
            if attempt == retries - 1:
                warnings.warn(f"could not read {path}: {exc}", stacklevel=2)
                return None
            time.sleep(0.5)
    return None


def _conform(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Add missing contract columns (as missing values) and coerce numeric dtypes."""
    frame = frame.copy()
    for name, dtype in columns.items():
        if name not in frame.columns:
            frame[name] = np.nan if dtype in ("float64", "int64") else ""
        if dtype == "float64":
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        elif dtype == "int64":
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
        else:
            frame[name] = frame[name].astype("string").fillna("")
    return frame


def _load_frames(sweep_dirs: list[Path], filename: str, columns: dict[str, str],
                 keys: list[str]) -> list[pd.DataFrame]:
    """One conformed frame per sweep that has rows in ``filename``; ``source`` names the sweep,
    and within a sweep the last row of each ``keys`` wins."""
    frames = []
    for sweep_dir in sweep_dirs:
        frame = _read_parquet(Path(sweep_dir) / filename)
        if frame is None or frame.empty:
            continue
        frame = _conform(frame, columns)
        frame["source"] = str(sweep_dir)
        frames.append(frame.drop_duplicates(subset=keys, keep="last"))
    return frames


def load_results(sweep_dirs: list[Path]) -> pd.DataFrame:
    """All trials of the given sweeps, merged (``source`` names the sweep directory).

    Within one sweep the last row of a repeated trial wins; across sweeps all rows are kept
    and repeats of a configuration on the same dataset-fold are averaged downstream.
    """
    frames = _load_frames(sweep_dirs, RESULTS_FILE, RESULT_COLUMNS, ["trial_id"])
    if not frames:
        raise FileNotFoundError(
            f"no readable {RESULTS_FILE} with rows in: {', '.join(map(str, sweep_dirs))}"
        )
    for frame in frames:
        if (frame["sweep"] == "").all():
            frame["sweep"] = Path(frame["source"].iloc[0]).name
    results = pd.concat(frames, ignore_index=True)
    results["status"] = results["status"].where(results["status"] != "", "ok")
    return results.reset_index(drop=True)


def load_evaluations(sweep_dirs: list[Path]) -> pd.DataFrame | None:
    """All evaluation steps of the given sweeps, or ``None`` when no sweep has them."""
    frames = _load_frames(sweep_dirs, EVALUATIONS_FILE, EVALUATION_COLUMNS, ["trial_id", "step"])
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
