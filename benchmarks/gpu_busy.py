"""GPU-busy fraction of a sweep with fractional GPUs per trial (for a lent GPU machine).

Runs a sweep of ``--trials``-ish fine-tuning trials (``finetune`` + ``causalmixft`` over a grid,
embedded PFN unless ``--model`` names another) with ``resources.trial_gpus`` = 1/``--per-gpu``,
while ``nvidia-smi`` samples GPU utilisation every 200 ms. Prints the share of samples with
utilisation > 0 between the first trial's start and the last trial's end (from the trial
records), the trials' device column, and wall time. Without CUDA (``--cpu``) it runs the same
sweep on CPU to check the script itself.

    python benchmarks/gpu_busy.py --per-gpu 4 --trials 32 --storage /tmp/gpu_busy
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd


def sweep_raw(args: argparse.Namespace) -> dict:
    scales = [0.5, 1.0, 2.0, 4.0]
    mixes = [0.25, 0.5, 0.75]
    per_fold = 1 + len(scales) * len(mixes)
    folds = max(1, -(-args.trials // (per_fold * 2)))
    return {"name": "gpu_busy", "seed": 0, "storage": args.storage,
            "datasets": ["sklearn/breast_cancer", "sklearn/digits"], "folds": folds,
            "outer_folds": max(folds, 2), "n_train": 256,
            "methods": ["finetune", "causalmixft"],
            "grid": {"synthetic_scale": scales, "mix_ratio": mixes},
            "model": {"name": args.model},
            "finetune": {"steps": args.steps, "eval_every": 10, "patience": 100},
            "resources": {"generator_cpus": 1, "trial_cpus": 1,
                          "trial_gpus": 0 if args.cpu else round(1 / args.per_gpu, 4)}}


def sample_gpu(out: Path) -> subprocess.Popen | None:
    if shutil.which("nvidia-smi") is None:
        return None
    fh = out.open("w")
    return subprocess.Popen(["nvidia-smi", "--query-gpu=timestamp,utilization.gpu",
                             "--format=csv,noheader,nounits", "-lms", "200"], stdout=fh)


def busy_fraction(samples: Path, start: float, end: float) -> float:
    rows = []
    for line in samples.read_text().splitlines():
        stamp, _, util = line.partition(",")
        try:
            t = time.mktime(time.strptime(stamp.strip().split(".")[0], "%Y/%m/%d %H:%M:%S"))
            rows.append((t, float(util)))
        except ValueError:
            continue
    inside = [u for t, u in rows if start <= t <= end]
    return sum(u > 0 for u in inside) / len(inside) if inside else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-gpu", type=int, default=4)
    ap.add_argument("--trials", type=int, default=32)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--model", default="pfn")
    ap.add_argument("--storage", default="/tmp/gpu_busy")
    ap.add_argument("--cpu", action="store_true", help="check the script without a GPU")
    args = ap.parse_args()

    from engine.execution.orchestrate import run_sweep
    from engine.spec.sweep_file import parse_spec

    spec = parse_spec(sweep_raw(args), source="benchmarks/gpu_busy.py")
    Path(args.storage).mkdir(parents=True, exist_ok=True)
    samples = Path(args.storage) / "nvidia_smi.csv"
    sampler = None if args.cpu else sample_gpu(samples)
    t0 = time.time()
    try:
        sweep_dir = run_sweep(spec, report=False)
    finally:
        if sampler is not None:
            sampler.terminate()
    res = pd.read_parquet(Path(sweep_dir) / "results.parquet")
    start, end = res["started_at"].min(), res["finished_at"].max()
    busy = busy_fraction(samples, start, end) if sampler is not None else float("nan")
    print("| trials | ok | devices | trials/GPU | wall (s) | trial span (s) | GPU busy |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {len(res)} | {int((res['status'] == 'ok').sum())} | "
          f"{', '.join(sorted(res['device'].unique()))} | {args.per_gpu} | "
          f"{time.time() - t0:.1f} | {end - start:.1f} | {busy:.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
