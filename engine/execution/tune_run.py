"""The sweep's working phase: generator fits and Ray Tune trials at the same time.

All fits the remaining trials need start at once as Ray tasks (``engine.execution.fit_pool``,
bounded concurrency); Tune asks the ``ReadyTrials`` searcher for work and gets trials whose
synthetic table exists. Trial actors are reused (``reuse_actors``), so a worker keeps its imports,
loaded model and fold data across trials (``engine.trials.warm``). Each trial stores its own
record; the driver keeps the result tables and ``status.json`` current.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from ray import tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler

from engine.execution.fit_pool import FitPool
from engine.execution.tune_search import ReadyTrials, StudySearcher, resolve_job
from engine.plan.sweep_plan import FitJob, StudyJob, TrialJob
from engine.spec.search import SearchSpec
from engine.spec.tracking import TrackingSpec
from engine.storage.fsio import makedirs, shown
from engine.storage.progress import Progress
from engine.storage.store import ResultsBook, SweepStore, bounded
from engine.trials.warm import SharedJobs

WRITE_EVERY_S = 15.0  # result tables are rewritten at most this often while trials finish
WRITE_SHARE = 0.05  # ... and take at most this share of the driver's time
# Trials per Tune run. Tune keeps every trial of a run in the driver (its state, a JSON copy
# for the experiment checkpoint, the last result: ~30 KiB each, and its experiment checkpoint
# serialises them all), so a sweep of tens of thousands of trials runs as successive Tune
# runs (``run-<time>``, ``run-<time>-part2``, ...) over the same searcher and scheduler.
TUNE_PART = 5_000


def log(msg: str) -> None:
    print(f"[causalmix] {msg}", flush=True)


class SweepRun:
    """Fits, searcher, progress and result tables of one run of a sweep."""

    def __init__(self, store: SweepStore, book: ResultsBook, progress: Progress,
                 trials: list[TrialJob], fits: list[FitJob], ready_fits: set[str],
                 studies: list[Any] | None = None, search: SearchSpec | None = None,
                 tracking: TrackingSpec | None = None) -> None:
        self.store, self.book, self.progress = store, book, progress
        self.search = search or SearchSpec()
        self.tracking = tracking  # MLflow / W&B callbacks for every Tune run (part)
        self.studies = studies or []
        self.study_jobs: dict[str, StudyJob] = {st.job.name: st.job for st in self.studies}
        self.searcher: ReadyTrials = ReadyTrials(trials, ready_fits, self.fail_trial)
        if self.studies:
            self.searcher = StudySearcher(trials, self.studies, ready_fits, self.fail_trial,
                                          self.fail_study, self.search.max_concurrent,
                                          self.search.metric)
        self.pool: FitPool | None = None
        self.fits = fits
        self.last_write = 0.0
        self.write_cost = 0.0  # seconds the last table write took

    def start_fits(self, cpus: float, max_in_flight: int, extra: dict[str, float]) -> None:
        self.pool = FitPool(self.fits, cpus, max_in_flight, extra, self.fit_done)
        self.searcher.poll = self.poll
        self.poll()

    def poll(self) -> None:
        if self.pool is not None:
            self.pool.poll()
            counts = self.pool.counts()
            self.progress.fits.update(running=counts["running"])
        self.progress.save()

    def wait_for_fits(self) -> None:
        """Block until every queued fit has finished and been recorded."""
        while self.pool is not None and not self.pool.finished:
            self.pool.poll(timeout=1.0)

    def fit_done(self, job: FitJob, summary: dict[str, Any]) -> None:
        what = f"{job.generator} on {job.fold.dataset['name']} fold {job.fold.fold}"
        if summary.get("status") == "ok":
            self.progress.fits["done"] += 1
            log(f"  fitted {what} in {summary.get('seconds', 0):.1f}s | {self.progress.line()}")
            self.searcher.fit_done(job, None)
        else:
            self.progress.fits["failed"] += 1
            log(f"  FAILED fit {what}: {summary.get('error', '')}")
            self.searcher.fit_done(job, summary.get("error", "unknown error"))

    def fail_trial(self, job: TrialJob, error: str, counts: int = 1) -> None:
        """Record a trial that cannot run (its fit failed, or its worker crashed); it stands
        for ``counts`` trials in the progress (a study's whole budget)."""
        from engine.trials.trial import base_row, trial_record

        row = base_row(job)
        row.update(status="error", error=error, seconds=0.0)
        rec = trial_record(job, row, [])
        self.store.write_trial(job.trial_id, rec)
        self.book.add(job.trial_id, rec)
        self.progress.trials["failed"] += counts

    def fail_study(self, study: Any, error: str) -> None:
        """A study that cannot start (its fit failed): one error row, its budget failed."""
        self.fail_trial(replace(study.job.template, search=study.job.name), error, study.left)

    def stopped_early(self, trial_id: str) -> dict[str, Any]:
        """Finish the record of a trial the scheduler stopped: its provisional record (best
        evaluation so far, written by the trial before each report) becomes final."""
        rec = self.store.read_trial(trial_id)
        if rec is None or rec.get("result", {}).get("status") != "running":
            return self.book.refresh(trial_id)
        rec["result"].update(status="ok", stopped_early=True)
        self.store.write_trial(trial_id, rec)
        self.book.add(trial_id, rec)
        return rec["result"]

    def trial_finished(self, trial_id: str, stopped: bool = False) -> dict[str, Any]:
        row = self.stopped_early(trial_id) if stopped else self.book.refresh(trial_id)
        self.progress.trials["running"] -= 1
        self.progress.trials["done" if row.get("status") == "ok" else "failed"] += 1
        self.write_tables()
        return row

    def write_tables(self, force: bool = False) -> None:
        """Rewrite the result tables at most every ``WRITE_EVERY_S`` seconds, and never more
        often than ``WRITE_SHARE`` of the time: a write grows with the rows, so a fixed
        period would cost the driver time quadratic in the trials."""
        now = time.monotonic()
        if force or now - self.last_write > max(WRITE_EVERY_S, self.write_cost / WRITE_SHARE):
            self.book.write()
            if self.studies:
                self.studies[0].db.sync()  # the studies' file, where the store is not local
            self.last_write = time.monotonic()
            self.write_cost = self.last_write - now


class _Callback(tune.Callback):
    """Polls the fit pool every Tune step; one log line per finished trial."""

    def __init__(self, run: SweepRun, jobs: dict[str, TrialJob]) -> None:
        self.run, self.jobs = run, jobs

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        self.run.poll()

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.run.progress.trials["running"] += 1

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        tid = trial.config["trial_id"]
        stopped = not (trial.last_result or {}).get("final", False)
        release_metric_history(trial)
        row = self.run.trial_finished(tid, stopped)
        log(f"  {tid}: {_outcome(row)}{' (stopped early)' if stopped else ''} | "
            f"{self.run.progress.line()}")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        tid = trial.config["trial_id"]
        release_metric_history(trial)
        self.run.progress.trials["running"] -= 1
        job = resolve_job(trial.config, self.jobs, self.run.study_jobs)
        self.run.fail_trial(job, f"trial worker crashed: {_crash_reason(trial)}")
        log(f"  {tid}: worker crashed | {self.run.progress.line()}")


class LiveFIFO(FIFOScheduler):
    """Tune's FIFO scheduler without its scan of every trial ever created.

    ``FIFOScheduler.choose_trial_to_run`` walks all trials, finished ones included, on each
    controller step, so a sweep of n trials spends time quadratic in n there. The trials that
    can be chosen (pending or paused) are live, and Tune keeps the live ones in a set: the
    same choice (the earliest added) from that set costs the number of live trials."""

    def __init__(self) -> None:
        super().__init__()
        self.added: dict[Trial, int] = {}  # live trials -> the order they were added in
        self.count = 0

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        self.count += 1
        self.added[trial] = self.count

    def on_trial_error(self, tune_controller: Any, trial: Trial) -> None:
        self.added.pop(trial, None)  # a retried trial is added again

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict) -> None:
        self.added.pop(trial, None)

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        self.added.pop(trial, None)

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        live = tune_controller.get_live_trials()
        for status in (Trial.PENDING, Trial.PAUSED):
            found = [t for t in live if t.status == status]
            if found:
                return min(found, key=lambda t: self.added.get(t, 0))
        return None


