"""Sweep plan: the generator fits and trials a spec asks for, typed, keyed and placed on disk."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from engine.spec.cache_keys import (
    digest,
    fit_inputs,
    fold_inputs,
    model_identity,
    model_inputs,
    trial_inputs,
)
from engine.spec.finetune_config import FinetuneConfig
from engine.spec.methods import METHODS, Method
from engine.spec.search import Dimension
from engine.spec.shift_spec import ShiftSpec
from engine.spec.sweep_file import PreprocessingSpec, SweepSpec
from engine.storage.store import SweepStore, fold_label, slug, trial_id

STUDY_TEMPLATE = "/search"  # trial-id suffix of a study's template (never run itself)


@dataclass(frozen=True)
class FoldRef:
    """Everything needed to rebuild one dataset-fold's rows on any worker."""

    dataset: dict[str, Any]  # DatasetRef.as_dict()
    fold: int
    outer_folds: int
    n_train: int
    val_fraction: float
    max_test_rows: int
    seed: int
    split: str = "kfold"
    data_dir: str | None = None
    minority_share: float | None = None  # imbalance of the n_train rows (None: stratified)
    shift: ShiftSpec | None = None  # the dataset's out-of-domain test pool (None: no shift)


@dataclass(frozen=True)
class MemberRef:
    """A member of a ``mixed`` fit: the generator, its options and where its fitted model is
    kept (shared with the sweep's own fit of the same generator, options and dataset-fold)."""

    generator: str
    options: dict[str, Any]
    fitted_path: str


@dataclass(frozen=True)
class FitJob:
    """One generator fit on one dataset-fold; its synthetic table serves all trials needing it.

    ``key`` digests everything the table depends on (see ``engine.spec.cache_keys``). A fit that a
    ``mixed`` fit reuses pickles its fitted generator at ``fitted_path``; a ``mixed`` fit lists
    its ``members`` and runs ``after`` the planned fits of those members."""

    generator: str
    options: dict[str, Any]
    fold: FoldRef
    n_samples: int
    out_dir: str
    key: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    fitted_path: str = ""
    members: tuple[MemberRef, ...] = ()
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrialJob:
    """One fine-tuning trial (a grid point of one method on one dataset-fold)."""

    trial_id: str
    sweep: str
    sweep_dir: str
    method: str
    generator: str
    synthetic_dir: str  # '' for the real-only method
    synthetic_scale: float
    mix_ratio: float
    n_synthetic: int
    fold: FoldRef
    model: dict[str, Any]
    finetune: FinetuneConfig
    preprocessing: PreprocessingSpec
    trial_cpus: float = 1.0
    trial_gpus: float = 0.0
    fit_key: str = ""
    key: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    search: str = ""  # the study of a search trial ('' in a grid)
    search_number: int = -1  # the trial's number in that study


@dataclass(frozen=True)
class StudyJob:
    """An Optuna study of one (dataset, fold, method): ``budget`` trials, each the ``template``
    with the searched ``dims`` set to the point the sampler proposes (``with_point``)."""

    name: str  # method/dataset/fold<k>, also the study's name in the Optuna storage
    template: TrialJob
    dims: tuple[Dimension, ...]
    budget: int


@dataclass
class SweepPlan:
    fits: list[FitJob]
    trials: list[TrialJob]
    studies: list[StudyJob] = field(default_factory=list)

    @property
    def planned_trials(self) -> int:
        """Fixed trials plus every study's budget."""
        return len(self.trials) + sum(s.budget for s in self.studies)

    @property
    def largest_fit(self) -> int:
        """Rows of the largest synthetic table the plan draws (0 without generators)."""
        return max((f.n_samples for f in self.fits), default=0)


