"""Fine-tuning recipes of the embedded PFN compared on one training trace per fold.

Selection (which step to keep, when to stop) never changes the weights a step produces, so
each dataset-fold is fine-tuned once for all ``--steps`` with every evaluation recorded (its
validation and test scores and its weights); each selection rule (``select_by``,
``min_delta``, patience) is then replayed on that trace with the engine's own comparison,
and each WiSE-FT weight ``wise`` scores the interpolation of the kept weights with the
pretrained ones on the test rows. Test rows never enter a choice. Prints, per recipe, the
mean test ROC-AUC gain over zero-shot (mean over folds per dataset), the worst dataset and
the share of folds that keep step 0.

    python benchmarks/finetune_recipes.py --half select --folds 6 --outer-folds 10 \
        --lr 1e-5 3e-5 1e-4
    python benchmarks/finetune_recipes.py --half report --folds 4 --outer-folds 10 --first-fold 6
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
from pathlib import Path

import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from finetune_gain import _direct_folds  # noqa: E402
from pfn_quality import DATASETS, halves  # noqa: E402

from engine.models.pfn import build_pfn  # noqa: E402
from engine.spec.finetune_config import FinetuneConfig  # noqa: E402
from engine.trials.finetune import (  # noqa: E402
    EpisodeSampler,
    EvalSplit,
    _better,
    evaluate,
    finetune,
    interpolate,
)

RULES = [(by, md, pat) for by in ("roc_auc", "log_loss") for md in (0.0, 0.005, 0.01, 0.02)
         for pat in (5,)]
WISE = (1.0, 0.75, 0.5)


class _Trace:
    """Logger keeping every evaluation and the weights it scored."""

    def __init__(self, model) -> None:
        self.model, self.evals, self.states = model, [], []

    def on_evaluation(self, evaluation, is_best: bool) -> None:
        self.evals.append(evaluation)
        self.states.append(copy.deepcopy(self.model.module.state_dict()))


def replay(evals: list, by: str, min_delta: float, patience: int) -> int:
    """Index of the evaluation the engine's loop keeps under this rule."""
    best, stale = 0, 0
    for i in range(1, len(evals)):
        if _better(evals[i].val, evals[best].val, by, min_delta):
            best, stale = i, 0
        else:
            stale += 1
            if stale >= patience:
                break
    return best


def run_fold(base, data, cfg: FinetuneConfig, seed: int) -> list[dict]:
    """One full trace; a row per (rule, wise) with the kept step and its test ROC-AUC."""
    x_tr, y_tr, x_va, y_va, x_te, y_te, k, categorical = data
    model = copy.deepcopy(base)
    model.set_categorical(categorical)
    val, test = EvalSplit(x_tr, y_tr, x_va, y_va), EvalSplit(x_tr, y_tr, x_te, y_te)
    sampler = EpisodeSampler(x_tr, y_tr, None, None, 0.0, cfg.episode_rows,
                             cfg.query_fraction, seed)
    trace = _Trace(model)
    full = dataclasses.replace(cfg, patience=10**6)
    finetune(model, sampler, val, test, k, full, seed, trace)
    zero = trace.evals[0].test["roc_auc"]
    rows, scored = [], {}
    for by, md, pat in RULES:
        i = replay(trace.evals, by, md, pat)
        for a in WISE:
            if (i, a) not in scored:
                if i == 0 or a == 1.0:
                    scored[i, a] = trace.evals[i].test["roc_auc"]
                else:
                    model.module.load_state_dict(interpolate(trace.states[0], trace.states[i], a))
                    scored[i, a] = evaluate(model, test, k)["roc_auc"]
            rows.append({"recipe": f"{by}/{md:g}/{pat}@{a:g}", "step": trace.evals[i].step,
                         "zero": zero, "tuned": scored[i, a], "gain": scored[i, a] - zero})
    return rows


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    per = df.groupby(["recipe", "dataset"])["gain"].mean().unstack(0)
    return pd.DataFrame({
        "mean gain": per.mean(), "worst dataset": per.min(),
        "improved": (per > 0).sum(), "worse": (per < 0).sum(),
        "step 0 (%)": df.groupby("recipe")["step"].apply(lambda s: 100 * (s == 0).mean()),
    }).sort_values("mean gain", ascending=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "datasets"))
    ap.add_argument("--half", choices=["select", "report", "all"], default="select")
    ap.add_argument("--datasets", nargs="*", default=None, help="CSV stems (default: --half)")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--n-train", type=int, default=256, help="context + validation rows")
    ap.add_argument("--lr", type=float, nargs="+", default=[FinetuneConfig.lr],
                    help="learning rates (one training trace each)")
    ap.add_argument("--outer-folds", type=int, default=None,
                    help="outer folds of the partition (default max(folds, 2))")
    ap.add_argument("--first-fold", type=int, default=0, help="first fold index to run")
    ap.add_argument("--steps", type=int, default=FinetuneConfig.steps)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--out", default=None, help="CSV of every (dataset, fold, recipe) row")
    args = ap.parse_args()
    torch.set_num_threads(1)
    names = args.datasets or (DATASETS if args.half == "all" else halves()[args.half])
    base = build_pfn(checkpoint=args.checkpoint)
    rows = []
    for name in names:
        path = Path(args.data) / f"{name}.csv"
        for fold, data in _direct_folds(path, args.folds, args.n_train, args.outer_folds,
                                        args.first_fold):
            for lr in args.lr:
                cfg = dataclasses.replace(FinetuneConfig(), lr=lr, steps=args.steps)
                fold_rows = [{"dataset": name, "fold": fold, **r,
                              "recipe": f"lr{lr:g}/{r['recipe']}"}
                             for r in run_fold(base, data, cfg, fold)]
                rows += fold_rows
                print(f"{name[:30]:30s} fold {fold} lr {lr:g}: " + "  ".join(
                    f"{r['recipe']} {r['gain']:+.4f}" for r in fold_rows
                    if r["recipe"].endswith("/0/5@1")), flush=True)
    df = pd.DataFrame(rows)
    if args.out:
        df.to_csv(args.out, index=False)
    pd.set_option("display.width", 200)
    print(f"\n{df['dataset'].nunique()} datasets ({args.half} half) x {args.folds} folds, "
          f"n_train {args.n_train}, {args.steps} steps:")
    print(summarise(df).round(4).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