def release_metric_history(trial: Any) -> None:
    """Drop the running statistics Tune keeps per reported metric of a finished trial.

    For every metric a trial ever reported Tune keeps min/max/avg/last-n figures and two
    deques in memory, and a JSON copy in its experiment state: ~150 KiB per trial of this
    engine (~50 metrics), 3 GB at 20,000 trials. The sweep never reads them (its results
    are the trial records; ``last_result`` stays), so a finished trial's are released."""
    meta = getattr(trial, "run_metadata", None)
    if meta is not None and hasattr(meta, "metric_analysis"):
        meta.metric_analysis = {}
        meta.metric_n_steps = {}


def _crash_reason(trial: Any) -> str:
    """The last line of Tune's error file for a crashed trial (its exception), if readable."""
    path = getattr(trial, "error_file", None)
    try:
        lines = [ln for ln in open(path).read().splitlines() if ln.strip()] if path else []
    except OSError:
        lines = []
    return lines[-1][:300] if lines else "no error message"


def _outcome(row: dict[str, Any]) -> str:
    if row.get("status") != "ok":
        return f"ERROR {row.get('error', '')}"
    return (f"test ROC-AUC {row.get('test_roc_auc', float('nan')):.4f} "
            f"(zero-shot {row.get('zero_shot_test_roc_auc', float('nan')):.4f}, "
            f"{row.get('normalized_improvement_pct', float('nan')):+.2f}%) "
            f"best step {row.get('best_step')}/{row.get('steps_run')}")


