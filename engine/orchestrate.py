"""Run a sweep on Ray: generator fits as CPU tasks, then one Ray Tune trial per grid point.

Generator fits are Ray *tasks* (not long-lived actors): each releases its CPUs when it returns,
so Tune trials never wait behind idle generator workers. Every trial that needs a synthetic
table reads the one fitted for its (dataset, fold, generator, options). Finished work is cached
on disk (``engine.store``): rerunning the same sweep skips finished fits and trials.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from engine.cache_keys import changed_fields
from engine.errors import CausalMixError
from engine.generator_fits import check_fit_rows, fit_state, run_fit
from engine.plan import FitJob, SweepPlan, TrialJob, make_plan
from engine.spec import SweepSpec
from engine.store import SweepStore


def log(msg: str) -> None:
    print(f"[causalmix] {msg}", flush=True)


def run_sweep(spec: SweepSpec, address: str | None = None, num_cpus: int | None = None,
              report: bool = True, tune_verbose: int = 0, worker_logs: bool = False) -> Path:
    """Run (or resume) a sweep; returns the sweep directory holding results.parquet."""
    store = SweepStore(spec.sweep_dir)
    store.prepare()
    if spec.source != "<memory>" and Path(spec.source).is_file():
        store.save_spec(spec.source)
    plan = make_plan(spec)
    todo, reasons = trials_to_run(store, plan.trials)
    log(f"sweep '{spec.name}': {len(plan.trials)} trials planned, "
        f"{len(plan.trials) - len(todo)} reused, {len(todo)} to run{_why(reasons)}; "
        f"storage {store.root}")
    if todo:
        preflight(spec, plan)
        _connect(address, num_cpus, worker_logs)
        _check_resources(spec)
        needed = {t.synthetic_dir for t in todo if t.generator}
        failed = _run_fits([f for f in plan.fits if f.out_dir in needed], spec)
        runnable = []
        for t in todo:
            if t.generator and t.synthetic_dir in failed:
                _write_failed_trial(store, t, f"generator fit failed: {failed[t.synthetic_dir]}")
            else:
                runnable.append(t)
        _run_trials(runnable, spec, plan, tune_verbose)
    results = store.write_results([t.trial_id for t in plan.trials])
    n_ok = int((results["status"] == "ok").sum())
    log(f"results: {len(results)} rows ({n_ok} ok, {len(results) - n_ok} error) -> "
        f"{store.results_path}")
    if report:
        from engine.report import build_report

        out = build_report([store.root])
        log(f"report -> {out}")
    return store.root


def trials_to_run(store: SweepStore, trials: list[TrialJob],
                  ) -> tuple[list[TrialJob], Counter[str]]:
    """Trials without a finished record under their current key, and why each must run."""
    todo: list[TrialJob] = []
    reasons: Counter[str] = Counter()
    for t in trials:
        rec = store.read_trial(t.trial_id)
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
    check_fold_sizes(plan or make_plan(spec))


def check_fold_sizes(plan: SweepPlan, offline_only: bool = False) -> None:
    """Refuse an ``n_train`` larger than the rows a dataset-fold can give (no silent shortfall).

    With ``offline_only`` (``causalmix validate``) only datasets readable without the network
    are checked. Folds that fail for other data reasons are left to their trials, which record
    the error."""
    from engine.cache_keys import mirror_file
    from engine.data import load_dataset
    from engine.errors import DataError
    from engine.fold_data import load_fold

    seen: set[tuple[str, int]] = set()
    for t in plan.trials:
        ref = t.fold
        name = ref.dataset["name"]
        local = (ref.dataset.get("path") or name.startswith("sklearn/")
                 or mirror_file(name, ref.data_dir) is not None)
        if (name, ref.fold) in seen or (offline_only and not local):
            continue
        if not any(n == name for n, _ in seen):  # the whole table must load (one line if not)
            load_dataset(name, path=ref.dataset.get("path"), target=ref.dataset.get("target"),
                         data_dir=ref.data_dir)
        seen.add((name, ref.fold))
        try:
            split = load_fold(ref).split
        except DataError:
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


def _check_resources(spec: SweepSpec) -> None:
    """Refuse requests no node can meet (Tune would otherwise wait for them forever)."""
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    r = spec.resources
    if not any(n.get("CPU", 0) >= r.generator_cpus for n in nodes):
        raise CausalMixError(f"resources.generator_cpus={r.generator_cpus:g} exceeds every "
                             "node's CPUs")
    if not any(n.get("CPU", 0) >= r.trial_cpus and n.get("GPU", 0) >= r.trial_gpus for n in nodes):
        raise CausalMixError(f"no node has {r.trial_cpus:g} CPUs and {r.trial_gpus:g} GPUs for a "
                             "trial (resources.trial_cpus / trial_gpus)")


# ---------------------------------------------------------------------------- phase 1: fits
def _run_fits(fits: list[FitJob], spec: SweepSpec) -> dict[str, str]:
    """Fit every pending generator as a Ray task; returns {out_dir: error} of failed fits."""
    import ray

    states = {f.out_dir: fit_state(f) for f in fits}
    reused = [f for f in fits if states[f.out_dir] == "reuse"]
    for f in reused:
        check_fit_rows(f)
    pending = [f for f in fits if states[f.out_dir] != "reuse"]
    failed: dict[str, str] = {}
    reasons = Counter(states[f.out_dir] for f in pending)
    log(f"generator fits: {len(reused)} reused, {len(pending)} to run{_why(reasons)}")
    if not pending:
        return failed
    cpus = spec.resources.generator_cpus
    remote = ray.remote(_fit_task).options(num_cpus=cpus, max_retries=1)
    refs = {remote.remote(f, max(1, int(cpus))): f for f in pending}
    n_done = 0
    while refs:
        ready, _ = ray.wait(list(refs), num_returns=1)
        job = refs.pop(ready[0])
        try:
            summary = ray.get(ready[0])
        except Exception as exc:  # noqa: BLE001 - worker died; recorded, the sweep goes on
            summary = {"status": "error", "error": f"worker failed: {type(exc).__name__}"}
        n_done += 1
        what = f"{job.generator} on {job.fold.dataset['name']} fold {job.fold.fold}"
        if summary.get("status") == "ok":
            log(f"  [{n_done}/{len(pending)}] fitted {what} in {summary.get('seconds', 0):.1f}s")
        else:
            failed[job.out_dir] = summary.get("error", "unknown error")
            log(f"  [{n_done}/{len(pending)}] FAILED {what}: {failed[job.out_dir]}")
    return failed


def _fit_task(job: FitJob, threads: int) -> dict[str, Any]:
    return run_fit(job, threads=threads)


# ---------------------------------------------------------------------------- phase 2: trials
def _write_failed_trial(store: SweepStore, job: TrialJob, error: str) -> None:
    from engine.trial import base_row, trial_record

    row = base_row(job)
    row.update(status="error", error=error, seconds=0.0)
    store.write_trial(job.trial_id, trial_record(job, row, []))


def _run_trials(jobs: list[TrialJob], spec: SweepSpec, plan: SweepPlan, verbose: int) -> None:
    from ray import tune

    if not jobs:
        return
    by_id = {j.trial_id: j for j in jobs}
    trainable = tune.with_resources(
        tune.with_parameters(tune_trainable, jobs=by_id),
        {"cpu": spec.resources.trial_cpus, "gpu": spec.resources.trial_gpus},
    )
    tune_dir = SweepStore(spec.sweep_dir).tune_dir
    tune_dir.mkdir(parents=True, exist_ok=True)
    progress = _Progress(spec.sweep_dir, [t.trial_id for t in plan.trials], len(jobs))
    tuner = tune.Tuner(
        trainable,
        param_space={"trial_id": tune.grid_search(sorted(by_id))},
        tune_config=tune.TuneConfig(
            max_concurrent_trials=spec.resources.max_concurrent_trials or None,
            trial_name_creator=_trial_name, trial_dirname_creator=_trial_name,
        ),
        run_config=tune.RunConfig(
            name=f"run-{time.strftime('%Y%m%d-%H%M%S')}", storage_path=str(tune_dir),
            verbose=verbose, callbacks=[progress],
            failure_config=tune.FailureConfig(max_failures=1),
        ),
    )
    log(f"fine-tuning: {len(jobs)} trials on Ray Tune (logs: {tune_dir})")
    tuner.fit()
    progress.flush(force=True)


def _trial_name(trial: Any) -> str:
    return str(trial.config["trial_id"]).replace("/", "_")[:120]


def tune_trainable(config: dict[str, Any], jobs: dict[str, TrialJob]) -> None:
    """Tune function trainable: run one trial, store its result, report every evaluation."""
    from ray import tune

    from engine.trial import run_trial

    job = jobs[config["trial_id"]]
    rec = run_trial(job, logger=TuneReportLogger())
    SweepStore(job.sweep_dir).write_trial(job.trial_id, rec)
    row = rec["result"]
    final = {k: v for k, v in row.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    final.update(final=True, ok=row["status"] == "ok", step=row.get("steps_run", 0))
    tune.report(final)


class TuneReportLogger:
    """Forwards each fine-tuning evaluation to ``ray.tune.report`` (one hook, as in the logger
    protocol of ``engine.finetune``)."""

    def on_evaluation(self, evaluation: Any, is_best: bool) -> None:
        from ray import tune

        metrics = {"step": evaluation.step, "is_best": float(is_best), "final": False, "ok": True}
        if evaluation.train_loss == evaluation.train_loss:
            metrics["train_loss"] = evaluation.train_loss
        metrics.update({f"val_{k}": v for k, v in evaluation.val.items()})
        metrics.update({f"eval_test_{k}": v for k, v in evaluation.test.items()})
        tune.report(metrics)


def _progress_line(row: dict[str, Any]) -> str:
    if row.get("status") != "ok":
        return f"ERROR {row.get('error', '')}"
    return (f"test ROC-AUC {row.get('test_roc_auc', float('nan')):.4f} "
            f"(zero-shot {row.get('zero_shot_test_roc_auc', float('nan')):.4f}, "
            f"{row.get('normalized_improvement_pct', float('nan')):+.2f}%) "
            f"best step {row.get('best_step')}/{row.get('steps_run')}")


try:
    from ray.tune import Callback as _TuneCallback
except ImportError:  # pragma: no cover - ray always has it
    _TuneCallback = object  # type: ignore[assignment,misc]


class _Progress(_TuneCallback):  # type: ignore[misc,valid-type]
    """Prints one line per finished trial and keeps results.parquet current (partial reports)."""

    def __init__(self, sweep_dir: Path, all_ids: list[str], total: int) -> None:
        self.sweep_dir, self.all_ids, self.total = sweep_dir, all_ids, total
        self.count = 0
        self.last_write = 0.0

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.count += 1
        tid = trial.config["trial_id"]
        rec = SweepStore(self.sweep_dir).read_trial(tid) or {}
        log(f"  [{self.count}/{self.total}] {tid}: {_progress_line(rec.get('result', {}))}")
        self.flush()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.count += 1
        log(f"  [{self.count}/{self.total}] {trial.config['trial_id']}: worker crashed "
            "(rerun the sweep to retry it)")

    def flush(self, force: bool = False) -> None:
        if force or time.monotonic() - self.last_write > 15:
            SweepStore(self.sweep_dir).write_results(self.all_ids)
            self.last_write = time.monotonic()


def plan_summary(spec: SweepSpec) -> dict[str, Any]:
    """Counts a user sees from ``causalmix validate``."""
    plan = make_plan(spec)
    per_method: dict[str, int] = {}
    for t in plan.trials:
        per_method[t.method] = per_method.get(t.method, 0) + 1
    return {"trials": len(plan.trials), "generator_fits": len(plan.fits),
            "largest_synthetic_table": plan.largest_fit,
            "max_synthetic_rows": spec.max_synthetic_rows,
            "per_method": per_method, "storage": str(spec.sweep_dir),
            "resources": asdict(spec.resources)}

