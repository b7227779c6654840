"""The files of a sweep, owned by one object (``SweepStore``), and atomic writes.

    <storage>/<sweep>/
        spec.yaml                      copy of the sweep file that was run
        synthetic/<generator>/<dataset>/fold<k>/<fit key>/synthetic.parquet, fit.json
        trials/<method>/<dataset>/fold<k>/scale<s>_mix<m>_seed<seed>/result.json
        baselines/<key>.json           zero-shot scores shared by all trials of a dataset-fold
        search/optuna.db               Optuna studies of a search (one per dataset-fold-method)
        tune/                          Ray Tune experiment folders (TensorBoard logs)
        status.json                    live progress (``causalmix status``)
        results.parquet, evaluations.parquet, fits.parquet, scaling_curves.csv, report/

A killed sweep never leaves half a file: every write goes to a temporary file that is renamed.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from engine.errors import CausalMixError
from engine.results_schema import EVALUATION_COLUMNS, FIT_COLUMNS, RESULT_COLUMNS

FIT_KEY_CHARS = 12  # digits of the fit key in its folder name


def slug(name: str) -> str:
    """A dataset name as one path component (``sklearn/wine`` -> ``sklearn__wine``)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name.replace("/", "__"))


def fmt_num(x: float) -> str:
    return f"{x:g}"


def trial_id(method: str, dataset: str, fold: int, scale: float, mix: float, seed: int) -> str:
    return f"{method}/{slug(dataset)}/fold{fold}/scale{fmt_num(scale)}_mix{fmt_num(mix)}_seed{seed}"


