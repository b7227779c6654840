"""A Tune searcher that hands out the sweep's trials as soon as they can run.

Trials that need no synthetic table (``finetune``) and trials whose fit is already stored are
ready at once; the others are released when their fit lands, so fits and trials run at the same
time. A trial whose fit failed is never started: its error row is written instead. The config a
trial gets holds its real hyperparameters, so the Tune dashboard, TensorBoard HParams and the
``ResultGrid`` show them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from ray.tune.search import Searcher

from engine.plan.sweep_plan import FitJob, StudyJob, TrialJob, with_point


def trial_config(job: TrialJob) -> dict[str, Any]:
    """The hyperparameters of one trial, flat (as Tune and TensorBoard HParams show them)."""
    return {
        "trial_id": job.trial_id, "dataset": job.fold.dataset["name"], "fold": job.fold.fold,
        "method": job.method, "generator": job.generator or "none",
        "synthetic_scale": job.synthetic_scale, "mix_ratio": job.mix_ratio,
        "n_train": job.fold.n_train, "seed": job.fold.seed, "model": job.model["name"],
        **asdict(job.finetune),
    }


class ReadyTrials(Searcher):
    """Suggests trials in plan order among those whose synthetic table exists."""

    def __init__(self, jobs: list[TrialJob], ready_fits: set[str],
                 on_fit_failed: Callable[[TrialJob, str], None]) -> None:
        super().__init__()
        self.poll: Callable[[], None] = lambda: None  # collects finished fits (set by the run)
        self.ready: deque[TrialJob] = deque()
        self.waiting: dict[str, list[TrialJob]] = {}
        self.on_fit_failed = on_fit_failed
        self.said_finished = False
        for job in jobs:
            if not job.generator or job.synthetic_dir in ready_fits:
                self.ready.append(job)
            else:
                self.waiting.setdefault(job.synthetic_dir, []).append(job)

    def fit_done(self, fit: FitJob, error: str | None) -> None:
        """Release the trials of a finished fit, or fail them with the fit's error."""
        jobs = self.waiting.pop(fit.out_dir, [])
        if error is None:
            self.ready.extend(jobs)
            return
        for job in jobs:
            self.on_fit_failed(job, f"generator fit failed: {error}")

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        out = self._suggest(trial_id)
        self.said_finished = out == Searcher.FINISHED  # else a Tune run that ends was stopped
        return out

    def _suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        # Tune blocks in this call (retrying each second) while no trial runs, so fits that
        # land meanwhile must be collected here, not only by the step callback.
        self.poll()
        if self.ready:
            return trial_config(self.ready.popleft())
        return None if self.waiting else Searcher.FINISHED

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        """Nothing to learn: the grid is fixed."""

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: resuming is by the sweep's own keyed records, not Tune's state."""

    def restore(self, checkpoint_path: str) -> None:
        """See ``save``."""


def resolve_job(config: dict[str, Any], jobs: dict[str, TrialJob],
                studies: dict[str, StudyJob]) -> TrialJob:
    """The job of a Tune trial: a planned one, or a search trial rebuilt from its study's
    template and the point in its config (``with_point`` is pure, so the same job)."""
    if "study" not in config:
        return jobs[config["trial_id"]]
    study = studies[config["study"]]
    params = {d.name: config[d.name] for d in study.dims}
    return with_point(study, int(config["slot"]), params, int(config["number"]))


class StudySearcher(ReadyTrials):
    """Planned trials first (as ``ReadyTrials``), then points from the sweep's Optuna
    studies: a study asks only once its synthetic table exists, keeps at most
    ``max_concurrent`` trials out and stops at its budget.

    Tune's ``OptunaSearch`` drives one study per Tuner; a sweep searches one study per
    (dataset, fold, method) in one Tune run, so this searcher routes between studies
    (``engine.execution.studies``) through Optuna's own ask-and-tell interface."""

    def __init__(self, jobs: list[TrialJob], studies: list[Any], ready_fits: set[str],
                 on_fit_failed: Callable[[TrialJob, str], None],
                 on_study_failed: Callable[[Any, str], None], max_concurrent: int,
                 metric: str) -> None:
        super().__init__(jobs, ready_fits, on_fit_failed)
        self.open: list[Any] = []
        self.blocked: dict[str, list[Any]] = {}  # fit out_dir -> studies waiting for it
        for st in studies:
            fit = st.job.template.synthetic_dir
            if st.left <= 0:
                continue
            if not st.job.template.generator or fit in ready_fits:
                self.open.append(st)
            else:
                self.blocked.setdefault(fit, []).append(st)
        self.on_study_failed = on_study_failed
        self.max_concurrent, self.objective = max_concurrent, metric
        self.out: dict[str, tuple[Any, int]] = {}  # Tune trial id -> (study, number)
        self.turn = 0

    def fit_done(self, fit: FitJob, error: str | None) -> None:
        super().fit_done(fit, error)
        for st in self.blocked.pop(fit.out_dir, []):
            if error is None:
                self.open.append(st)
            else:
                self.on_study_failed(st, f"generator fit failed: {error}")

    def _suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        planned = super()._suggest(trial_id)
        if planned is not None and planned != Searcher.FINISHED:
            return planned
        st = self._next_study()
        if st is not None:
            job, slot = st.ask()
            self.out[trial_id] = (st, job.search_number)
            return {**trial_config(job), "study": st.job.name, "slot": slot,
                    "number": job.search_number}
        if planned is None or self.blocked or any(s.left > 0 for s in self.open):
            return None
        return Searcher.FINISHED

    def _next_study(self) -> Any | None:
        """The next study (round robin) with budget left and room for one more trial."""
        n = len(self.open)
        for i in range(n):
            st = self.open[(self.turn + i) % n]
            if st.left > 0 and st.running < self.max_concurrent:
                self.turn = (self.turn + i + 1) % n
                return st
        return None

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Intermediate validation scores, for pruning-aware sampling and the dashboard."""
        if trial_id in self.out and not result.get("final"):
            st, number = self.out[trial_id]
            value = result.get(f"val_{self.objective}")
            if isinstance(value, int | float):
                st.report(number, float(value), int(result.get("step", 0)))

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        """Tell the study: the validation score at the selected step, or pruned (stopped by
        the scheduler), or failed."""
        if trial_id not in self.out:
            return
        st, number = self.out.pop(trial_id)
        if error or not result:
            st.tell(number, "fail")
        elif not result.get("final"):
            st.tell(number, "pruned")
        elif result.get("ok"):
            st.tell(number, "complete", result.get(f"val_{self.objective}"))
        else:
            st.tell(number, "fail")
