"""One generator fit per dataset-fold: fit on training rows only, sample, store, describe."""

from __future__ import annotations

import pickle
import random
import time
from typing import Any

import numpy as np
import pandas as pd

from engine.core.errors import CausalMixError, MissingExtraError
from engine.folds.fold_data import load_fold
from engine.folds.splits import derive_seed
from engine.plan.sweep_plan import FitJob, FoldRef
from engine.storage import fsio
from engine.storage.store import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_parquet,
    read_json,
)

TARGET_COLUMN = "__target__"


def fit_state(job: FitJob) -> str:
    """'reuse' when this exact fit (same key) is stored, else why it must run."""
    meta = read_json(fsio.join(job.out_dir, "fit.json"))
    if meta is None:
        return "new"
    if meta.get("key") != job.key:
        return "stored under another key"
    if meta.get("status") != "ok":
        return "failed before"
    if not fsio.is_file(fsio.join(job.out_dir, "synthetic.parquet")):
        return "synthetic table missing"
    return "reuse"


def check_fit_rows(job: FitJob) -> None:
    """Refuse a stored fit whose recorded training rows are not the current split's."""
    meta = read_json(fsio.join(job.out_dir, "fit.json")) or {}
    seen = sorted(int(i) for i in meta.get("train_rows", []))
    expected = load_fold(job.fold).split.train.tolist()
    if seen != sorted(expected):
        raise CausalMixError(
            f"stored fit {fsio.shown(job.out_dir)} was made from other training rows than the "
            f"current split of {job.fold.dataset['name']} fold {job.fold.fold}; delete that folder "
            "(or use a new storage) to refit")


def run_fit(job: FitJob, threads: int = 1) -> dict[str, Any]:
    """Fit ``job.generator`` on the fold's training rows and store ``n_samples`` synthetic rows.

    Returns the fit summary (also written to ``fit.json``); errors become a summary with
    status 'error' and a one-line message, so a failed fit never stops the sweep.
    """
    import torch

    torch.set_num_threads(max(1, threads))
    out = job.out_dir
    t0 = time.perf_counter()
    summary: dict[str, Any] = {"generator": job.generator, "options": job.options,
                               "dataset": job.fold.dataset["name"], "fold": job.fold.fold,
                               "n_samples": job.n_samples, "key": job.key, "inputs": job.inputs,
                               "started_at": time.time(), "device": "cpu"}
    try:
        from engine.generators import make_generator

        fold = load_fold(job.fold)
        X_train, y_train = fold.rows("train")
        seed = _fit_seed(job.fold, job.generator)
        gen = make_generator(job.generator, **job.options)
        if job.members:
            fitted, dropped, summary["members"] = _fitted_members(job, X_train, y_train)
            gen.use_fitted(fitted, dropped)
        _seed_everything(seed)
        gen.fit(X_train, y_train)
        if job.fitted_path:
            atomic_write_bytes(job.fitted_path, pickle.dumps(gen))
        X_syn, y_syn = gen.sample(job.n_samples, seed=seed)
        table = X_syn.copy()
        table[TARGET_COLUMN] = y_syn.to_numpy()
        atomic_write_parquet(fsio.join(out, "synthetic.parquet"), table)
        summary.update(_describe(gen, X_train, y_train, X_syn, y_syn, seed))
        summary.update(status="ok", error="", seconds=time.perf_counter() - t0,
                       train_rows=[int(i) for i in gen.seen_index_])
    except Exception as exc:  # noqa: BLE001 - recorded as one line, the sweep goes on
        summary.update(status="error", error=one_line(exc), seconds=time.perf_counter() - t0)
    summary["finished_at"] = time.time()
    atomic_write_json(fsio.join(out, "fit.json"), summary)
    return summary


def _fit_seed(fold: FoldRef, generator: str) -> int:
    return derive_seed("generator", fold.seed, fold.dataset["name"], fold.fold, generator)


def _fitted_members(job: FitJob, X: pd.DataFrame, y: pd.Series,
                    ) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """The fitted members of a ``mixed`` fit: the sweep's kept fits where they exist, else
    fitted here exactly as the member's own fit would be (same seed) and kept for others.
    Also returns the members left out (why) and how each was obtained."""
    from engine.generators import make_generator

    fitted, dropped, how = {}, {}, {}
    for member in job.members:
        path = member.fitted_path
        gen = _read_pickle(path)
        how[member.generator] = "reused"
        if gen is None or list(gen.seen_index_) != list(X.index):
            how[member.generator] = "fitted"
            try:
                gen = make_generator(member.generator, **member.options)
                _seed_everything(_fit_seed(job.fold, member.generator))
                gen.fit(X, y)
            except MissingExtraError as exc:
                dropped[member.generator] = how[member.generator] = str(exc)
                continue
            atomic_write_bytes(path, pickle.dumps(gen))
        fitted[member.generator] = gen
    return fitted, dropped, how


def _read_pickle(path: str) -> Any | None:
    """A kept fitted generator, or None when missing or unreadable (e.g. torn by a kill)."""
    try:
        return pickle.loads(fsio.read_bytes(path))
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return None


def load_synthetic(out_dir: str, n: int) -> tuple[pd.DataFrame, pd.Series]:
    """The first ``n`` stored synthetic rows (an i.i.d. prefix of the generator's sample)."""
    meta = read_json(fsio.join(out_dir, "fit.json"))
    if not meta or meta.get("status") != "ok":
        reason = meta.get("error", "no fit") if meta else "no fit"
        raise CausalMixError(f"synthetic table unavailable: {reason}")
    table = fsio.read_parquet(fsio.join(out_dir, "synthetic.parquet"))
    if len(table) < n:
        raise CausalMixError(f"synthetic table has {len(table)} rows, {n} needed")
    table = table.iloc[:n]
    return table.drop(columns=[TARGET_COLUMN]), table[TARGET_COLUMN]


def one_line(exc: BaseException) -> str:
    """An exception as one readable line."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, CausalMixError):
        return msg
    return f"{type(exc).__name__}: {msg}"[:500]


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _describe(gen: Any, X_train: pd.DataFrame, y_train: pd.Series, X_syn: pd.DataFrame,
              y_syn: pd.Series, seed: int) -> dict[str, Any]:
    """Graph and fidelity facts stored next to the synthetic table."""
    info: dict[str, Any] = {}
    for attr in ("discovery_seconds_", "fit_seconds_"):
        if hasattr(gen, attr):
            info[attr.rstrip("_")] = float(getattr(gen, attr))
    graph = getattr(gen, "graph_", None)
    if graph is not None:
        info["graph_edges"] = [[str(a), str(b)] for a, b in graph.edges()]
    test = getattr(getattr(gen, "discovery_", None), "indep_test", "")
    if test:
        info["indep_test"] = str(test)  # what an 'auto' test resolved to
    if getattr(gen, "mechanisms_", None):
        info["mechanisms"] = {str(k): str(v) for k, v in gen.mechanisms_.items()}
    try:
        from engine.fits.fidelity import fidelity_report
    except ImportError:
        return info
    try:
        info["fidelity"] = fidelity_report(X_train, y_train, X_syn, y_syn, seed=seed,
                                           generator=gen)
    except Exception as exc:  # noqa: BLE001 - fidelity is descriptive; never fails a fit
        info["fidelity_error"] = one_line(exc)
    return info
