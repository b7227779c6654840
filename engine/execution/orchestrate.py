"""Run a sweep on Ray: generator fits as CPU tasks and Ray Tune trials, at the same time.

Fits are Ray *tasks*: each releases its CPUs when it returns. All fits the remaining trials need
start when the sweep starts, with bounded concurrency; a trial is released to Tune as soon as
the synthetic table it reads exists, and trials that need no fit start at once
(``engine.execution.tune_run``).
Finished work is cached on disk under keys that cover everything that
made it (``engine.spec.cache_keys``): rerunning the same sweep reuses what still matches.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from engine.core.errors import CausalMixError
from engine.fits.generator_fits import check_fit_rows, fit_state
from engine.plan.sweep_plan import FitJob, SweepPlan, TrialJob, make_plan
from engine.spec.cache_keys import changed_fields
from engine.spec.sweep_file import AS_IS, SweepSpec
from engine.storage.fsio import Location, shown
from engine.storage.store import ResultsBook, SweepStore


def log(msg: str) -> None:
    print(f"[causalmix] {msg}", flush=True)


def run_sweep(spec: SweepSpec, address: str | None = None, num_cpus: int | None = None,
              report: bool = True, tune_verbose: int = 0, worker_logs: bool = False,
              methods: list[str] | None = None, reuse_from: Location | None = None,
              ) -> Location:
    """Run (or resume) a sweep; returns the sweep folder holding results.parquet (a ``Path``
    for local storage, else its URI). ``methods`` runs only those methods' trials this time
    (the rest stay planned); ``reuse_from`` restores finished trials from exported tables."""
    from engine.storage.lease import SweepLease

    store = SweepStore(spec.sweep_dir)
    store.prepare()
    with SweepLease(store.lease_path, spec.name):  # one driver per sweep
        _sweep(spec, store, address, num_cpus, tune_verbose, worker_logs, methods, reuse_from)
    if report:
        from engine.report import build_report

        out = build_report([store.root])
        log(f"report -> {shown(out)}")
    return store.root


def _sweep(spec: SweepSpec, store: SweepStore, address: str | None, num_cpus: int | None,
           tune_verbose: int, worker_logs: bool, methods: list[str] | None = None,
           reuse_from: Location | None = None) -> None:
    """Plan, reuse what is stored, run the rest, write the result tables (lease held)."""
    if spec.source != "<memory>" and Path(spec.source).is_file():
        store.save_spec(spec.source)
    plan = make_plan(spec)
    if reuse_from is not None:
        from engine.execution.restore import restore_records

        n = restore_records(store, plan.trials, reuse_from)
        log(f"reuse: {n} finished trials restored from {shown(reuse_from)}")
    todo, reasons = trials_to_run(store, plan.trials)
    studies = _open_studies(spec, plan, store)
    held = 0
    if methods is not None:  # the other methods' trials wait for a later run
        keep = set(check_methods(spec, methods))
        held = sum(t.method not in keep for t in todo) + sum(
            st.left for st in studies if st.job.template.method not in keep)
        todo = [t for t in todo if t.method in keep]
        studies = [st for st in studies if st.job.template.method in keep]
    searched = sum(st.left for st in studies)
    log(f"sweep '{spec.name}': {plan.planned_trials} trials planned, "
        f"{plan.planned_trials - len(todo) - searched - held} reused, {len(todo) + searched} "
        f"to run{_why(reasons)}" + (f", {held} left for a later run (--methods)" if held else "")
        + f"; storage {shown(store.root)}")
    book = ResultsBook(store, [t.trial_id for t in plan.trials] + _study_trial_ids(studies))
    if todo or searched:
        preflight(spec, plan)
        _connect(address, num_cpus, worker_logs)
        try:
            _run(spec, plan, store, book, todo, tune_verbose, studies, held)
        except KeyboardInterrupt:
            book.write()  # the tables hold every trial finished before the Ctrl-C
            raise
    results = book.write()
    n_ok = int((results["status"] == "ok").sum())
    log(f"results: {len(results)} rows ({n_ok} ok, {len(results) - n_ok} error) -> "
        f"{shown(store.results_path)}")


def _open_studies(spec: SweepSpec, plan: SweepPlan, store: SweepStore) -> list[Any]:
    """The search's Optuna studies, created or resumed (none in a grid sweep)."""
    if not plan.studies:
        return []
    from engine.execution.studies import open_studies

    studies = open_studies(store, spec.search, plan.studies)
    log(f"search: {len(studies)} Optuna studies ({spec.search.sampler}, budget "
        f"{spec.search.budget} each) in {shown(store.search_db)}")
    return studies


def _study_trial_ids(studies: list[Any]) -> list[str]:
    from engine.execution.studies import study_trial_ids

    return [tid for st in studies for tid in study_trial_ids(st)]


