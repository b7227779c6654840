"""Pipelined sweeps on a local multi-node Ray cluster: wall time against the ideal.

A ``ray.cluster_utils.Cluster`` is started with a head that runs no tasks, fit nodes (labelled
``causalmix_fits``) and trial nodes (labelled ``causalmix_trials``, standing in for GPU nodes),
and a real sweep runs on it: scm fits on several datasets and fine-tuning trials of fixed
steps. From the recorded timestamps it prints, per repeat and as medians:

* wall: sweep wall time (``run_sweep``, Ray already up);
* ideal: max(fit work / fit slots, trial work / trial slots) + the shortest fit -> trial chain,
  where the work is the seconds each fit and trial spent inside its worker;
* overhead: median gap between consecutive trials on the same warm worker (start of the next
  minus end of the previous), i.e. what the engine and Tune add per trial;
* busy: share of trial-slot time spent inside trials between the first fit landing and the
  last trial ending;
* first_fit_s / first_trial_s: seconds from the call to the first fit / trial starting (the
  driver's start-up: plan, preflight, Tune).

    python benchmarks/pipeline.py [--repeats 3] [--fit-nodes 1] [--trial-nodes 1]

Slots are logical: on a machine with fewer cores than slots the work itself slows down, which
the ratios absorb (work is measured inside the same run).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.execution.orchestrate import run_sweep  # noqa: E402
from engine.execution.placement import FIT_RESOURCE, TRIAL_RESOURCE  # noqa: E402
from engine.spec.sweep_file import parse_spec  # noqa: E402

DATASETS = ["sklearn/breast_cancer", "sklearn/wine", "sklearn/iris", "sklearn/digits"]


def sweep_spec(storage: Path, repeat: int) -> dict:
    return {
        "name": f"pipeline{repeat}", "seed": repeat, "storage": str(storage),
        "datasets": DATASETS, "folds": 3, "outer_folds": 4, "n_train": 96,
        "methods": ["finetune", "causalmixft", "scm"],
        "grid": {"synthetic_scale": [0.5, 1.0], "mix_ratio": [0.25, 0.5]},
        "finetune": {"steps": 30, "eval_every": 5, "patience": 100, "episode_rows": 64},
        "resources": {"generator_cpus": 1, "trial_cpus": 1},
    }


def measure(results: pd.DataFrame, fits: pd.DataFrame, wall: float, fit_slots: int,
            trial_slots: int) -> dict[str, float]:
    trial_work = results["seconds"].sum()
    fit_work = fits["seconds"].sum()
    fitted = results[results["fit_id"] != ""]
    chain = fits["seconds"].min() + (fitted["seconds"].min() if len(fitted) else 0.0)
    ideal = max(fit_work / fit_slots, trial_work / trial_slots) + chain
    gaps = []
    for _, rows in results.sort_values("started_at").groupby("worker"):
        starts, ends = rows["started_at"].to_numpy(), rows["finished_at"].to_numpy()
        gaps.extend(starts[1:] - ends[:-1])
    first_fit = fits["finished_at"].min()
    end = results["finished_at"].max()
    after = results[results["finished_at"] > first_fit]
    inside = (after["finished_at"] - after["started_at"].clip(lower=first_fit)).sum()
    return {"trials": len(results), "fits": len(fits), "wall_s": wall, "ideal_s": ideal,
            "wall/ideal": wall / ideal,
            "overhead_s": statistics.median(gaps) if gaps else float("nan"),
            "busy": inside / (trial_slots * (end - first_fit))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--fit-nodes", type=int, default=1)
    ap.add_argument("--trial-nodes", type=int, default=1)
    args = ap.parse_args()
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(args.fit_nodes):
        cluster.add_node(num_cpus=1, resources={FIT_RESOURCE: 1000})
    for _ in range(args.trial_nodes):
        cluster.add_node(num_cpus=1, resources={TRIAL_RESOURCE: 1000})
    ray.init(address=cluster.address, logging_level="ERROR")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            spec = parse_spec(sweep_spec(Path(tmp), repeat))
            t0, unix0 = time.perf_counter(), time.time()
            sweep_dir = run_sweep(spec, report=False)
            wall = time.perf_counter() - t0
            res = pd.read_parquet(sweep_dir / "results.parquet")
            fits = pd.read_parquet(sweep_dir / "fits.parquet")
            assert (res["status"] == "ok").all(), res["error"].unique()
            rows.append({"repeat": repeat, **measure(res, fits, wall, args.fit_nodes,
                                                      args.trial_nodes),
                         "first_fit_s": fits["started_at"].min() - unix0,
                         "first_trial_s": res["started_at"].min() - unix0})
    ray.shutdown()
    cluster.shutdown()
    table = pd.DataFrame(rows)
    median = table.drop(columns="repeat").median().to_frame().T.assign(repeat="median")
    print(pd.concat([table, median], ignore_index=True).to_string(index=False,
                                                                 float_format="%.3f"))


if __name__ == "__main__":
    main()
