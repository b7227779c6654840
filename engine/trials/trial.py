"""One trial: zero-shot score, episodic fine-tuning on real and/or synthetic rows, final scores."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.core.errors import CausalMixError
from engine.data.preprocess import TablePreprocessor
from engine.fits.generator_fits import load_synthetic, one_line
from engine.folds.fold_data import load_fold
from engine.folds.splits import derive_seed
from engine.plan.sweep_plan import TrialJob
from engine.storage.results_schema import METRICS, normalized_improvement
from engine.storage.store import SweepStore
from engine.trials.finetune import (
    EpisodeSampler,
    EvalSplit,
    Evaluation,
    FinetuneLogger,
    FinetuneResult,
    finetune,
)
from engine.trials.metrics import minority_class
from engine.trials.warm import baseline_key, shared_baseline, warm_model

ProvisionalWriter = Callable[[dict[str, Any]], None]


def run_trial(job: TrialJob, logger: FinetuneLogger | None = None,
              provisional: ProvisionalWriter | None = None) -> dict[str, Any]:
    """Run one trial; never raises for bad data: failures become a row with status 'error'.

    With ``provisional``, a record of the best evaluation so far (status 'running') is handed
    to it before each evaluation reaches ``logger``: a trial that a scheduler stops there
    keeps that record (see ``engine.execution.tune_run``)."""
    t0 = time.perf_counter()
    row = base_row(job)
    row.update(started_at=time.time(), worker=f"{socket.gethostname()}:{os.getpid()}")
    evaluations: list[dict[str, Any]] = []
    try:
        row_update, evaluations = _run(job, logger, provisional, row)
        row.update(row_update)
        row.update(status="ok", error="")
    except Exception as exc:  # noqa: BLE001 - stored as one readable line
        row.update(status="error", error=one_line(exc))
    row["seconds"] = time.perf_counter() - t0
    row["finished_at"] = time.time()
    return trial_record(job, row, evaluations)


def trial_record(job: TrialJob, row: dict[str, Any], evaluations: list[dict[str, Any]],
                 ) -> dict[str, Any]:
    """What is stored per trial: its key and inputs (for reuse checks), row and evaluations."""
    return {"key": job.key, "inputs": job.inputs, "result": row, "evaluations": evaluations}


def trial_device(job: TrialJob) -> str:
    """'cuda' when the trial asked for a GPU (one-line error if this node has none), else
    'cpu': a GPU trial never silently falls back to the CPU."""
    import torch

    if job.trial_gpus <= 0:
        return "cpu"
    if not torch.cuda.is_available():
        raise CausalMixError(f"the trial asked for a GPU (resources.trial_gpus="
                             f"{job.trial_gpus:g}) but CUDA is not available on "
                             f"{socket.gethostname()}")
    return "cuda"


@dataclass
class TrialData:
    """One trial's model-side arrays: real training rows (the context), validation and test
    splits scored with that context, and the synthetic rows (if any)."""

    X_train: np.ndarray
    y_train: np.ndarray
    val: EvalSplit
    test: EvalSplit
    synthetic: tuple[np.ndarray, np.ndarray] | None
    n_classes: int
    categorical: np.ndarray  # per feature column: holds category codes
    classes: np.ndarray | None = None  # the dataset's labels (codes index them)
    ood: EvalSplit | None = None  # out-of-domain test rows of a shifted fold
    shift: str = ""  # the shift, described (results' ``shift``), and its held-out domain
    ood_domain: str = ""

    @property
    def minority(self) -> int:
        """Code of the training rows' least frequent class (f1_minority, pr_auc)."""
        return minority_class(self.y_train)

    def minority_row(self) -> dict[str, Any]:
        """``minority_class`` (its label) and ``n_minority_train`` (its rows among the
        training and validation rows)."""
        code = self.minority
        label = self.classes[code] if self.classes is not None else code
        return {"minority_class": str(label),
                "n_minority_train": int((self.y_train == code).sum() + (self.val.y == code).sum())}