def _run(spec: SweepSpec, plan: SweepPlan, store: SweepStore, book: ResultsBook,
         todo: list[TrialJob], verbose: int, studies: list[Any], held: int = 0) -> None:
    """Fits and trials of the remaining work, at the same time (``held``: trials left for a
    later run, so the sweep is not finished when these are)."""
    from engine.execution.placement import (
        fit_slots,
        fits_first,
        node_resources,
        placement_extras,
        total_cpus,
        trial_slots,
    )
    from engine.execution.tune_run import SweepRun, run_tune
    from engine.storage.progress import Progress

    nodes = node_resources()
    _check_resources(spec, nodes)
    fit_extra, trial_extra = placement_extras(nodes)
    needed = {t.synthetic_dir for t in todo if t.generator}
    needed |= {st.job.template.synthetic_dir for st in studies
               if st.left > 0 and st.job.template.generator}
    fits = [f for f in plan.fits if f.out_dir in needed]
    reused, pending = _fit_decisions(fits)
    left = len(todo) + sum(st.left for st in studies)
    progress = Progress(store, spec.name, plan.planned_trials - held,
                        plan.planned_trials - held - left, len(fits), len(reused))
    run = SweepRun(store, book, progress, todo, pending, {f.out_dir for f in reused},
                   [st for st in studies if st.left > 0], spec.search, spec.tracking)
    r = spec.resources
    slots = r.max_concurrent_fits or fit_slots(nodes, r.generator_cpus, r.trial_cpus,
                                               r.trial_gpus)
    run.start_fits(r.generator_cpus, slots, fit_extra)
    reserve = min(slots, len(pending)) * r.generator_cpus if not fit_extra else 0.0
    completed = False
    try:
        if pending and fits_first(nodes, r.generator_cpus, r.trial_cpus):
            log(f"{total_cpus(nodes):g} CPUs hold a fit or a trial, not both: the fits run first")
            run.wait_for_fits()
            reserve = 0.0  # no fit runs beside the trials
        if not run_tune(run, todo, {"cpu": r.trial_cpus, "gpu": r.trial_gpus, **trial_extra},
                        r.max_concurrent_trials or trial_slots(nodes, r.trial_cpus,
                                                               r.trial_gpus, reserve),
                        verbose):
            raise KeyboardInterrupt  # Tune took the Ctrl-C: stop here, not after every fit
        run.wait_for_fits()  # fits no trial waited for
        completed = held == 0
    finally:  # an interrupted or failed driver leaves 'finished' false: status says stale
        progress.save(force=True, finished=completed)
        if studies:
            studies[0].db.sync()


def check_methods(spec: SweepSpec, methods: list[str]) -> list[str]:
    """``--methods``: names of the spec's methods, else one line naming the unknown one."""
    known = [m.shown for m in spec.methods]
    for name in methods:
        if name not in known:
            raise CausalMixError(f"--methods: '{name}' is not a method of sweep "
                                 f"'{spec.name}' ({', '.join(known)})")
    return methods


def _fit_decisions(fits: list[FitJob]) -> tuple[list[FitJob], list[FitJob]]:
    """(reused, to run): stored fits under the same key are reused after their recorded
    training rows are checked against the current split."""
    states = {f.out_dir: fit_state(f) for f in fits}
    reused = [f for f in fits if states[f.out_dir] == "reuse"]
    for f in reused:
        check_fit_rows(f)
    pending = [f for f in fits if states[f.out_dir] != "reuse"]
    reasons = Counter(states[f.out_dir] for f in pending)
    log(f"generator fits: {len(reused)} reused, {len(pending)} to run{_why(reasons)}")
    return reused, pending


def trials_to_run(store: SweepStore, trials: list[TrialJob],
                  ) -> tuple[list[TrialJob], Counter[str]]:
    """Trials without a finished record under their current key, and why each must run."""
    todo: list[TrialJob] = []
    reasons: Counter[str] = Counter()
    for t, rec in zip(trials, store.read_trials([t.trial_id for t in trials])):
        if rec and rec.get("key") == t.key and rec.get("result", {}).get("status") == "ok":
            continue
        todo.append(t)
        if rec is None:
            reasons["new"] += 1
        elif rec.get("key") != t.key:
            fields = changed_fields(rec.get("inputs"), t.inputs)
            reasons[f"changed {', '.join(fields[:3])}"] += 1
        else:
            reasons["failed before"] += 1
    return todo, reasons


def _why(reasons: Counter[str]) -> str:
    if not reasons:
        return ""
    return " (" + "; ".join(f"{n} {why}" for why, n in reasons.most_common()) + ")"


def preflight(spec: SweepSpec, plan: SweepPlan | None = None) -> None:
    """Fail fast, in one line, on problems every trial would hit: the model, the datasets,
    and folds that cannot give ``n_train`` rows."""
    from engine.models import load_model

    options = {k: v for k, v in spec.model.items() if k != "name"}
    load_model(spec.model["name"], device="cpu", **options)
    check_fold_sizes(plan or make_plan(spec), source=spec.source)