def run_tune(run: SweepRun, jobs: list[TrialJob], resources: dict[str, float],
             max_concurrent: int | None, verbose: int) -> bool:
    """Run ``jobs`` (and the studies' trials) as Tune trials, released by the searcher as
    their fits land, in Tune runs of at most ``TUNE_PART`` trials. False when Tune was
    stopped (Ctrl-C: Tune saves its state and returns with trials unfinished)."""
    by_id = {j.trial_id: j for j in jobs}
    stoppable = run.search.scheduler == "asha"
    trainable = tune.with_resources(tune.with_parameters(
        tune_trainable, jobs=SharedJobs(by_id), studies=run.study_jobs, stoppable=stoppable),
        resources)
    makedirs(run.store.tune_dir)
    left = len(jobs) + sum(max(0, st.left) for st in run.studies)
    scheduler, name, part = _scheduler(run), f"run-{time.strftime('%Y%m%d-%H%M%S')}", 1
    log(f"fine-tuning: {left} trials on Ray Tune (logs: {shown(run.store.tune_dir)})")
    if run.tracking is not None:
        log(f"tracking: each trial logged to {run.tracking.shown()}")
    while left > 0:
        n = min(TUNE_PART, left)
        grid = _tuner(run, trainable, scheduler, n, max_concurrent, verbose,
                      name if part == 1 else f"{name}-part{part}", by_id).fit()
        ended = grid.num_terminated + grid.num_errors
        if ended < len(grid) or (len(grid) < n and not run.searcher.said_finished):
            return False  # stopped: trials unfinished, or the searcher still had some to give
        if len(grid) < n:  # the searcher is done
            return True
        left, part = left - n, part + 1
    return True


def _tuner(run: SweepRun, trainable: Any, scheduler: LiveFIFO, samples: int,
           max_concurrent: int | None, verbose: int, name: str,
           by_id: dict[str, TrialJob]) -> tune.Tuner:
    storage_path, storage_fs = run.store.tune_storage()  # URIs: Tune writes through pyarrow
    callbacks: list[Any] = [_Callback(run, by_id)]
    if run.tracking is not None:
        from engine.execution.tracking import tracking_callbacks

        callbacks += tracking_callbacks(run.tracking, run.progress.sweep)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=run.searcher, scheduler=scheduler, num_samples=samples,
            reuse_actors=True,
            max_concurrent_trials=max_concurrent,
            trial_name_creator=_trial_name, trial_dirname_creator=_trial_name,
        ),
        run_config=tune.RunConfig(
            name=name, storage_path=storage_path, storage_filesystem=storage_fs,
            verbose=verbose, callbacks=callbacks,
            failure_config=tune.FailureConfig(max_failures=1),
        ),
    )


