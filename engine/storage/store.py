"""The files of a sweep, owned by one object (``SweepStore``), and atomic writes.

    <storage>/<sweep>/
        spec.yaml                      copy of the sweep file that was run
        synthetic/<generator>/<dataset>/fold<k>/<fit key>/synthetic.parquet, fit.json
        trials/<method>/<dataset>/fold<k>/scale<s>_mix<m>_seed<seed>/result.json
        baselines/<key>.json           zero-shot scores shared by all trials of a dataset-fold
        search/optuna.db               Optuna studies of a search (one per dataset-fold-method)
        tune/                          Ray Tune experiment folders (TensorBoard logs)
        status.json                    live progress (``causalmix status``)
        lease.json                     the driver that runs the sweep now (one at a time)
        results.parquet, evaluations.parquet, fits.parquet, scaling_curves.csv, report/

``<storage>`` is a local folder or a URI (``s3://``, ``gs://``, ``file://``;
``engine.storage.fsio``). A killed sweep never leaves half a file: locally every write goes to a
temporary file that is renamed; on an object store every file is one upload, visible only once
complete.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import posixpath
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from engine.core.errors import CausalMixError
from engine.storage import fsio
from engine.storage.fsio import Location
from engine.storage.results_schema import EVALUATION_COLUMNS, FIT_COLUMNS, RESULT_COLUMNS

FIT_KEY_CHARS = 12  # digits of the fit key in its folder name
REMOTE_READERS = 32  # parallel reads of many small files on an object store


def slug(name: str) -> str:
    """A dataset name as one path component (``sklearn/wine`` -> ``sklearn__wine``)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name.replace("/", "__"))