def check_fold_sizes(plan: SweepPlan, offline_only: bool = False, source: str = "sweep",
                     ) -> None:
    """Refuse an ``n_train`` larger than the rows a dataset-fold can give (no silent shortfall).

    With ``offline_only`` (``causalmix validate``) only datasets readable without the network
    are checked. A table with fewer rows than ``n_train`` is refused whatever its folds; a fold
    that fails for other data reasons (one class) is left to its trials, which record why."""
    from engine.core.errors import DataError, SpecError
    from engine.data import load_dataset
    from engine.folds.fold_data import load_fold
    from engine.folds.shift import ShiftError
    from engine.folds.splits import ImbalanceError
    from engine.spec.cache_keys import mirror_file

    seen: set[tuple[str, int, float | None]] = set()
    loaded: dict[str, int] = {}  # dataset -> rows
    for t in plan.trials + [st.template for st in plan.studies]:
        ref = t.fold
        name = ref.dataset["name"]
        local = (ref.dataset.get("path") or name.startswith("sklearn/")
                 or mirror_file(name, ref.data_dir) is not None)
        if (name, ref.fold, ref.minority_share) in seen or (offline_only and not local):
            continue
        if name not in loaded:  # the whole table must load (one line if not)
            loaded[name] = len(load_dataset(name, path=ref.dataset.get("path"),
                                            target=ref.dataset.get("target"),
                                            data_dir=ref.data_dir).y)
        seen.add((name, ref.fold, ref.minority_share))
        if loaded[name] < ref.n_train:  # no fold of it can give n_train rows
            raise CausalMixError(f"{name}: the table has {loaded[name]} rows, fewer than "
                                 f"n_train={ref.n_train}; lower n_train")
        try:
            split = load_fold(ref).split
        except ImbalanceError as exc:  # a share this table cannot give: refused up front
            raise SpecError(source, "imbalance.minority_share", str(exc)) from None
        except ShiftError as exc:  # a shift the table cannot give: refused up front
            raise SpecError(source, ref.shift.field_name(exc.field), str(exc)) from None
        except DataError:  # e.g. one class in a fold: its trials record the reason
            continue
        got = len(split.train) + len(split.val)
        if got < ref.n_train:
            raise CausalMixError(
                f"{ref.dataset['name']} fold {ref.fold}: n_train={ref.n_train} but only {got} "
                "rows remain outside the test fold; lower n_train")


# ---------------------------------------------------------------------------- Ray setup
def _connect(address: str | None, num_cpus: int | None, worker_logs: bool = False) -> None:
    """Join a Ray cluster or start a local one. Worker output stays in Ray's log folder unless
    ``worker_logs``; trial errors are recorded in the results either way."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    if address:
        ray.init(address=address, logging_level="WARNING", log_to_driver=worker_logs)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1, logging_level="WARNING",
                 log_to_driver=worker_logs)
    res = ray.cluster_resources()
    log(f"ray: {res.get('CPU', 0):g} CPUs, {res.get('GPU', 0):g} GPUs")


def _check_resources(spec: SweepSpec, nodes: list[dict[str, float]]) -> None:
    """Refuse requests no node can meet (Tune would otherwise wait for them forever)."""
    r = spec.resources
    if not any(n.get("CPU", 0) >= r.generator_cpus for n in nodes):
        raise CausalMixError(f"resources.generator_cpus={r.generator_cpus:g} exceeds every "
                             "node's CPUs")
    if not any(n.get("CPU", 0) >= r.trial_cpus and n.get("GPU", 0) >= r.trial_gpus for n in nodes):
        raise CausalMixError(f"no node has {r.trial_cpus:g} CPUs and {r.trial_gpus:g} GPUs for a "
                             "trial (resources.trial_cpus / trial_gpus)")


def plan_summary(spec: SweepSpec) -> dict[str, Any]:
    """Counts a user sees from ``causalmix validate``."""
    plan = make_plan(spec)
    per_method: dict[str, int] = {}
    for t in plan.trials:
        per_method[t.method] = per_method.get(t.method, 0) + 1
    for st in plan.studies:
        per_method[st.template.method] = per_method.get(st.template.method, 0) + st.budget
    search = {}
    if plan.studies:
        search = {"search": {"mode": spec.search.mode, "studies": len(plan.studies),
                             "budget": spec.search.budget, "sampler": spec.search.sampler,
                             "scheduler": spec.search.scheduler,
                             "space": {d.name: [d.low, d.high] for d in spec.search.space}}}
    return {"trials": plan.planned_trials, **search, "generator_fits": len(plan.fits),
            "largest_synthetic_table": plan.largest_fit,
            "max_synthetic_rows": spec.max_synthetic_rows,
            "per_method": per_method, "storage": shown(spec.sweep_dir),
            **({"minority_share": [AS_IS if s is None else s for s in spec.minority_shares]}
               if spec.minority_shares else {}),
            "resources": asdict(spec.resources),
            **({"tracking": spec.tracking.shown()} if spec.tracking else {})}

