"""Optuna's own views of a search sweep's studies (``<sweep>/search/optuna.db``): optimisation
history and parameter-importance plots for a few studies, mean parameter importance per method.

A missing or unreadable database only leaves these out, with a note; never an error."""

from __future__ import annotations

import sqlite3
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from engine.report import html
from engine.report.export import Outputs
from engine.report.plots import plt, safe_name
from engine.report.reference import ordered_methods
from engine.storage import fsio

SEARCH_DB = ("search", "optuna.db")
MAX_PLOTTED_STUDIES = 6
MAX_IMPORTANCE_STUDIES = 40  # per method: fANOVA costs ~0.1 s a study
IMPORTANCE_SEED = 0


@contextmanager
def snapshot(db: fsio.Location) -> Iterator[Any]:
    """An RDB storage on a consistent copy of ``db``, opened read-only.

    Optuna's RDBStorage would create a missing database and may write to an existing one
    (schema set-up); the report must do neither, and a running sweep may be writing: so the
    file is copied with SQLite's online backup and the copy is opened."""
    import optuna

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "optuna.db"
        if fsio.is_uri(db):  # a store that is not local: read a downloaded copy
            if not fsio.exists(db):
                raise FileNotFoundError(f"{fsio.shown(db)}: missing")
            fetched = Path(tmp) / "fetched.db"
            fetched.write_bytes(fsio.read_bytes(db))
            db = fetched
        if not Path(db).is_file():
            raise FileNotFoundError(f"{db}: missing")
        src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        dst = sqlite3.connect(copy)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        storage = optuna.storages.RDBStorage(f"sqlite:///{copy}")
        try:
            yield storage
        finally:
            storage.remove_session()
            storage.engine.dispose()


def _db_of(source: str) -> fsio.Location:
    """The studies' database of the sweep at ``source`` (a folder or a URI)."""
    return fsio.join(fsio.as_location(source), *SEARCH_DB)


def load_studies(keys: list[tuple[str, str]]) -> tuple[dict[tuple[str, str], Any], list[str]]:
    """The studies ``keys`` = (sweep folder, study name), each copied into memory; plus a note
    per sweep whose database could not be read or lacks some of the studies."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    studies, notes = {}, []
    for source in sorted({k[0] for k in keys}):
        names = sorted(k[1] for k in keys if k[0] == source)
        try:
            with snapshot(_db_of(source)) as storage:
                for name in names:
                    try:
                        stored = optuna.load_study(study_name=name, storage=storage)
                    except KeyError:  # a study not (yet) in the database
                        continue
                    study = optuna.create_study(study_name=name, direction=stored.direction)
                    study.add_trials(stored.trials)
                    studies[(source, name)] = study
        except Exception as exc:  # noqa: BLE001 - a damaged database only drops the plots
            text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            notes.append(f"Optuna studies of {source} not read ({type(exc).__name__}: {text}); "
                         "their plots and importances are left out.")
            continue
        missing = [n for n in names if (source, n) not in studies]
        if missing:
            notes.append(f"{len(missing)} studies (e.g. {missing[0]}) are not in "
                         f"{fsio.shown(_db_of(source))}; left out of the Optuna plots.")
    return studies, notes


def _by_method(method_of: dict[tuple[str, str], str]) -> list[list[tuple[str, str]]]:
    """Study keys grouped by method (report order), each group sorted."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for key in sorted(method_of):
        groups.setdefault(method_of[key], []).append(key)
    return [groups[m] for m in ordered_methods(groups)]


def plotted_studies(method_of: dict[tuple[str, str], str], limit: int = MAX_PLOTTED_STUDIES,
                    ) -> list[tuple[str, str]]:
    """At most ``limit`` studies, taken in turn from each method (report order), each
    method's studies in sorted order: deterministic, and every method is shown."""
    queues = _by_method(method_of)
    chosen: list[tuple[str, str]] = []
    while len(chosen) < limit and any(queues):
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    return chosen


def _evaluator() -> Any:
    from optuna.importance import FanovaImportanceEvaluator

    return FanovaImportanceEvaluator(seed=IMPORTANCE_SEED)