def make_plan(spec: SweepSpec) -> SweepPlan:
    """Expand a spec into keyed generator fits and trials (datasets x folds x methods x grid)."""
    sweep_dir = spec.sweep_dir  # resolves the storage path: once, not per trial
    store = SweepStore(sweep_dir)
    fits: dict[tuple, FitJob] = {}
    pending: list[tuple[TrialJob, tuple]] = []
    templates: list[tuple[TrialJob, tuple]] = []
    for ds in spec.datasets:
        for fold, share in [(f, s) for f in spec.folds for s in spec.minority_shares or (None,)]:
            fref = FoldRef(ds.as_dict(), fold, spec.outer_folds, spec.n_train, spec.val_fraction,
                           spec.max_test_rows, spec.seed, spec.split, spec.data_dir, share,
                           ds.shift)
            for trial, slot in _fold_trials(spec, fref, fits, str(sweep_dir)):
                is_template = trial.trial_id.endswith(STUDY_TEMPLATE)
                (templates if is_template else pending).append((trial, slot))
    keyed = _link_members(store, {slot: _keyed_fit(store, job) for slot, job in fits.items()})
    fold_cache: dict[tuple, dict[str, Any]] = {}
    model = model_identity(spec.model)
    trials = []
    for trial, slot in pending:
        ref = trial.fold
        fkey = (ref.dataset["name"], ref.fold, ref.minority_share)
        if fkey not in fold_cache:
            fold_cache[fkey] = fold_inputs(ref)
        trials.append(_keyed_trial(trial, keyed.get(slot), fold_cache[fkey], model))
    studies = []
    for trial, slot in templates:
        ref = trial.fold
        template = _keyed_trial(trial, keyed.get(slot), fold_inputs(ref), model)
        base = next(m.name for m in spec.methods if m.shown == trial.method)
        dims = spec.search.dims_for(bool(trial.generator), METHODS[base].synthetic_only)
        studies.append(StudyJob(trial.trial_id.removesuffix(STUDY_TEMPLATE), template, dims,
                                spec.search.budget))
    return SweepPlan(fits=list(keyed.values()), trials=trials, studies=studies)


def _fold_trials(spec: SweepSpec, fref: FoldRef, fits: dict[tuple, FitJob], sweep_dir: str,
                 ) -> list[tuple[TrialJob, tuple]]:
    """The trials of one dataset-fold with the slot of the fit each reads (``()``: none);
    registers the (not yet keyed) fits in ``fits``, sized for the largest scale."""
    out = []
    for mref in spec.methods:
        method = METHODS[mref.name]
        points = _points(spec, method)
        slot: tuple = ()
        if method.generator is not None:
            slot = (method.generator, _canonical(mref.options), fref.dataset["name"], fref.fold,
                    fref.minority_share)
            need = max(n_synthetic(spec, s) for s, _ in points)
            prev = fits.get(slot)
            if prev is None or prev.n_samples < need:
                fits[slot] = FitJob(method.generator, dict(mref.options), fref, need, "")
        for scale, mix in points:
            out.append((TrialJob(
                trial_id=_point_id(spec, method, mref.shown, fref, scale, mix),
                sweep=spec.name, sweep_dir=sweep_dir, method=mref.shown,
                generator=method.generator or "", synthetic_dir="",
                synthetic_scale=scale, mix_ratio=mix, n_synthetic=n_synthetic(spec, scale),
                fold=fref, model=dict(spec.model), finetune=spec.finetune,
                preprocessing=spec.preprocessing, trial_cpus=spec.resources.trial_cpus,
                trial_gpus=spec.resources.trial_gpus,
            ), slot))
    return out


def _points(spec: SweepSpec, method: Method) -> list[tuple[float, float]]:
    """The (scale, mix) points of a method: its grid, or in search mode the one template
    point (the largest scale the space allows, so the fit covers every proposal)."""
    points = method.grid(spec.synthetic_scales, spec.mix_ratios)
    if not spec.search.is_search or method.generator is None:
        return points
    scale = spec.search.high("synthetic_scale") or points[0][0]
    return [(scale, points[0][1])]


