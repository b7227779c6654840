"""Sweep plan: the generator fits and trials a spec asks for, with their storage paths."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.methods import METHODS
from engine.spec import SweepSpec
from engine.store import synthetic_dir, trial_id


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


@dataclass(frozen=True)
class FitJob:
    """One generator fit on one dataset-fold; its synthetic table serves all trials needing it."""

    generator: str
    options: dict[str, Any]
    fold: FoldRef
    n_samples: int
    out_dir: str

    @property
    def key(self) -> str:
        return self.out_dir


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
    finetune: dict[str, Any]
    preprocessing: dict[str, Any]
    trial_cpus: float = 1.0
    trial_gpus: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> TrialJob:
        d = dict(d)
        d["fold"] = FoldRef(**d["fold"])
        return TrialJob(**d)


@dataclass
class SweepPlan:
    fits: list[FitJob]
    trials: list[TrialJob]


def make_plan(spec: SweepSpec) -> SweepPlan:
    """Expand a spec into generator fits and trials (datasets x folds x methods x grid)."""
    sweep_dir = spec.sweep_dir
    fits: dict[str, FitJob] = {}
    trials: list[TrialJob] = []
    for ds in spec.datasets:
        for fold in spec.folds:
            fref = FoldRef(ds.as_dict(), fold, spec.outer_folds, spec.n_train, spec.val_fraction,
                           spec.max_test_rows, spec.seed, spec.split, spec.data_dir)
            for mref in spec.methods:
                method = METHODS[mref.name]
                points = method.grid(spec.synthetic_scales, spec.mix_ratios)
                syn_dir = ""
                if method.generator is not None:
                    syn_dir = str(synthetic_dir(sweep_dir, method.generator, mref.options,
                                                ds.name, fold))
                    need = max(_n_synthetic(spec, s) for s, _ in points)
                    prev = fits.get(syn_dir)
                    if prev is None or prev.n_samples < need:
                        fits[syn_dir] = FitJob(method.generator, dict(mref.options), fref, need,
                                               syn_dir)
                for scale, mix in points:
                    trials.append(TrialJob(
                        trial_id=trial_id(mref.name, ds.name, fold, scale, mix, spec.seed),
                        sweep=spec.name, sweep_dir=str(sweep_dir), method=mref.name,
                        generator=method.generator or "", synthetic_dir=syn_dir,
                        synthetic_scale=scale, mix_ratio=mix,
                        n_synthetic=_n_synthetic(spec, scale), fold=fref, model=dict(spec.model),
                        finetune=asdict(spec.finetune), preprocessing=asdict(spec.preprocessing),
                        trial_cpus=spec.resources.trial_cpus, trial_gpus=spec.resources.trial_gpus,
                    ))
    return SweepPlan(fits=list(fits.values()), trials=trials)


def _n_synthetic(spec: SweepSpec, scale: float) -> int:
    return int(round(scale * spec.n_train))


def trial_result_path(job: TrialJob) -> Path:
    return Path(job.sweep_dir) / "trials" / job.trial_id / "result.json"