def importances(studies: dict[tuple[str, str], Any], method_of: dict[tuple[str, str], str],
                ) -> pd.DataFrame:
    """Mean (and spread of) fANOVA parameter importance per method over the studies; studies
    where it cannot run (< 2 complete trials, constant values) are counted as skipped."""
    from optuna.importance import get_param_importances

    rows, skipped = [], {}
    for key in sorted(studies):
        method = method_of[key]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found = get_param_importances(studies[key], evaluator=_evaluator())
        except Exception:  # noqa: BLE001 - e.g. zero variance: this study has no importances
            skipped[method] = skipped.get(method, 0) + 1
            continue
        rows += [dict(method=method, param=p, importance=float(v)) for p, v in found.items()]
    frame = pd.DataFrame(rows, columns=["method", "param", "importance"])
    table = frame.groupby(["method", "param"]).agg(
        mean_importance=("importance", "mean"), std_importance=("importance", "std"),
        n_studies=("importance", "size")).reset_index()
    table["n_skipped"] = table["method"].map(skipped).fillna(0).astype(int)
    only_skipped = [dict(method=m, param="", mean_importance=float("nan"),
                         std_importance=float("nan"), n_studies=0, n_skipped=n)
                    for m, n in skipped.items() if m not in set(table["method"])]
    table = pd.concat([table, pd.DataFrame(only_skipped)], ignore_index=True)
    table["order"] = table["method"].map({m: i for i, m in
                                          enumerate(ordered_methods(table["method"]))})
    return table.sort_values(["order", "mean_importance"], ascending=[True, False]).drop(
        columns="order").reset_index(drop=True)


def _study_figures(study: Any) -> dict[str, plt.Figure]:
    """Optuna's history and importance plots of one study (importance only when it runs)."""
    from optuna.visualization.matplotlib import plot_optimization_history, plot_param_importances

    figures = {}
    # rc_context: Optuna's plots switch the global matplotlib style, which must not leak into
    # the report's other figures.
    with warnings.catch_warnings(), plt.rc_context():
        warnings.simplefilter("ignore")  # the matplotlib backend is flagged experimental
        figures["history"] = plot_optimization_history(study).figure
        try:
            figures["importance"] = plot_param_importances(study, evaluator=_evaluator()).figure
        except Exception:  # noqa: BLE001 - no importances for this study (see importances)
            pass
    for fig in figures.values():
        ax = fig.axes[0]
        ax.set_title(f"{study.study_name}\n{ax.get_title()}", fontsize=10)
    return figures


def optuna_blocks(best: pd.DataFrame, outputs: Outputs) -> list[str]:
    """HTML blocks (and the written tables and figures) of Optuna's views of the studies."""
    if best.empty:
        return []
    method_of = {(str(r.source), str(r.search)): str(r.method)
                 for r in best[["source", "search", "method"]].itertuples(index=False)}
    plotted = plotted_studies(method_of)
    weighed = [k for group in _by_method(method_of) for k in group[:MAX_IMPORTANCE_STUDIES]]
    studies, notes = load_studies(sorted(set(plotted) | set(weighed)))
    outputs.notes.extend(notes)
    blocks = [html.paragraph(n) for n in notes]
    if not studies:
        return blocks
    table = outputs.table("search_param_importance", importances(
        {k: studies[k] for k in weighed if k in studies}, method_of))
    blocks += [html.paragraph("Mean fANOVA parameter importance per method over its studies "
                              "(Optuna, objective = each study's search metric); n_skipped "
                              "studies had too few complete trials or constant values."),
               html.table(table)]
    several = best["source"].nunique() > 1
    for index, key in enumerate(k for k in plotted if k in studies):
        label = f"{key[1]} ({Path(key[0]).name})" if several else key[1]
        for kind, fig in _study_figures(studies[key]).items():
            name = f"optuna_{kind}_{index}_{safe_name(key[1])}"
            outputs.figure(name, fig)
            what = "optimisation history" if kind == "history" else "parameter importances"
            blocks.append(html.image(outputs.images[name], f"{label}: Optuna {what}."))
    return blocks