def _point_id(spec: SweepSpec, method: Method, shown: str, fref: FoldRef, scale: float,
              mix: float) -> str:
    """The trial id, under the method's ``shown`` name (its label, else its name)."""
    searched = spec.search.dims_for(method.generator is not None, method.synthetic_only)
    if searched:  # a study's template: '<method>/<dataset>/fold<k>/search'
        return (f"{shown}/{slug(fref.dataset['name'])}/"
                f"{fold_label(fref.fold, fref.minority_share)}{STUDY_TEMPLATE}")
    return trial_id(shown, fref.dataset["name"], fref.fold, scale, mix, spec.seed,
                    fref.minority_share)


def with_point(study: StudyJob, slot: int, params: dict[str, Any], number: int = -1,
               ) -> TrialJob:
    """The trial in budget ``slot`` of a study (Optuna trial ``number``): its template at the
    proposed point, keyed anew. Pure, so the driver (resume checks) and the trial worker
    derive the same job; a trial asked again after an interruption keeps its slot, so its
    id, record and seed stay the same."""
    t = study.template
    scale = float(params.get("synthetic_scale", t.synthetic_scale))
    mix = float(params.get("mix_ratio", t.mix_ratio))
    tuned = {k: params[k] for k in ("lr", "steps") if k in params}
    if "steps" in tuned:
        tuned["steps"] = int(tuned["steps"])
    job = replace(t, trial_id=search_trial_id(study.name, slot, t.fold.seed),
                  search=study.name, search_number=number, synthetic_scale=scale,
                  mix_ratio=mix,
                  n_synthetic=int(round(scale * t.fold.n_train)) if t.generator else 0,
                  finetune=replace(t.finetune, **tuned))
    inputs = trial_inputs(job, t.inputs["fold"], t.fit_key, t.inputs["model"])
    return replace(job, key=digest(inputs), inputs=inputs)


def search_trial_id(study: str, slot: int, seed: int) -> str:
    return f"{study}/search{slot:03d}_seed{seed}"


def _keyed_fit(store: SweepStore, job: FitJob) -> FitJob:
    inputs = fit_inputs(job.generator, job.options, job.fold, job.n_samples)
    key = digest(inputs)
    out_dir = store.fit_dir(job.generator, job.fold.dataset["name"], job.fold.fold, key)
    return replace(job, key=key, inputs=inputs, out_dir=str(out_dir))


def _link_members(store: SweepStore, fits: dict[tuple, FitJob]) -> dict[tuple, FitJob]:
    """Point every ``mixed`` fit at its members' fitted models, and make the planned fits of
    those members keep theirs (so ``mixed`` samples from them instead of refitting)."""
    from engine.generators import make_generator

    for slot, job in list(fits.items()):
        if job.generator != "mixed":
            continue
        members, after = [], []
        for name, options in make_generator("mixed", **job.options).member_specs():
            key = digest(model_inputs(name, options, job.fold))
            path = str(store.fitted_path(name, job.fold.dataset["name"], job.fold.fold, key))
            members.append(MemberRef(name, options, path))
            twin = (name, _canonical(options), job.fold.dataset["name"], job.fold.fold,
                    job.fold.minority_share)
            if twin in fits:
                fits[twin] = replace(fits[twin], fitted_path=path)
                after.append(fits[twin].out_dir)
        fits[slot] = replace(job, members=tuple(members), after=tuple(after))
    return fits


def _keyed_trial(trial: TrialJob, fit: FitJob | None, fold: dict[str, Any],
                 model: dict[str, Any]) -> TrialJob:
    fit_key = fit.key if fit else ""
    inputs = trial_inputs(trial, fold, fit_key, model)
    return replace(trial, synthetic_dir=fit.out_dir if fit else "", fit_key=fit_key,
                   key=digest(inputs), inputs=inputs)


def _canonical(options: dict[str, Any]) -> str:
    return json.dumps(options, sort_keys=True, default=str)


def n_synthetic(spec: SweepSpec, scale: float) -> int:
    return int(round(scale * spec.n_train))

