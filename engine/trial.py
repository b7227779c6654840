"""One trial: zero-shot score, episodic fine-tuning on real and/or synthetic rows, final scores."""

from __future__ import annotations

import time
from typing import Any

from engine.data.folds import derive_seed
from engine.data.preprocess import TablePreprocessor
from engine.finetune import (
    EpisodeSampler,
    EvalSplit,
    Evaluation,
    FinetuneLogger,
    finetune,
)
from engine.fold_data import load_fold
from engine.generator_fits import load_synthetic, one_line
from engine.plan import TrialJob
from engine.results_schema import METRICS, normalized_improvement
from engine.store import SweepStore


def run_trial(job: TrialJob, logger: FinetuneLogger | None = None) -> dict[str, Any]:
    """Run one trial; never raises for bad data: failures become a row with status 'error'."""
    t0 = time.perf_counter()
    row = base_row(job)
    evaluations: list[dict[str, Any]] = []
    try:
        row_update, evaluations = _run(job, logger)
        row.update(row_update)
        row.update(status="ok", error="")
    except Exception as exc:  # noqa: BLE001 - stored as one readable line
        row.update(status="error", error=one_line(exc))
    row["seconds"] = time.perf_counter() - t0
    return trial_record(job, row, evaluations)


def trial_record(job: TrialJob, row: dict[str, Any], evaluations: list[dict[str, Any]],
                 ) -> dict[str, Any]:
    """What is stored per trial: its key and inputs (for reuse checks), row and evaluations."""
    return {"key": job.key, "inputs": job.inputs, "result": row, "evaluations": evaluations}


def _run(job: TrialJob, logger: FinetuneLogger | None) -> tuple[dict, list[dict]]:
    import torch

    from engine.models import load_model

    torch.set_num_threads(max(1, int(job.trial_cpus)))
    fold = load_fold(job.fold)
    X_tr, y_tr = fold.rows("train")
    X_va, y_va = fold.rows("val")
    X_te, y_te = fold.rows("test")
    ytr, yva, yte = fold.codes(y_tr), fold.codes(y_va), fold.codes(y_te)
    prep = TablePreprocessor(max_features=job.preprocessing.max_features)
    Ztr = prep.fit_transform(X_tr, ytr)
    Zva, Zte = prep.transform(X_va), prep.transform(X_te)

    Zsyn = ysyn = None
    if job.generator:
        X_syn, y_syn = load_synthetic(job.synthetic_dir, job.n_synthetic)
        Zsyn, ysyn = prep.transform(X_syn), fold.codes(y_syn)

    device = "cuda" if job.trial_gpus > 0 and torch.cuda.is_available() else "cpu"
    options = {k: v for k, v in job.model.items() if k != "name"}
    model = load_model(job.model["name"], device=device, **options)
    n_classes = fold.n_classes
    model.check_table(len(Ztr), Ztr.shape[1], n_classes)

    seed = derive_seed("trial", job.trial_id)
    cfg = job.finetune
    real_X, real_y = Ztr, ytr
    if job.generator and job.mix_ratio >= 1.0:
        real_X, real_y = Ztr[:0], ytr[:0]  # synthetic-only episodes
    sampler = EpisodeSampler(real_X, real_y, Zsyn, ysyn, job.mix_ratio, cfg.episode_rows,
                             cfg.query_fraction, seed)
    val = EvalSplit(Ztr, ytr, Zva, yva)
    test = EvalSplit(Ztr, ytr, Zte, yte)
    res = finetune(model, sampler, val, test, n_classes, cfg, seed, logger)

    zero = res.evaluations[0]
    best = res.best
    row: dict[str, Any] = {
        "n_context": len(Ztr), "n_val": len(Zva), "n_test": len(Zte),
        "n_features": Ztr.shape[1], "n_classes": n_classes,
        "best_step": res.best_step, "steps_run": res.steps_run,
        "normalized_improvement_pct": normalized_improvement(best.test["roc_auc"],
                                                             zero.test["roc_auc"]),
    }
    for m in METRICS:
        row[f"zero_shot_val_{m}"] = zero.val[m]
        row[f"zero_shot_test_{m}"] = zero.test[m]
        row[f"val_{m}"] = best.val[m]
        row[f"test_{m}"] = best.test[m]
    evals = [_eval_row(job, e) for e in res.evaluations]
    return row, evals


def base_row(job: TrialJob) -> dict[str, Any]:
    return {
        "trial_id": job.trial_id, "sweep": job.sweep, "dataset": job.fold.dataset["name"],
        "fold": job.fold.fold, "method": job.method, "generator": job.generator,
        "fit_id": SweepStore(job.sweep_dir).fit_id(job.synthetic_dir),
        "synthetic_scale": job.synthetic_scale, "mix_ratio": job.mix_ratio,
        "seed": job.fold.seed, "model": job.model["name"], "n_train": job.fold.n_train,
        "n_synthetic": job.n_synthetic if job.generator else 0,
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
    return row
