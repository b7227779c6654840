"""Default fine-tuning vs zero-shot of the embedded PFN on the TabArena CSVs, run as a sweep.

For each CSV (target = last column) a `finetune`-only sweep with the engine's default
fine-tuning settings, n_train=256 real rows, 5 outer folds (test capped at 2,000 rows). Prints
per dataset the median zero-shot and fine-tuned test ROC-AUC and the median normalised
improvement, then the median over datasets (target: >= 0).

    python benchmarks/finetune_gain.py [--data ../shared/datasets] [--folds 5] [--storage DIR]
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
    args = ap.parse_args()
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

    from engine.orchestrate import run_sweep
    from engine.spec import parse_spec

    spec = parse_spec({
        "name": f"finetune_gain_n{args.n_train}", "seed": 0, "storage": args.storage,
        "datasets": datasets, "folds": args.folds, "outer_folds": max(args.folds, 2),
        "n_train": args.n_train, "val_fraction": 0.25, "max_test_rows": 2000,
        "methods": ["finetune"], "model": {"name": "pfn"},
    }, source="benchmarks/finetune_gain.py")
    sweep_dir = run_sweep(spec, num_cpus=args.num_cpus, report=False)
    res = pd.read_parquet(sweep_dir / "results.parquet")
    ok = res[res["status"] == "ok"]
    table = ok.groupby("dataset").agg(
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
    print(f"errors: {int((res['status'] != 'ok').sum())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
