"""A small synthetic sweep (results and evaluations) for trying the report without running one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from engine.storage.results_schema import (
    EVALUATION_COLUMNS,
    METRICS,
    RESULT_COLUMNS,
    normalized_improvement,
)

SCALES = (0.5, 1.0, 2.0, 4.0, 8.0)
MIX_RATIOS = (0.25, 0.5, 0.75)
SYNTHETIC_ONLY = {"scm": 1.0, "ctgan": -1.0, "tabebm": -3.0, "tableaugment": -8.0}


def _grid(n_datasets: int, n_folds: int) -> list[dict]:
    """Trial descriptions: finetune, causalmixft over scale x mix, synthetic-only over scale."""
    configs = [("finetune", "", 0.0, 0.0)]
    configs += [("causalmixft", "scm", s, m) for s in SCALES for m in MIX_RATIOS]
    configs += [(name, name, s, 1.0) for name in SYNTHETIC_ONLY for s in SCALES]
    trials = []
    for d in range(n_datasets):
        for fold in range(n_folds):
            for method, generator, scale, mix in configs:
                trials.append(
                    dict(dataset=f"ds{d}", fold=fold, method=method, generator=generator,
                         fit_id=f"{generator}-demo/ds{d}/fold{fold}" if generator else "",
                         synthetic_scale=scale, mix_ratio=mix, seed=0)
                )
    return trials


def _true_gain(method: str, scale: float, mix: float, dataset_effect: float) -> float:
    """Expected improvement in percent for the synthetic ground truth."""
    if method == "finetune":
        return 8.0 + dataset_effect
    if method == "causalmixft":
        return 8.0 + dataset_effect + 4.0 * (1 - np.exp(-scale / 2.0)) * (1 - abs(mix - 0.5))
    return SYNTHETIC_ONLY[method] + 0.3 * np.log2(scale) + 0.5 * dataset_effect


def demo_tables(
    n_datasets: int = 6, n_folds: int = 2, n_steps: int = 6, seed: int = 0, error_rate: float = 0.03
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Results and evaluations tables following the column contract, with a few failed trials."""
    rng = np.random.default_rng(seed)
    results, evaluations = [], []
    effects = rng.normal(0, 3, n_datasets)
    zeros = np.clip(rng.normal(0.8, 0.05, (n_datasets, n_folds)), 0.6, 0.95)
    for t in _grid(n_datasets, n_folds):
        d = int(t["dataset"][2:])
        zero = float(zeros[d, t["fold"]])
        gain = _true_gain(t["method"], t["synthetic_scale"], t["mix_ratio"], effects[d])
        final = min(zero * (1 + (gain + rng.normal(0, 2)) / 100), 0.999)
        noise = 0.01 if t["method"] == "causalmixft" else 0.02
        steps = np.arange(n_steps) * 10
        path = zero + (final - zero) * (1 - np.exp(-np.arange(n_steps) / 2.0))
        test = path + rng.normal(0, 0.004, n_steps)
        val = path + rng.normal(0, noise, n_steps)
        val[0], test[0] = zero, zero
        best = int(np.argmax(val))
        failed = rng.random() < error_rate
        trial_id = (
            f"{t['method']}/{t['dataset']}/fold{t['fold']}/"
            f"scale{t['synthetic_scale']:g}_mix{t['mix_ratio']:g}_seed{t['seed']}"
        )
        row = dict(t, trial_id=trial_id, sweep="demo", model="demo", n_train=600, n_context=500,
                   n_val=100, n_test=200, n_features=10, n_classes=2,
                   n_synthetic=int(t["synthetic_scale"] * 500), best_step=int(steps[best]),
                   steps_run=int(steps[-1]), seconds=float(rng.uniform(5, 50)),
                   status="error" if failed else "ok",
                   error="RuntimeError: out of memory" if failed else "")
        for m in METRICS:
            shift = {"roc_auc": 0.0, "accuracy": -0.05, "f1_macro": -0.08}.get(m, 0.0)
            if m == "log_loss":
                zv, vv, tv = 1 - zero, 1 - val[best], 1 - test[best]
            else:
                zv, vv, tv = zero + shift, val[best] + shift, test[best] + shift
            row[f"zero_shot_val_{m}"] = row[f"zero_shot_test_{m}"] = zv
            row[f"val_{m}"] = np.nan if failed else vv
            row[f"test_{m}"] = np.nan if failed else tv
        row["normalized_improvement_pct"] = (
            np.nan if failed else normalized_improvement(test[best], zero)
        )
        results.append(row)
        if not failed:
            for i, step in enumerate(steps):
                ev = {k: t[k] for k in ("dataset", "fold", "method", "synthetic_scale",
                                        "mix_ratio", "seed")}
                ev.update(trial_id=trial_id, step=int(step),
                          train_loss=np.nan if i == 0 else float(0.7 - 0.02 * i))
                for m in METRICS:
                    sign = -1 if m == "log_loss" else 1
                    ev[f"val_{m}"] = (1 - val[i]) if sign < 0 else val[i]
                    ev[f"test_{m}"] = (1 - test[i]) if sign < 0 else test[i]
                evaluations.append(ev)
    res = pd.DataFrame(results).reindex(columns=list(RESULT_COLUMNS))
    evs = pd.DataFrame(evaluations).reindex(columns=list(EVALUATION_COLUMNS))
    return res, evs


def write_demo_sweep(sweep_dir: Path, **kwargs: int | float) -> Path:
    """Write a demo ``results.parquet`` and ``evaluations.parquet`` into ``sweep_dir``."""
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    results, evaluations = demo_tables(**kwargs)
    results.to_parquet(sweep_dir / "results.parquet", index=False)
    evaluations.to_parquet(sweep_dir / "evaluations.parquet", index=False)
    return sweep_dir


if __name__ == "__main__":
    import sys

    print(write_demo_sweep(Path(sys.argv[1] if len(sys.argv) > 1 else "demo_sweep")))
