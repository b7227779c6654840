"""Driver memory per finished trial of a bare Ray Tune run, without this engine.

A function trainable reports ~50 metrics twice, on reused actors, from a searcher that hands
out ``--trials`` configs; each finished trial's metric history is released (as
``engine.execution.tune_run.release_metric_history`` does). Prints the driver's resident size after
300 and after all trials, and the growth per trial between them: what Tune itself keeps per
trial of a run, the reason a sweep runs as Tune runs of at most ``TUNE_PART`` trials.

    python benchmarks/tune_memory.py --trials 1500
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time

import ray
from ray import tune
from ray.tune.search import Searcher

FIRST = 300  # the resident size is compared from here on (past start-up)


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20


class Counting(Searcher):
    def __init__(self, n: int) -> None:
        super().__init__(metric="m0", mode="max")
        self.n, self.i = n, 0

    def suggest(self, trial_id: str) -> dict | None:
        if self.i >= self.n:
            return Searcher.FINISHED
        self.i += 1
        return {"trial_id": f"t{self.i}"}

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        pass


def trainable(config: dict) -> None:
    tune.report({f"m{i}": float(i) for i in range(50)})
    tune.report({f"m{i}": float(i) for i in range(50)} | {"final": True})


class Marks(tune.Callback):
    def __init__(self, n: int) -> None:
        self.n, self.done, self.marks = n, 0, {}

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self.done += 1
        trial.run_metadata.metric_analysis = {}
        trial.run_metadata.metric_n_steps = {}
        if self.done in (FIRST, self.n):
            self.marks[self.done] = rss_mb()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=1500)
    args = ap.parse_args()
    n = max(args.trials, FIRST + 100)
    ray.init(num_cpus=2, log_to_driver=False, logging_level="WARNING")
    marks, t0 = Marks(n), time.perf_counter()
    tune.Tuner(tune.with_resources(trainable, {"cpu": 1}),
               tune_config=tune.TuneConfig(search_alg=Counting(n), num_samples=n,
                                           reuse_actors=True),
               run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(prefix="tune-mem-"),
                                         verbose=0, callbacks=[marks])).fit()
    seconds = time.perf_counter() - t0
    gc.collect()
    per = (marks.marks[n] - marks.marks[FIRST]) / (n - FIRST) * 1024
    print("| trials | RSS after 300 (MB) | RSS after all (MB) | after fit() (MB) | KiB per trial "
          "| trials/s |\n|---|---|---|---|---|---|")
    print(f"| {n:,} | {marks.marks[FIRST]:.0f} | {marks.marks[n]:.0f} | {rss_mb():.0f} | "
          f"{per:.1f} | {n / seconds:.1f} |")


if __name__ == "__main__":
    main()