def bounded(name: str, limit: int) -> str:
    """``name`` when it has at most ``limit`` characters, else its head and a hash of the
    whole: still one path component, and two long names that share a head stay apart."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:12]
    return f"{name[:limit - 13]}-{digest}"


def fmt_num(x: float) -> str:
    return f"{x:g}"


def fold_label(fold: int, minority_share: float | None = None) -> str:
    """A dataset-fold's folder name: ``fold<k>``, or ``fold<k>_minority<share>`` with an
    imbalance (each share is its own dataset-fold)."""
    if minority_share is None:
        return f"fold{fold}"
    return f"fold{fold}_minority{fmt_num(minority_share)}"


def trial_id(method: str, dataset: str, fold: int, scale: float, mix: float, seed: int,
             minority_share: float | None = None) -> str:
    return (f"{method}/{slug(dataset)}/{fold_label(fold, minority_share)}/"
            f"scale{fmt_num(scale)}_mix{fmt_num(mix)}_seed{seed}")


class SweepStore:
    """Every path and file of one sweep: spec copy, fits, trial records, result tables.

    ``root`` is a local folder (``Path``) or a URI (``engine.storage.fsio``); the store holds its
    pyarrow filesystem (``fs``) and the path inside it (``base``), and every file of the
    sweep is read and written through it."""

    def __init__(self, root: Location) -> None:
        self.root: Location = fsio.as_location(root) if isinstance(root, str) else Path(root)
        self.fs, self.base = fsio.resolve(self.root)

    def path(self, *parts: str) -> Location:
        """A file or folder of the sweep (a ``Path`` for local storage, else a URI)."""
        return fsio.join(self.root, *parts)

    # ------------------------------------------------------------------ paths
    @property
    def spec_path(self) -> Location:
        return self.path("spec.yaml")

    @property
    def tune_dir(self) -> Location:
        return self.path("tune")

    @property
    def search_db(self) -> Location:
        """The Optuna studies of a search sweep (SQLite; see ``engine.execution.studies`` for stores
        that are not local)."""
        return self.path("search", "optuna.db")

    @property
    def results_path(self) -> Location:
        return self.path("results.parquet")

    def fit_dir(self, generator: str, dataset: str, fold: int, key: str) -> Location:
        return self.path("synthetic", generator, slug(dataset), f"fold{fold}",
                         key[:FIT_KEY_CHARS])

    def fitted_path(self, generator: str, dataset: str, fold: int, model_key: str) -> Location:
        """A fitted generator kept for reuse (a ``mixed`` fit samples from its members')."""
        return self.path("synthetic", generator, slug(dataset), f"fold{fold}",
                         f"fitted-{model_key[:FIT_KEY_CHARS]}.pkl")

    def fit_id(self, fit_dir: Location) -> str:
        """The id of a fit: its folder relative to ``<sweep>/synthetic`` ('' for no fit)."""
        if not fit_dir:
            return ""
        rel = fsio.relative(fit_dir, self.path("synthetic"))
        if rel is not None:
            return rel
        return str(fit_dir) if fsio.is_uri(fit_dir) else Path(fit_dir).as_posix()

    def baseline_path(self, key: str) -> Location:
        """The shared zero-shot scores of one (dataset-fold, model, preprocessing)."""
        return self.path("baselines", f"{key[:20]}.json")

    @property
    def status_path(self) -> Location:
        return self.path("status.json")

    @property
    def lease_path(self) -> Location:
        """Who runs the sweep now (``engine.storage.lease``)."""
        return self.path("lease.json")

    def trial_path(self, trial_id: str) -> Location:
        return self.path("trials", trial_id, "result.json")

    def tune_storage(self) -> tuple[str, Any]:
        """Ray Tune's ``storage_path`` and ``storage_filesystem`` (None for a local path)."""
        if not fsio.is_uri(self.root):
            return str(self.tune_dir), None
        fs, path = fsio.resolve(self.tune_dir)
        return path, fs

    # ------------------------------------------------------------------ records
    def read_trial(self, trial_id: str) -> dict[str, Any] | None:
        return read_json(self.trial_path(trial_id))

    def write_trial(self, trial_id: str, record: dict[str, Any]) -> None:
        atomic_write_json(self.trial_path(trial_id), record)

    def trial_ids(self) -> list[str]:
        """The trials with a record in the sweep (sorted by path)."""
        found = fsio.find_files(self.path("trials"), "result.json")
        return [posixpath.dirname(p) for p in found]

    def read_trials(self, trial_ids: list[str]) -> list[dict[str, Any] | None]:
        """The records of ``trial_ids`` (None where missing), in order."""
        return self._read_all([self.trial_path(t) for t in trial_ids])

    def fit_records(self) -> list[tuple[str, dict[str, Any]]]:
        """(fit id, fit.json) of every stored fit, sorted by path; unreadable ones left out."""
        found = fsio.find_files(self.path("synthetic"), "fit.json")
        metas = self._read_all([self.path("synthetic", rel) for rel in found])
        return [(posixpath.dirname(rel), meta) for rel, meta in zip(found, metas)
                if meta is not None]

    def _read_all(self, paths: list[Location]) -> list[Any | None]:
        """JSON files in order; on a remote store read by parallel requests (each file is one
        round trip there, and a large sweep has thousands)."""
        if fsio.is_local(self.fs) or len(paths) < 2:
            return [read_json(p) for p in paths]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(REMOTE_READERS) as pool:
            return list(pool.map(read_json, paths))

    def read_fit(self, fit_dir: Location) -> dict[str, Any] | None:
        return read_json(fsio.join(fit_dir, "fit.json"))

    def read_table(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """A Parquet table of the sweep (``results.parquet`` ...); FileNotFoundError if none."""
        return fsio.read_parquet(self.path(name), columns=columns)

    def write_table(self, name: str, df: pd.DataFrame) -> None:
        atomic_write_parquet(self.path(name), df)

    def has_trial_records(self) -> bool:
        return fsio.is_dir(self.root) and bool(self.trial_ids())

    def save_spec(self, source: str | Path) -> None:
        atomic_write_bytes(self.spec_path, Path(source).read_bytes())

    def prepare(self) -> None:
        """Create the sweep folder, or fail in one line when it cannot be written."""
        ensure_writable_dir(self.root, "storage")

    def write_results(self, trial_ids: list[str] | None = None) -> pd.DataFrame:
        """(Re)write results, evaluations and fits tables from the sweep folders."""
        return write_results(self.root, trial_ids)


def ensure_writable_dir(path: Location, what: str) -> None:
    """Create ``path`` if needed; one-line error when it is a file or cannot be written."""
    if fsio.is_uri(path):
        problem = writable_dir_problem(path)
        if problem:
            raise CausalMixError(f"{what} {fsio.shown(path)} cannot be written ({problem})")
        fsio.makedirs(path)
        return
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CausalMixError(f"{what} {path} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CausalMixError(f"{what} {path} cannot be written ({reason})") from None


def writable_dir_problem(path: Location) -> str | None:
    """Why ``path`` could not be created and written, without creating anything (or None).
    A URI is resolved; on an object store a small object is written there and deleted."""
    if fsio.is_uri(path):
        try:
            fs, local = fsio.resolve(path)
        except Exception as exc:  # noqa: BLE001 - unknown scheme, bad options: one line
            return fsio.first_line(exc)
        if not fsio.is_local(fs):
            return fsio.uri_problem(str(path))
        path = Path(local)
    probe = Path(path)
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


def atomic_write_bytes(path: Location, data: bytes) -> None:
    fsio.atomic_write_bytes(path, data)


def atomic_write_json(path: Location, obj: Any) -> None:
    fsio.atomic_write_bytes(path, json.dumps(_jsonable(obj), indent=1, sort_keys=True).encode())


def atomic_write_parquet(path: Location, df: pd.DataFrame) -> None:
    fsio.atomic_write_parquet(path, df)


def read_json(path: Location) -> Any | None:
    """The JSON object at ``path``, or None if missing or unreadable (e.g. torn by a kill)."""
    return fsio.read_json(path)


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


def collect_fits(sweep_dir: Location) -> pd.DataFrame:
    """One row per generator fit (fit.json), fidelity metrics flattened to ``fidelity_*``."""
    rows = []
    for fit_id, meta in SweepStore(sweep_dir).fit_records():
        row = {k: meta.get(k) for k in FIT_COLUMNS if k in meta}
        row["fit_id"] = fit_id
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


def write_results(sweep_dir: Location, trial_ids: list[str] | None = None) -> pd.DataFrame:
    """(Re)write results.parquet, evaluations.parquet and fits.parquet from the sweep's trial
    records (those named, else every record in the sweep); provisional records of search trials
    interrupted mid-run are left out."""
    store = SweepStore(sweep_dir)
    book = ResultsBook(store, store.trial_ids() if trial_ids is None else trial_ids)
    for tid in [t for t, row in book.rows.items() if row.get("status") == "running"]:
        del book.rows[tid]
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
        for tid, rec in zip(self.order, store.read_trials(self.order)):
            if rec is not None:
                self.add(tid, rec)

    def add(self, trial_id: str, record: dict[str, Any]) -> None:
        if trial_id not in self._known:  # a search trial, created while the sweep runs
            self.order.append(trial_id)
            self._known.add(trial_id)
        self.rows[trial_id] = {**record["result"], "trial_key": record.get("key", "")}
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
        self.store.write_table("results.parquet", res)
        self.store.write_table("evaluations.parquet", evaluations_frame(evals))
        self.store.write_table("fits.parquet", collect_fits(self.store.root))
        return res