def prepare_data(job: TrialJob) -> TrialData:
    """Fold rows through preprocessing fitted on training rows only; synthetic rows too."""
    fold = load_fold(job.fold)
    X_tr, y_tr = fold.rows("train")
    X_va, y_va = fold.rows("val")
    X_te, y_te = fold.rows("test")
    ytr, yva, yte = fold.codes(y_tr), fold.codes(y_va), fold.codes(y_te)
    prep = TablePreprocessor(max_features=job.preprocessing.max_features)
    Ztr = prep.fit_transform(X_tr, ytr)
    synthetic = None
    if job.generator:
        X_syn, y_syn = load_synthetic(job.synthetic_dir, job.n_synthetic)
        synthetic = (prep.transform(X_syn), fold.codes(y_syn))
    data = TrialData(Ztr, ytr, EvalSplit(Ztr, ytr, prep.transform(X_va), yva),
                     EvalSplit(Ztr, ytr, prep.transform(X_te), yte), synthetic, fold.n_classes,
                     prep.categorical_, fold.classes)
    if fold.shift is not None:
        X_ood, y_ood = fold.rows("ood_test")
        data.ood = EvalSplit(Ztr, ytr, prep.transform(X_ood), fold.codes(y_ood))
        data.shift = job.fold.shift.describe()
        data.ood_domain = ",".join(fold.shift.ood_values)
    return data


def _run(job: TrialJob, logger: FinetuneLogger | None, provisional: ProvisionalWriter | None,
         row: dict[str, Any]) -> tuple[dict, list[dict]]:
    import torch

    torch.set_num_threads(max(1, int(job.trial_cpus)))
    device = trial_device(job)
    data = prepare_data(job)
    model = warm_model(job.model, device)
    model.set_categorical(data.categorical)
    Ztr, ytr = data.X_train, data.y_train
    model.check_table(len(Ztr), Ztr.shape[1], data.n_classes)

    t_score = time.perf_counter()
    store = SweepStore(job.sweep_dir)
    initial, computed = shared_baseline(store, baseline_key(job.inputs), model, data.val,
                                        data.test, data.n_classes, data.ood)
    scoring = time.perf_counter() - t_score if computed else 0.0

    seed = derive_seed("trial", job.trial_id)
    cfg = job.finetune
    real_X, real_y = Ztr, ytr
    if job.generator and job.mix_ratio >= 1.0:
        real_X, real_y = Ztr[:0], ytr[:0]  # synthetic-only episodes
    Zsyn, ysyn = data.synthetic if data.synthetic is not None else (None, None)
    sampler = EpisodeSampler(real_X, real_y, Zsyn, ysyn, job.mix_ratio, cfg.episode_rows,
                             cfg.query_fraction, seed)
    t_ft = time.perf_counter()
    if provisional is not None:
        logger = _ProvisionalLogger(job, data, row, logger, provisional, model, t_ft)
    res = finetune(model, sampler, data.val, data.test, data.n_classes, cfg, seed, logger,
                   initial=initial, ood=data.ood)
    row = _scores_row(data, res)
    row.update(finetune_seconds=time.perf_counter() - t_ft, scoring_seconds=scoring,
               device=str(model.device))
    return row, [_eval_row(job, e) for e in res.evaluations]