class SweepStore:
    """Every path and file of one sweep: spec copy, fits, trial records, result tables."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # ------------------------------------------------------------------ paths
    @property
    def spec_path(self) -> Path:
        return self.root / "spec.yaml"

    @property
    def tune_dir(self) -> Path:
        return self.root / "tune"

    @property
    def search_db(self) -> Path:
        """The Optuna studies of a search sweep (SQLite)."""
        return self.root / "search" / "optuna.db"

    @property
    def results_path(self) -> Path:
        return self.root / "results.parquet"

    def fit_dir(self, generator: str, dataset: str, fold: int, key: str) -> Path:
        return (self.root / "synthetic" / generator / slug(dataset) / f"fold{fold}"
                / key[:FIT_KEY_CHARS])

    def fitted_path(self, generator: str, dataset: str, fold: int, model_key: str) -> Path:
        """A fitted generator kept for reuse (a ``mixed`` fit samples from its members')."""
        return (self.root / "synthetic" / generator / slug(dataset) / f"fold{fold}"
                / f"fitted-{model_key[:FIT_KEY_CHARS]}.pkl")

    def fit_id(self, fit_dir: str | Path) -> str:
        """The id of a fit: its folder relative to ``<sweep>/synthetic`` ('' for no fit)."""
        if not fit_dir:
            return ""
        try:
            return Path(fit_dir).relative_to(self.root / "synthetic").as_posix()
        except ValueError:
            return Path(fit_dir).as_posix()

    def baseline_path(self, key: str) -> Path:
        """The shared zero-shot scores of one (dataset-fold, model, preprocessing)."""
        return self.root / "baselines" / f"{key[:20]}.json"

    @property
    def status_path(self) -> Path:
        return self.root / "status.json"

    def trial_path(self, trial_id: str) -> Path:
        return self.root / "trials" / trial_id / "result.json"

    # ------------------------------------------------------------------ records
    def read_trial(self, trial_id: str) -> dict[str, Any] | None:
        return read_json(self.trial_path(trial_id))

    def write_trial(self, trial_id: str, record: dict[str, Any]) -> None:
        atomic_write_json(self.trial_path(trial_id), record)

    def read_fit(self, fit_dir: str | Path) -> dict[str, Any] | None:
        return read_json(Path(fit_dir) / "fit.json")

    def save_spec(self, source: str | Path) -> None:
        atomic_write_bytes(self.spec_path, Path(source).read_bytes())

    def prepare(self) -> None:
        """Create the sweep folder, or fail in one line when it cannot be written."""
        ensure_writable_dir(self.root, "storage")

    def write_results(self, trial_ids: list[str] | None = None) -> pd.DataFrame:
        """(Re)write results, evaluations and fits tables from the sweep folders."""
        return write_results(self.root, trial_ids)


def ensure_writable_dir(path: Path, what: str) -> None:
    """Create ``path`` if needed; one-line error when it is a file or cannot be written."""
    if path.exists() and not path.is_dir():
        raise CausalMixError(f"{what} {path} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CausalMixError(f"{what} {path} cannot be written ({reason})") from None


def writable_dir_problem(path: Path) -> str | None:
    """Why ``path`` could not be created and written, without creating anything (or None)."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return "no existing parent folder"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a directory"
    try:  # a real probe: permission bits do not tell for root or read-only mounts
        os.rmdir(tempfile.mkdtemp(dir=probe, prefix=".causalmix-probe-"))
    except OSError as exc:
        return f"{probe} is not writable ({exc.strerror or type(exc).__name__})"
    return None


def _atomic_replace(path: Path, write: Callable[[str], None]) -> None:
    """Write to a temporary file beside ``path`` with ``write(tmp)``, then rename it over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    _atomic_replace(path, write)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(_jsonable(obj), indent=1, sort_keys=True).encode())


def atomic_write_parquet(path: Path, df: pd.DataFrame) -> None:
    _atomic_replace(path, lambda tmp: df.to_parquet(tmp, index=False))


def read_json(path: Path) -> Any | None:
    """The JSON object at ``path``, or None if missing or unreadable (e.g. torn by a kill)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str):
        try:
            obj = obj.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def results_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows -> DataFrame with exactly the documented result columns and dtypes."""
    return _typed_frame(rows, RESULT_COLUMNS)


def evaluations_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return _typed_frame(rows, EVALUATION_COLUMNS)


def _typed_frame(rows: list[dict[str, Any]], columns: dict[str, str]) -> pd.DataFrame:
    data = {}
    for col, dtype in columns.items():
        vals = [r.get(col) for r in rows]
        if dtype == "float64":
            data[col] = pd.Series([float("nan") if v is None else float(v) for v in vals],
                                  dtype="float64")
        elif dtype == "int64":
            data[col] = pd.Series([-1 if v is None else int(v) for v in vals], dtype="int64")
        elif dtype == "bool":
            data[col] = pd.Series([bool(v) for v in vals], dtype="bool")
        else:
            data[col] = pd.Series(["" if v is None else str(v) for v in vals], dtype="string")
    return pd.DataFrame(data)


def collect_fits(sweep_dir: Path) -> pd.DataFrame:
    """One row per generator fit (fit.json), fidelity metrics flattened to ``fidelity_*``."""
    rows = []
    for p in sorted((sweep_dir / "synthetic").glob("**/fit.json")):
        meta = read_json(p)
        if meta is None:
            continue
        row = {k: meta.get(k) for k in FIT_COLUMNS if k in meta}
        row["fit_id"] = SweepStore(sweep_dir).fit_id(p.parent)
        row["options"] = json.dumps(meta.get("options", {}), sort_keys=True)
        row["n_train_rows_seen"] = len(meta.get("train_rows", []))
        edges = meta.get("graph_edges")
        row["graph_edge_count"] = -1 if edges is None else len(edges)
        for k, v in (meta.get("fidelity") or {}).items():
            row[f"fidelity_{k}"] = v
        rows.append(row)
    base = _typed_frame(rows, FIT_COLUMNS)
    extra = sorted({k for r in rows for k in r if k.startswith("fidelity_")})
    for k in extra:
        base[k] = pd.Series([r.get(k) for r in rows], dtype="float64")
    return base


def write_results(sweep_dir: Path, trial_ids: list[str] | None = None) -> pd.DataFrame:
    """(Re)write results.parquet, evaluations.parquet and fits.parquet from the sweep's trial
    records (those named, else every record on disk)."""
    if trial_ids is None:
        root = sweep_dir / "trials"
        trial_ids = [p.parent.relative_to(root).as_posix()
                     for p in sorted(root.glob("**/result.json"))]
    book = ResultsBook(SweepStore(sweep_dir), trial_ids)
    for tid in [t for t, row in book.rows.items() if row.get("status") == "running"]:
        del book.rows[tid]  # provisional record of a search trial interrupted mid-run
    return book.write()


class ResultsBook:
    """The rows of a running sweep, kept in memory so that refreshing the result tables does
    not re-read every trial record (one read per trial at start, one per finished trial)."""

    def __init__(self, store: SweepStore, trial_ids: list[str]) -> None:
        self.store = store
        self.order = list(trial_ids)
        self._known = set(self.order)
        self.rows: dict[str, dict[str, Any]] = {}
        self.evals: dict[str, list[dict[str, Any]]] = {}
        for tid in self.order:
            rec = store.read_trial(tid)
            if rec is not None:
                self.add(tid, rec)

    def add(self, trial_id: str, record: dict[str, Any]) -> None:
        if trial_id not in self._known:  # a search trial, created while the sweep runs
            self.order.append(trial_id)
            self._known.add(trial_id)
        self.rows[trial_id] = record["result"]
        self.evals[trial_id] = record.get("evaluations", [])

    def refresh(self, trial_id: str) -> dict[str, Any]:
        """Re-read one trial's record (written by its worker); returns its row ({} if none)."""
        rec = self.store.read_trial(trial_id)
        if rec is not None:
            self.add(trial_id, rec)
        return self.rows.get(trial_id, {})

    def write(self) -> pd.DataFrame:
        rows = [self.rows[t] for t in self.order if t in self.rows]
        evals = [e for t in self.order for e in self.evals.get(t, [])]
        res = results_frame(rows)
        root = self.store.root
        atomic_write_parquet(root / "results.parquet", res)
        atomic_write_parquet(root / "evaluations.parquet", evaluations_frame(evals))
        atomic_write_parquet(root / "fits.parquet", collect_fits(root))
        return res
