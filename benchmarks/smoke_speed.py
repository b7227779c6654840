"""Wall time of the smoke sweep at an earlier commit against the working tree, in one run.

Each side runs ``causalmix run sweeps/smoke.yaml --no-report`` in a fresh subprocess with its
own empty storage (the earlier commit from a temporary ``git worktree``, imported through
``PYTHONPATH``), alternating sides, and the table gives each run and the median ratio.

    python benchmarks/smoke_speed.py --base d148024 [--repeats 2] [--num-cpus 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def timed_run(tree: Path, storage: str | Path, num_cpus: int,
              env: dict[str, str] | None = None) -> float:
    """Wall seconds of ``causalmix run sweeps/smoke.yaml`` from ``tree`` with ``storage`` (a
    fresh subprocess; exit 1, some trials failed, still counts as a run)."""
    env = {**(env or os.environ), "PYTHONPATH": str(tree)}
    cmd = [sys.executable, "-m", "engine.cli", "run", str(tree / "sweeps" / "smoke.yaml"),
           "--storage", str(storage), "--no-report", "--num-cpus", str(num_cpus)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{tree} ({storage}): exit {proc.returncode}\n{proc.stderr[-2000:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the earlier commit")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--num-cpus", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), args.base], cwd=REPO,
                       check=True, capture_output=True)
        try:
            times: dict[str, list[float]] = {"base": [], "now": []}
            for i in range(args.repeats):
                for side, tree in (("base", base), ("now", REPO)):
                    wall = timed_run(tree, Path(tmp) / f"{side}{i}", args.num_cpus)
                    times[side].append(wall)
                    print(f"repeat {i} {side:4s} {wall:7.1f} s", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO,
                           capture_output=True)
        same = same_metrics(Path(tmp) / "base0" / "smoke", Path(tmp) / "now0" / "smoke")
    b, n = statistics.median(times["base"]), statistics.median(times["now"])
    print(f"\n| side | median wall (s) | runs |\n|---|---|---|\n"
          f"| {args.base} | {b:.1f} | {len(times['base'])} |\n| working tree | {n:.1f} | "
          f"{len(times['now'])} |\n\nspeed-up: {b / n:.2f}x\n\nidentical metrics per method "
          f"(first repeat, {', '.join(METRICS)}):\n{same.to_string()}")


METRICS = ["zero_shot_test_roc_auc", "test_roc_auc", "val_roc_auc", "test_log_loss", "best_step"]


def same_metrics(base: Path, now: Path) -> pd.DataFrame:
    """Per method: trials whose metrics are bit-identical at both commits, out of all."""
    a = pd.read_parquet(base / "results.parquet")[["trial_id", "method", *METRICS]]
    b = pd.read_parquet(now / "results.parquet")[["trial_id", *METRICS]]
    joined = a.merge(b, on="trial_id", how="outer", suffixes=("", "_now"))
    joined["method"] = joined["method"].fillna(joined["trial_id"].str.split("/").str[0])
    equal = pd.concat([joined[m] == joined[f"{m}_now"] for m in METRICS], axis=1).all(axis=1)
    return equal.groupby(joined["method"]).agg(["sum", "size"]).rename(
        columns={"sum": "identical", "size": "trials"})


if __name__ == "__main__":
    main()
