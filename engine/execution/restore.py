"""Seed a sweep's trial records from exported result tables (``causalmix run --reuse-from``).

A long study that runs over many sessions (or machines) keeps only its tables
(``results.parquet``, ``evaluations.parquet``) between them, e.g. committed with the
paper. A row whose ``trial_key`` equals the planned trial's key was made from the same inputs
(``engine.spec.cache_keys``), so it is written back as the trial's record and the trial is
reused instead of rerun. Rows that are not ``ok``, or whose key differs, are ignored.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from engine.core.errors import CausalMixError
from engine.plan.sweep_plan import TrialJob
from engine.storage import fsio
from engine.storage.fsio import Location, shown
from engine.storage.store import SweepStore


def _table(folder: Location, name: str, required: bool) -> pd.DataFrame | None:
    path = fsio.join(folder, name)
    try:
        return fsio.read_parquet(path)
    except FileNotFoundError:
        if required:
            raise CausalMixError(f"--reuse-from {shown(folder)}: no {name} there") from None
        return None
    except Exception as exc:  # noqa: BLE001 - any unreadable table is one line
        raise CausalMixError(f"--reuse-from {shown(path)}: unreadable "
                             f"({type(exc).__name__})") from None


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A table row for a trial record: pandas' missing string is None (the record writer,
    ``store.atomic_write_json``, already turns numpy scalars and NaN into JSON)."""
    return {k: (None if v is pd.NA else v) for k, v in row.items()}


def restore_records(store: SweepStore, trials: list[TrialJob], folder: Location) -> int:
    """Write the record of every planned trial that has no ok record under its key here but
    has an ok row under that key in ``folder``'s tables; returns how many were written."""
    results = _table(folder, "results.parquet", required=True)
    if "trial_key" not in results.columns:
        raise CausalMixError(f"--reuse-from {shown(folder)}: results.parquet has no trial_key "
                             "column (written before keys were exported); rerun those trials")
    ok = results[(results["status"] == "ok") & (results["trial_key"] != "")]
    by_id = {r["trial_id"]: r for r in ok.to_dict("records")}
    wanted = [t for t in trials if t.trial_id in by_id
              and by_id[t.trial_id]["trial_key"] == t.key]
    if not wanted:
        return 0
    evals = _table(folder, "evaluations.parquet", required=False)
    steps: dict[str, list[dict[str, Any]]] = {}
    if evals is not None:
        keep = evals[evals["trial_id"].isin({t.trial_id for t in wanted})]
        for rec in keep.to_dict("records"):
            steps.setdefault(rec["trial_id"], []).append(_plain(rec))
    written = 0
    for t, rec in zip(wanted, store.read_trials([t.trial_id for t in wanted])):
        if rec and rec.get("key") == t.key and rec.get("result", {}).get("status") == "ok":
            continue  # already here
        row = _plain(by_id[t.trial_id])
        row.pop("trial_key", None)
        store.write_trial(t.trial_id, {"key": t.key, "inputs": t.inputs, "result": row,
                                       "evaluations": steps.get(t.trial_id, []),
                                       "restored_from": shown(folder)})
        written += 1
    return written
