"""Default fine-tuning vs zero-shot of the embedded PFN on the TabArena CSVs, run as a sweep.

For each CSV (target = last column) a `finetune`-only sweep with the engine's default
fine-tuning settings, n_train=256 real rows, 5 outer folds (test capped at 2,000 rows). Prints
per dataset the median zero-shot and fine-tuned test ROC-AUC and the median normalised
improvement, then the median over datasets (target: >= 0).

    python benchmarks/finetune_gain.py [--data ../shared/datasets] [--folds 5] [--storage DIR] \
        [--option feature_select=none]

``--direct`` instead runs fine-tuning recipes (``RECIPES``) in-process, without Ray, on the same
fold protocol (256 rows: 192 context/episode rows + 64 validation), scoring the test rows only
for the zero-shot and the kept weights:

    python benchmarks/finetune_gain.py --direct --folds 3 [--recipes default lr1e-4 ...]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "datasets"))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--n-train", type=int, default=256)
    ap.add_argument("--storage", default=str(REPO / "results" / "benchmarks"))
    ap.add_argument("--num-cpus", type=int, default=None)
    ap.add_argument("--direct", action="store_true",
                    help="compare fine-tuning recipes directly (no sweep, no Ray)")
    ap.add_argument("--recipes", nargs="*", default=None, help=f"direct mode: {list(RECIPES)}")
    ap.add_argument("--checkpoint", default=None, help="direct mode: PFN weights")
    ap.add_argument("--out", default=None, help="direct mode: CSV of every run")
    ap.add_argument("--datasets", nargs="*", default=None, help="direct mode: CSV stems to run")
    ap.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                    help="sweep mode: a pfn model option, e.g. feature_select=none (repeatable)")
    ap.add_argument("--wise", type=float, nargs="*", default=[1.0],
                    help="direct mode: also score (1-a)*pretrained + a*selected weights for "
                         "each a (WiSE-FT; 1 = the selected weights), as recipe 'NAME@a'")
    args = ap.parse_args()
    if args.direct:
        return direct(args)
    data = Path(args.data)
    files = sorted(data.glob("*.csv"))
    if not files:
        print(f"no CSV files under {data}; nothing to benchmark")
        return 0
    datasets = []
    for f in files:
        with f.open(newline="") as fh:
            header = next(csv.reader(fh))
        datasets.append({"name": f.stem, "path": str(f), "target": header[-1]})

    sys.path.insert(0, str(REPO / "benchmarks"))
    from pfn_quality import model_options

    from engine.execution.orchestrate import run_sweep
    from engine.spec.sweep_file import parse_spec

    spec = parse_spec({
        "name": f"finetune_gain_n{args.n_train}", "seed": 0, "storage": args.storage,
        "datasets": datasets, "folds": args.folds, "outer_folds": max(args.folds, 2),
        "n_train": args.n_train, "val_fraction": 0.25, "max_test_rows": 2000,
        "methods": ["finetune"], "model": {"name": "pfn", **model_options(args.option)},
    }, source="benchmarks/finetune_gain.py")
    sweep_dir = run_sweep(spec, num_cpus=args.num_cpus, report=False)
    res = pd.read_parquet(sweep_dir / "results.parquet")
    ok = res[res["status"] == "ok"].assign(
        gain=lambda d: d["test_roc_auc"] - d["zero_shot_test_roc_auc"])
    table = ok.groupby("dataset").agg(
        mean_gain=("gain", "mean"),
        folds=("fold", "size"),
        zero_shot_auc=("zero_shot_test_roc_auc", "median"),
        finetuned_auc=("test_roc_auc", "median"),
        improvement_pct=("normalized_improvement_pct", "median"),
        best_step=("best_step", "median"),
    )
    pd.set_option("display.width", 160)
    print(table.round(4).to_string())
    per_dataset = table["improvement_pct"]
    print(f"\nmedian over datasets of the median improvement: {per_dataset.median():+.3f} %  "
          f"(mean {per_dataset.mean():+.3f} %; datasets improved {int((per_dataset > 0).sum())}"
          f"/{len(per_dataset)}, worse {int((per_dataset < 0).sum())})")
    gain = table["mean_gain"]
    print(f"mean test ROC-AUC gain over zero-shot (mean over folds per dataset): "
          f"{gain.mean():+.4f}; datasets improved {int((gain > 0).sum())}/{len(gain)}, "
          f"worse {int((gain < 0).sum())}")
    print(f"errors: {int((res['status'] != 'ok').sum())}")
    return 0


# ---------------------------------------------------------------------------- direct mode
RECIPES: dict[str, dict] = {
    "default": {},
    "lr1e-4": {"lr": 1e-4},
    "lr3e-4": {"lr": 3e-4},
    "lr1e-4_perm": {"lr": 1e-4, "permute": True},
    "lr3e-4_perm": {"lr": 3e-4, "permute": True},
    "lr3e-4_perm_l2sp": {"lr": 3e-4, "permute": True, "l2sp": 1.0},
    "lr1e-4_perm_ll": {"lr": 1e-4, "permute": True, "select_by": "log_loss"},
    "lr1e-4_perm_q50": {"lr": 1e-4, "permute": True, "query_fraction": 0.5},
    "perm": {"permute": True},
    "select_ll": {"select_by": "log_loss"},
    "q20": {"query_fraction": 0.2},
    "l2sp": {"l2sp": 1.0},
    "q10": {"query_fraction": 0.1},
    "q20_lr5e-5": {"query_fraction": 0.2, "lr": 5e-5},
    "q20_lr1e-4": {"query_fraction": 0.2, "lr": 1e-4},
    "q20_lr5e-5_s200": {"query_fraction": 0.2, "lr": 5e-5, "steps": 200, "patience": 10},
    "s200": {"steps": 200, "patience": 10},
}


def _direct_folds(path: Path, folds: int, n_train: int, outer: int | None = None,
                  first: int = 0):
    """(x_tr, y_tr, x_va, y_va, x_te, y_te, k, categorical) per fold, with the sweep's fold
    protocol: folds ``first .. first + folds - 1`` of ``outer`` stratified outer folds
    (default ``max(folds, 2)``)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from pfn_quality import load_csv

    from engine.data.preprocess import TablePreprocessor
    from engine.folds.splits import make_fold

    X, y = load_csv(path)
    k = int(y.max()) + 1
    outer = outer or max(folds, 2)
    for fold in range(first, first + folds):
        s = make_fold(y, fold, outer, 0, n_train, 0.25, 2000, path.stem)
        prep = TablePreprocessor().fit(X.iloc[s.train])  # the sweep's, as pfn_quality's
        x_tr, x_va, x_te = (prep.transform(X.iloc[i]) for i in (s.train, s.val, s.test))
        yield fold, (x_tr, y[s.train], x_va, y[s.val], x_te, y[s.test], k, prep.categorical_)


