"""TPE vs random search vs the grid at equal numbers of fine-tuning trials (CausalMixFT).

For each seed, three sweeps over the same datasets (CSVs, target = last column), method
``causalmixft``, one outer fold per dataset (the seed changes the split, the SCM fit, the
fine-tuning and the sampler):
  * grid: the scales x mix ratios below (``--scales`` x ``--mixes`` points);
  * tpe / random: an Optuna search with a budget of the same number of trials over the
    grid's bounding box (scale log-uniform, mix uniform).
The searches reuse the grid's fitted synthetic tables (the fit inputs are identical: the
largest scale is the same), so every mode reads the same synthetic rows. Per dataset-seed the
point chosen by validation ROC-AUC gives the test ROC-AUC; the table holds its median over
seeds per dataset, the median over all dataset-seeds, and how often each mode's choice
beats the grid's on test. Rerunning resumes (sweeps reuse finished trials).

    python benchmarks/search_vs_grid.py [--data ../shared/datasets] [--seeds 3]
"""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATASETS = ["blood-transfusion-service-center", "diabetes", "credit-g", "Fitness_Club",
            "churn"]
MODES = ("grid", "tpe", "random")


def dataset_refs(data: Path, names: list[str]) -> list[dict[str, str]]:
    out = []
    for name in names:
        path = data / f"{name}.csv"
        with path.open(newline="") as fh:
            header = next(csv.reader(fh))
        out.append({"name": name, "path": str(path), "target": header[-1]})
    return out


def sweep_raw(mode: str, seed: int, args: argparse.Namespace, datasets: list) -> dict:
    scales, mixes = args.scales, args.mixes
    raw = {"name": f"svg_{mode}_seed{seed}", "seed": seed, "storage": args.storage,
           "datasets": datasets, "folds": 1, "outer_folds": 5, "n_train": args.n_train,
           "val_fraction": 0.25, "max_test_rows": 2000, "methods": ["causalmixft"],
           "model": {"name": "pfn"},
           "finetune": {"steps": args.steps, "eval_every": 10, "patience": 3,
                        "episode_rows": 128}}
    if mode == "grid":
        raw["grid"] = {"synthetic_scale": scales, "mix_ratio": mixes}
    else:
        raw["search"] = {"mode": "optuna", "budget": len(scales) * len(mixes),
                         "max_concurrent": 1, "seed": seed, "sampler": mode,
                         "space": {"synthetic_scale": [min(scales), max(scales)],
                                   "mix_ratio": [min(mixes), max(mixes)]}}
    return raw


def chosen(results: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: the validation-best trial (ties: the earlier trial) and its test score."""
    ok = results[results["status"] == "ok"].sort_values(["dataset", "trial_id"])
    best = ok.loc[ok.groupby("dataset")["val_roc_auc"].idxmax()]
    return best[["dataset", "val_roc_auc", "test_roc_auc", "synthetic_scale", "mix_ratio"]]


def run(args: argparse.Namespace) -> pd.DataFrame:
    from engine.execution.orchestrate import run_sweep
    from engine.spec.sweep_file import parse_spec

    datasets = dataset_refs(Path(args.data), args.datasets)
    rows = []
    for seed in range(args.seeds):
        for mode in MODES:
            spec = parse_spec(sweep_raw(mode, seed, args, datasets),
                              source="benchmarks/search_vs_grid.py")
            if mode != "grid":  # same fit inputs as the grid's: reuse its synthetic tables
                grid_dir = Path(args.storage) / f"svg_grid_seed{seed}" / "synthetic"
                target = spec.sweep_dir / "synthetic"
                if grid_dir.is_dir() and not target.exists():
                    shutil.copytree(grid_dir, target)
            sweep_dir = run_sweep(spec, num_cpus=args.num_cpus, report=False)
            res = pd.read_parquet(sweep_dir / "results.parquet")
            pick = chosen(res).assign(mode=mode, seed=seed, trials=len(res))
            rows.append(pick)
    return pd.concat(rows, ignore_index=True)


def table(picks: pd.DataFrame) -> pd.DataFrame:
    per = picks.pivot_table(index="dataset", columns="mode", values="test_roc_auc",
                            aggfunc="median")[list(MODES)].astype(object)
    per.loc["median (all dataset-seeds)"] = [
        picks.loc[picks["mode"] == m, "test_roc_auc"].median() for m in MODES]
    wide = picks.pivot_table(index=["dataset", "seed"], columns="mode", values="test_roc_auc")
    per.loc["wins vs grid (of dataset-seeds)"] = [
        "-"] + [f"{(wide[m] > wide['grid']).sum()}/{len(wide)}" for m in MODES[1:]]
    return per


def markdown(frame: pd.DataFrame) -> str:
    """A Markdown table (numbers to 4 decimals)."""
    def cell(v: object) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join([frame.index.name or "", *map(str, frame.columns)]) + " |",
             "|---" * (len(frame.columns) + 1) + "|"]
    for idx, row in frame.iterrows():
        lines.append("| " + " | ".join([str(idx), *map(cell, row)]) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "datasets"))
    ap.add_argument("--datasets", nargs="+", default=DATASETS)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n-train", type=int, default=128)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--scales", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    ap.add_argument("--mixes", type=float, nargs="+", default=[0.25, 0.5, 0.75])
    ap.add_argument("--storage", default=str(REPO / "results" / "benchmarks"))
    ap.add_argument("--num-cpus", type=int, default=None)
    args = ap.parse_args()
    if not all((Path(args.data) / f"{d}.csv").is_file() for d in args.datasets):
        print(f"the datasets are not all under {args.data}; nothing to benchmark")
        return 0
    picks = run(args)
    picks.to_csv(Path(args.storage) / "search_vs_grid_picks.csv", index=False)
    print(picks.to_string(index=False))
    print()
    print(markdown(table(picks)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