def _scheduler(run: SweepRun) -> LiveFIFO:
    s = run.search
    if s.scheduler != "asha":
        return LiveFIFO()
    max_t = max(st.job.template.finetune.steps for st in run.studies) if run.studies else 1
    steps = next((d for d in s.space if d.name == "steps"), None)
    max_t = int(steps.high) if steps is not None else max_t
    return PerStudyASHA(f"val_{s.metric}", "min" if s.direction == "minimize" else "max",
                        max(max_t, s.grace_period), s.grace_period, s.reduction_factor)


class PerStudyASHA(LiveFIFO):
    """Tune's ASHA with one instance per study, so that trials of different datasets never
    compete for a rung; trials outside a study (plain fine-tuning) always continue. Rungs
    are in fine-tuning steps and compare the validation metric each evaluation reports."""

    def __init__(self, metric: str, mode: str, max_t: int, grace_period: int,
                 reduction_factor: int) -> None:
        super().__init__()
        self.kwargs = {"time_attr": "step", "metric": metric, "mode": mode, "max_t": max_t,
                       "grace_period": min(grace_period, max_t),
                       "reduction_factor": reduction_factor, "stop_last_trials": False}
        self.by_study: dict[str, Any] = {}

    def _asha(self, trial: Trial) -> Any | None:
        from ray.tune.schedulers import ASHAScheduler

        study = trial.config.get("study")
        if study is None:
            return None
        if study not in self.by_study:
            self.by_study[study] = ASHAScheduler(**self.kwargs)
        return self.by_study[study]

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        super().on_trial_add(tune_controller, trial)
        asha = self._asha(trial)
        if asha is not None:
            asha.on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
        asha = self._asha(trial)
        if asha is None or result.get("final"):
            return self.CONTINUE
        return asha.on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict) -> None:
        super().on_trial_complete(tune_controller, trial, result)
        asha = self._asha(trial)
        if asha is not None and trial.trial_id in asha._trial_info:
            asha.on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        super().on_trial_remove(tune_controller, trial)
        asha = self._asha(trial)
        if asha is not None:
            asha._trial_info.pop(trial.trial_id, None)

    def on_trial_error(self, tune_controller: Any, trial: Trial) -> None:
        super().on_trial_error(tune_controller, trial)
        asha = self._asha(trial)
        if asha is not None:
            asha._trial_info.pop(trial.trial_id, None)


def _trial_name(trial: Any) -> str:
    """Tune's trial name and folder: the trial id, bounded (unique past 120 characters)."""
    return bounded(str(trial.config["trial_id"]).replace("/", "_"), 120)


def tune_trainable(config: dict[str, Any], jobs: SharedJobs,
                   studies: dict[str, StudyJob], stoppable: bool = False) -> None:
    """Tune function trainable: run one trial, store its result, report every evaluation.

    When a scheduler may stop trials (``stoppable``), the trial stores a provisional record
    before each report; a stopped trial ends inside ``tune.report`` and keeps it."""
    from engine.trials.trial import run_trial

    job = resolve_job(config, jobs.get(), studies)
    store = SweepStore(job.sweep_dir)
    write = (lambda rec: store.write_trial(job.trial_id, rec)) if stoppable else None
    rec = run_trial(job, logger=TuneReportLogger(), provisional=write)
    store.write_trial(job.trial_id, rec)
    row = rec["result"]
    final = {k: v for k, v in row.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    final.update(final=True, ok=row["status"] == "ok", step=row.get("steps_run", 0))
    tune.report(final)


class TuneReportLogger:
    """Forwards each fine-tuning evaluation to ``ray.tune.report`` (one hook, as in the logger
    protocol of ``engine.trials.finetune``)."""

    def on_evaluation(self, evaluation: Any, is_best: bool) -> None:
        metrics = {"step": evaluation.step, "is_best": float(is_best), "final": False, "ok": True}
        if evaluation.train_loss == evaluation.train_loss:
            metrics["train_loss"] = evaluation.train_loss
        metrics.update({f"val_{k}": v for k, v in evaluation.val.items()})
        metrics.update({f"eval_test_{k}": v for k, v in evaluation.test.items()})
        tune.report(metrics)