class _ProvisionalLogger:
    """Hands a 'running' record of the best evaluation so far to ``write`` before passing
    each evaluation on: the record a trial stopped by a scheduler keeps."""

    def __init__(self, job: TrialJob, data: TrialData, row: dict[str, Any],
                 inner: FinetuneLogger | None, write: ProvisionalWriter, model: Any,
                 t_ft: float) -> None:
        self.job, self.data, self.row, self.inner, self.write = job, data, row, inner, write
        self.device, self.t_ft = str(model.device), t_ft
        self.res = FinetuneResult(best_step=0, steps_run=0)

    def on_evaluation(self, evaluation: Evaluation, is_best: bool) -> None:
        self.res.evaluations.append(evaluation)
        self.res.steps_run = evaluation.step
        if is_best:
            self.res.best_step = evaluation.step
        row = {**self.row, **_scores_row(self.data, self.res), "status": "running",
               "error": "", "stopped_early": True, "device": self.device,
               "finetune_seconds": time.perf_counter() - self.t_ft,
               "seconds": time.time() - self.row["started_at"], "finished_at": time.time()}
        self.write(trial_record(self.job, row, [_eval_row(self.job, e)
                                                for e in self.res.evaluations]))
        if self.inner is not None:
            self.inner.on_evaluation(evaluation, is_best)


def _scores_row(data: TrialData, res: FinetuneResult) -> dict[str, Any]:
    zero, best = res.evaluations[0], res.kept
    row: dict[str, Any] = {
        "n_context": len(data.X_train), "n_val": len(data.val.X), "n_test": len(data.test.X),
        "n_features": data.X_train.shape[1], "n_classes": data.n_classes,
        "best_step": res.best_step, "steps_run": res.steps_run,
        "normalized_improvement_pct": normalized_improvement(best.test["roc_auc"],
                                                             zero.test["roc_auc"]),
        **data.minority_row(),
    }
    for m in METRICS:
        row[f"zero_shot_val_{m}"] = zero.val[m]
        row[f"zero_shot_test_{m}"] = zero.test[m]
        row[f"val_{m}"] = best.val[m]
        row[f"test_{m}"] = best.test[m]
    if data.ood is not None and zero.ood is not None and best.ood is not None:
        row.update(_ood_scores(data, zero.ood, best.ood))
    return row


def _ood_scores(data: TrialData, zero: dict[str, float], best: dict[str, float],
                ) -> dict[str, Any]:
    """Out-of-domain test scores of the zero-shot and the selected model, and the OOD
    improvement normalised against the zero-shot OOD score (ROC-AUC)."""
    row: dict[str, Any] = {"shift": data.shift, "ood_domain": data.ood_domain,
                           "n_ood_test": len(data.ood.X) if data.ood is not None else 0,
                           "ood_normalized_improvement_pct": normalized_improvement(
                               best["roc_auc"], zero["roc_auc"])}
    for m in METRICS:
        row[f"zero_shot_ood_test_{m}"] = zero[m]
        row[f"ood_test_{m}"] = best[m]
    return row


def base_row(job: TrialJob) -> dict[str, Any]:
    return {
        "trial_id": job.trial_id, "sweep": job.sweep, "dataset": job.fold.dataset["name"],
        "fold": job.fold.fold, "method": job.method, "generator": job.generator,
        "fit_id": SweepStore(job.sweep_dir).fit_id(job.synthetic_dir),
        "synthetic_scale": job.synthetic_scale, "mix_ratio": job.mix_ratio,
        "seed": job.fold.seed, "model": job.model["name"], "n_train": job.fold.n_train,
        "minority_share": (float("nan") if job.fold.minority_share is None
                           else job.fold.minority_share),
        "n_synthetic": job.n_synthetic if job.generator else 0,
        "lr": job.finetune.lr, "finetune_steps": job.finetune.steps, "search": job.search,
        "search_number": job.search_number, "stopped_early": False,
    }


def _eval_row(job: TrialJob, e: Evaluation) -> dict[str, Any]:
    row = {
        "trial_id": job.trial_id, "dataset": job.fold.dataset["name"], "fold": job.fold.fold,
        "method": job.method, "synthetic_scale": job.synthetic_scale,
        "mix_ratio": job.mix_ratio, "seed": job.fold.seed, "step": e.step,
        "train_loss": e.train_loss,
    }
    for m in METRICS:
        row[f"val_{m}"] = e.val[m]
        row[f"test_{m}"] = e.test[m]
        if e.ood is not None:
            row[f"ood_test_{m}"] = e.ood[m]
    return row