def _direct_run(base, data, cfg, seed: int, alphas: list[float]) -> tuple[list[float], int]:
    """Fine-tuned test ROC-AUC for each interpolation ``alpha`` toward the selected weights
    (1 = the selected weights), and the kept step; the test rows are scored only after
    fine-tuning (selection only ever sees the validation rows)."""
    import copy

    from engine.trials.finetune import EpisodeSampler, EvalSplit, evaluate, finetune

    x_tr, y_tr, x_va, y_va, x_te, y_te, k, categorical = data
    model = copy.deepcopy(base)
    model.set_categorical(categorical)
    val = EvalSplit(x_tr, y_tr, x_va, y_va)
    sampler = EpisodeSampler(x_tr, y_tr, None, None, 0.0, cfg.episode_rows,
                             cfg.query_fraction, seed)
    res = finetune(model, sampler, val, val, k, cfg, seed)
    pretrained, selected = base.module.state_dict(), copy.deepcopy(model.module.state_dict())
    scores = []
    for a in alphas:
        model.module.load_state_dict({n: (1 - a) * pretrained[n] + a * selected[n]
                                      for n in selected})
        scores.append(evaluate(model, EvalSplit(x_tr, y_tr, x_te, y_te), k)["roc_auc"])
    return scores, res.best_step


def direct(args) -> int:
    """Fine-tuning recipes run directly (no Ray): gain over zero-shot per dataset and recipe."""
    import dataclasses

    import torch

    from engine.models.pfn import build_pfn
    from engine.spec.finetune_config import FinetuneConfig
    from engine.trials.finetune import EvalSplit, evaluate

    torch.set_num_threads(1)
    base = build_pfn(checkpoint=args.checkpoint)
    recipes = args.recipes or list(RECIPES)
    names = [n if a == 1 else f"{n}@{a:g}" for n in recipes for a in args.wise]
    rows = []
    for path in sorted(Path(args.data).glob("*.csv")):
        if args.datasets and path.stem not in args.datasets:
            continue
        for fold, data in _direct_folds(path, args.folds, args.n_train):
            x_tr, y_tr, _, _, x_te, y_te, k, categorical = data
            base.set_categorical(categorical)
            zero = evaluate(base, EvalSplit(x_tr, y_tr, x_te, y_te), k)["roc_auc"]
            for recipe in recipes:
                cfg = dataclasses.replace(FinetuneConfig(), **RECIPES[recipe])
                scores, best = _direct_run(base, data, cfg, fold, args.wise)
                for a, tuned in zip(args.wise, scores):
                    name = recipe if a == 1 else f"{recipe}@{a:g}"
                    rows.append({"dataset": path.stem, "fold": fold, "recipe": name,
                                 "zero": zero, "tuned": tuned, "gain": tuned - zero,
                                 "best": best})
                    print(f"{path.stem[:30]:30s} fold {fold} {name:20s} zero {zero:.4f} "
                          f"tuned {tuned:.4f} gain {tuned - zero:+.4f} best step {best}",
                          flush=True)
    df = pd.DataFrame(rows)
    per = df.groupby(["recipe", "dataset"])["gain"].mean().unstack(0)
    summary = pd.DataFrame({
        "mean gain": per.mean(), "datasets improved": (per > 0).sum(),
        "worse": (per < 0).sum(),
        "kept step 0 (%)": df.groupby("recipe")["best"].apply(lambda b: 100 * (b == 0).mean()),
    }).loc[names]
    pd.set_option("display.width", 200)
    print("\nmean test ROC-AUC gain over zero-shot per dataset (mean over folds):")
    print(per[names].round(4).to_string())
    print(f"\n{len(per)} datasets x {args.folds} folds, n_train {args.n_train}:")
    print(summary.round(4).to_string())
    if args.out:
        df.to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
