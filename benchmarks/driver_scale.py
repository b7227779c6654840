"""Driver cost at tens of thousands of trials: planning, Tune scheduling, results writing.

Each size runs in a fresh subprocess (so its peak RSS is its own) and measures:

* **plan**: ``parse_spec`` + ``make_plan`` of ``sweeps/scaling.yaml`` reshaped to the size
  (all 7 methods, its 6 x 4 grid: 55 trials per dataset-fold) over the datasets of the local
  mirror (``$CAUSALMIX_DATA``): the first ``d`` mirror datasets x ``f`` folds, ``split: kfold``;
* **run**: ``run_sweep`` (local Ray, the ``ReadyTrials`` searcher, reused actors, the results
  book, progress lines) of the same dataset-folds with 55 trials each that cost next to
  nothing: ``finetune`` + ``tableaugment`` over 54 synthetic scales, the benchmark-only
  ``bench-constant`` model (``benchmarks/cheap_model.py``), one fine-tuning step, n_train 64;
* **write**: ``ResultsBook.write()`` (results, evaluations and fits tables) of the finished rows;
* **peak RSS** of the driver process (``ru_maxrss``).

    CAUSALMIX_DATA=/work/shared/datasets PYTHONPATH=. python benchmarks/driver_scale.py \
        --sizes 1000 5000 20000 [--num-cpus 2] [--time-limit S] [--profile DIR]

``--time-limit`` stops a run after S seconds (Tune stops on SIGINT; the row says how many
trials finished, and the throughput is over those).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
PER_FOLD = 55  # trials per dataset-fold in sweeps/scaling.yaml (and in the run shape)


def mirror_datasets(data_dir: str) -> list[str]:
    """The reference-study datasets the mirror holds, in suite order."""
    from engine.data.tabarena import find_table
    from engine.data.tabarena_meta import suite_tasks

    return [t.dataset for t in suite_tasks("reference-study") if find_table(Path(data_dir), t.name)]


def shape(target: int, n_mirror: int) -> tuple[int, int]:
    """(datasets, folds) giving at least ``target`` trials at 55 per dataset-fold."""
    folds = math.ceil(target / (n_mirror * PER_FOLD))
    return math.ceil(target / (PER_FOLD * folds)), folds


def plan_raw(names: list[str], folds: int, storage: str) -> dict[str, Any]:
    """sweeps/scaling.yaml over ``names`` x ``folds`` (kfold: a mirror has no task splits)."""
    raw = yaml.safe_load((REPO / "sweeps" / "scaling.yaml").read_text())
    raw.update(datasets=names, folds=folds, outer_folds=max(10, folds), split="kfold",
               storage=storage)
    return raw


def run_raw(names: list[str], folds: int, storage: str) -> dict[str, Any]:
    """The same dataset-folds, 55 near-free trials each (finetune + tableaugment x 54 scales)."""
    raw = plan_raw(names, folds, storage)
    raw.update(name="driver_scale", methods=["finetune", "tableaugment"], n_train=64,
               grid={"synthetic_scale": [0.25 * i for i in range(1, 55)], "mix_ratio": [0.5]},
               model={"name": "bench-constant"},
               finetune={"steps": 1, "eval_every": 1, "patience": 1, "episode_rows": 32},
               resources={"generator_cpus": 1, "trial_cpus": 1, "trial_gpus": 0})
    return raw


def measure(target: int, num_cpus: int, time_limit: float, profile: str | None) -> dict:
    """One size, in this process: plan, run, write; returns the row of the table."""
    import ray

    from engine.execution.orchestrate import run_sweep
    from engine.plan.sweep_plan import make_plan
    from engine.spec.sweep_file import parse_spec
    from engine.storage.store import ResultsBook, SweepStore

    names = mirror_datasets(os.environ["CAUSALMIX_DATA"])
    n_ds, folds = shape(target, len(names))
    storage = tempfile.mkdtemp(prefix="driver-scale-")
    t0 = time.perf_counter()
    plan = make_plan(parse_spec(plan_raw(names[:n_ds], folds, storage)))
    plan_s = time.perf_counter() - t0
    spec = parse_spec(run_raw(names[:n_ds], folds, storage))
    ids = [t.trial_id for t in make_plan(spec).trials]
    ray.init(num_cpus=num_cpus, logging_level="WARNING", log_to_driver=False)
    if time_limit > 0:
        threading.Timer(time_limit, os.kill, (os.getpid(), signal.SIGINT)).start()
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    _profiled(profile, target, lambda: run_sweep(spec, report=False))
    run_s, cpu_s = time.perf_counter() - t0, _cpu_seconds() - cpu0
    ray.shutdown()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    book = ResultsBook(SweepStore(spec.sweep_dir), ids)
    finished = len(book.rows)
    ok = sum(r.get("status") == "ok" for r in book.rows.values())
    steady = steady_rate(list(book.rows.values()))
    padded = _pad(book, ids)
    writes = []
    for _ in range(3):
        t0 = time.perf_counter()
        book.write()
        writes.append(time.perf_counter() - t0)
    return {"target": target, "datasets": n_ds, "folds": folds, "planned": len(plan.trials),
            "plan_s": plan_s, "run_trials": len(ids), "finished": finished, "ok": ok,
            "run_s": run_s, "trials_per_s": finished / run_s, "steady_per_s": steady,
            "driver_cpu_s": cpu_s,
            "write_s": sorted(writes)[1], "write_rows": len(book.rows), "padded": padded,
            "peak_rss_mb": rss, "storage": storage}


def steady_rate(rows: list[dict]) -> float:
    """Trials finished per second between the first and the last trial to finish (leaves out
    start-up, and the fits a stopped run still waits for)."""
    ends = sorted(r["finished_at"] for r in rows if r.get("finished_at"))
    return (len(ends) - 1) / (ends[-1] - ends[0]) if len(ends) > 1 and ends[-1] > ends[0] else 0.0


def _cpu_seconds() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def _pad(book: Any, ids: list[str]) -> bool:
    """A run stopped early: give the unfinished trials copies of finished rows, so that the
    write is timed at the planned size (the benchmark's temporary storage only). True when
    rows were copied."""
    done = [book.rows[t] for t in ids if t in book.rows]
    missing = [t for t in ids if t not in book.rows]
    if not done or not missing:
        return False
    for i, tid in enumerate(missing):
        row = done[i % len(done)]
        book.rows[tid] = {**row, "trial_id": tid}
        book.evals[tid] = [{**e, "trial_id": tid} for e in book.evals.get(row["trial_id"], [])]
    return True


def _profiled(profile: str | None, target: int, fn: Any) -> None:
    if not profile:
        fn()
        return
    import cProfile

    prof = cProfile.Profile()
    prof.enable()
    try:
        fn()
    finally:
        prof.disable()
        Path(profile).mkdir(parents=True, exist_ok=True)
        prof.dump_stats(str(Path(profile) / f"driver-{target}.prof"))


def table(rows: list[dict]) -> str:
    out = ["| trials (planned / run) | plan (s) | finished (ok) | run (s) | trials/s (run) | "
           "trials/s (steady) | driver CPU ms/trial | driver peak RSS (MB) | results write (s) |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        pad = "*" if r["padded"] else ""
        per = 1000 * r["driver_cpu_s"] / max(1, r["finished"])
        out.append(f"| {r['planned']:,} / {r['run_trials']:,} | {r['plan_s']:.2f} | "
                   f"{r['finished']:,} ({r['ok']:,}) | {r['run_s']:.0f} | "
                   f"{r['trials_per_s']:.2f} | {r.get('steady_per_s', 0.0):.2f} | {per:.0f} | "
                   f"{r['peak_rss_mb']:.0f} | "
                   f"{r['write_s']:.2f}{pad} |")
    if any(r["padded"] for r in rows):
        out.append("\n\\* run stopped by --time-limit: the write is timed at the planned "
                   "number of rows, the unfinished ones copies of finished rows "
                   "(temporary storage)")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    ap.add_argument("--num-cpus", type=int, default=2)
    ap.add_argument("--time-limit", type=float, default=0.0, help="seconds per run (0: none)")
    ap.add_argument("--profile", help="write a cProfile of each run's driver here")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("CAUSALMIX_DATA", "/work/shared/datasets")
    os.environ["CAUSALMIX_PLUGINS"] = "benchmarks.cheap_model"
    if args.one:
        row = measure(args.one, args.num_cpus, args.time_limit, args.profile)
        print("ROW " + json.dumps(row), flush=True)
        return
    rows = []
    for size in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(size), "--num-cpus", str(args.num_cpus),
               "--time-limit", str(args.time_limit)] + (["--profile", args.profile]
                                                          if args.profile else [])
        log = Path(tempfile.gettempdir()) / f"driver-scale-{size}.log"
        with open(log, "w") as fh:
            subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO)
        found = [ln for ln in log.read_text().splitlines() if ln.startswith("ROW ")]
        if not found:
            raise SystemExit(f"size {size} failed; see {log}")
        rows.append(json.loads(found[-1][4:]))
        print(f"{size}: {rows[-1]} (log {log})", flush=True)
    print("\n" + table(rows))


if __name__ == "__main__":
    main()
