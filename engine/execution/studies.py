"""The Optuna studies of a search sweep: one per (dataset, fold, method), never mixing datasets.

Studies live in SQLite in the sweep folder (``<sweep>/search/optuna.db``; ``optuna-dashboard
sqlite:///<sweep>/search/optuna.db`` opens them). Each is asked for points through Optuna's
ask-and-tell interface, told the validation score of each trial (test rows never steer the
search), and resumed from the same database: a trial left running by a killed sweep is told
from its stored record when that record is final, else asked again at the same point.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.folds.splits import derive_seed
from engine.plan.sweep_plan import StudyJob, TrialJob, search_trial_id, with_point
from engine.spec.search import SearchSpec
from engine.storage import fsio
from engine.storage.store import SweepStore

SUPERSEDED = "superseded"  # study attribute: numbers of trials asked again at the same point
SLOT = "slot"  # trial attribute: the budget slot (0..budget-1) that names the trial's record


class SearchDB:
    """The sweep's SQLite file of studies. SQLite needs a local file: on a store that is not
    local (``s3://`` ...) the driver works on a local copy, fetched at start and uploaded by
    ``sync`` (with the result tables, and when the sweep ends)."""

    def __init__(self, store: SweepStore) -> None:
        import hashlib

        self.remote = store.search_db if fsio.is_uri(store.search_db) else None
        if self.remote is None:
            self.local = Path(store.search_db)
        else:
            tag = hashlib.sha256(str(self.remote).encode()).hexdigest()[:16]
            self.local = Path(tempfile.gettempdir()) / "causalmix-search" / tag / "optuna.db"
        self.local.parent.mkdir(parents=True, exist_ok=True)
        if self.remote is not None:
            self.local.unlink(missing_ok=True)
            if fsio.exists(self.remote):
                self.local.write_bytes(fsio.read_bytes(self.remote))

    @property
    def url(self) -> str:
        return f"sqlite:///{self.local}"

    def sync(self) -> None:
        if self.remote is not None and self.local.is_file():
            fsio.atomic_write_bytes(self.remote, self.local.read_bytes())


def make_sampler(search: SearchSpec, study: str) -> Any:
    """A seeded sampler per study (its seed from the search seed and the study's name)."""
    import optuna

    seed = derive_seed("search", search.seed, study)
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # Few startup trials: budgets here are tens of trials, and TPE with the default 10
    # random startup trials would be a random search for most of them.
    startup = min(10, max(2, search.budget // 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # multivariate TPE is flagged experimental
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup,
                                          multivariate=True)


@dataclass
class StudyState:
    """One study while the sweep runs: its Optuna study, trials out and budget slots taken.

    Every counted trial holds a budget slot (user attribute ``slot``), which names its record;
    a trial asked again after an interruption is enqueued with its old slot."""

    job: StudyJob
    study: Any  # optuna.Study
    db: SearchDB
    taken: set[int] = field(default_factory=set)  # slots of counted trials
    running: int = 0
    live: dict[int, Any] = field(default_factory=dict)  # number -> optuna.Trial

    @property
    def left(self) -> int:
        return self.job.budget - len(self.taken)

    def distributions(self) -> dict[str, Any]:
        return {d.name: d.distribution() for d in self.job.dims}

    def ask(self) -> tuple[TrialJob, int]:
        """A new trial at the sampler's point (or an enqueued retry): its job and slot."""
        trial = self.study.ask(self.distributions())
        slot = trial.user_attrs.get(SLOT)
        if slot is None or slot in self.taken:
            slot = min(set(range(self.job.budget)) - self.taken)
            trial.set_user_attr(SLOT, slot)
        self.taken.add(slot)
        self.running += 1
        self.live[trial.number] = trial
        return with_point(self.job, slot, dict(trial.params), trial.number), slot

    def report(self, number: int, value: float, step: int) -> None:
        trial = self.live.get(number)
        if trial is not None and math.isfinite(value) and step > 0:
            trial.report(value, step)

    def tell(self, number: int, state: str, value: float | None = None) -> None:
        """Tell a finished trial: 'complete' (with its validation value), 'pruned', 'fail'."""
        import optuna

        self.running -= 1
        self.live.pop(number, None)
        states = {"complete": optuna.trial.TrialState.COMPLETE,
                  "pruned": optuna.trial.TrialState.PRUNED,
                  "fail": optuna.trial.TrialState.FAIL}
        if state == "complete" and (value is None or not math.isfinite(value)):
            state = "fail"
        self.study.tell(number, value if state == "complete" else None, state=states[state])


def open_studies(store: SweepStore, search: SearchSpec, jobs: list[StudyJob],
                 ) -> list[StudyState]:
    """Create or load every study; settle trials a killed run left behind (see module doc)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    db = SearchDB(store)
    storage = optuna.storages.RDBStorage(db.url)
    states = []
    for job in jobs:
        study = optuna.create_study(study_name=job.name, storage=storage,
                                    sampler=make_sampler(search, job.name),
                                    direction=search.direction, load_if_exists=True)
        state = StudyState(job, study, db)
        _settle(store, search, state)
        states.append(state)
    db.sync()
    return states


def counted_trials(study: Any) -> list[Any]:
    """Trials holding a budget slot: asked (not merely enqueued) and not superseded."""
    import optuna

    superseded = set(study.user_attrs.get(SUPERSEDED, []))
    return [t for t in study.get_trials(deepcopy=False)
            if t.number not in superseded and t.state != optuna.trial.TrialState.WAITING
            and SLOT in t.user_attrs]


def _settle(store: SweepStore, search: SearchSpec, state: StudyState) -> None:
    """Take the slots of earlier runs' trials; tell trials a killed run left running from
    their final records, and ask again (same point, same slot) those without one or failed."""
    import optuna

    S = optuna.trial.TrialState
    study = state.study
    redo = []
    for t in counted_trials(study):
        slot = t.user_attrs[SLOT]
        if t.state in (S.COMPLETE, S.PRUNED):
            state.taken.add(slot)
            continue
        job = with_point(state.job, slot, dict(t.params), t.number)
        rec = store.read_trial(job.trial_id) or {}
        row = rec.get("result", {})
        if t.state == S.RUNNING and rec.get("key") == job.key and row.get("status") == "ok":
            stopped = bool(row.get("stopped_early"))
            study.tell(t.number, None if stopped else row.get(f"val_{search.metric}"),
                       state=S.PRUNED if stopped else S.COMPLETE)
            state.taken.add(slot)
            continue
        if t.state == S.RUNNING:  # interrupted: no final record
            study.tell(t.number, state=S.FAIL)
        redo.append(t)
    if not redo:
        return
    superseded = set(study.user_attrs.get(SUPERSEDED, []))
    for t in redo:  # failed trials are retried too, as in a grid
        superseded.add(t.number)
        study.enqueue_trial(dict(t.params), user_attrs={SLOT: t.user_attrs[SLOT]},
                            skip_if_exists=False)
    study.set_user_attr(SUPERSEDED, sorted(superseded))


def study_trial_ids(state: StudyState) -> list[str]:
    """The trial ids of a study's slots taken so far, in slot order."""
    return [search_trial_id(state.job.name, slot, state.job.template.fold.seed)
            for slot in sorted(state.taken)]
