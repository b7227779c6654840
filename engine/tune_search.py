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

from engine.plan import FitJob, TrialJob


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
