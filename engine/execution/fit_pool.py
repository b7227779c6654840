"""Generator fits as Ray tasks, started when the sweep starts, with bounded concurrency.

The pool is polled from the driver (by Tune's step callback and by the trial searcher): each
poll collects finished fits and submits queued ones while fewer than ``max_in_flight`` run.
A fit task whose worker dies is retried by Ray (``max_retries``); a fit that fails for a
data reason is recorded in its ``fit.json`` and fails only its own trials.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from engine.fits.generator_fits import run_fit
from engine.plan.sweep_plan import FitJob

FitDone = Callable[[FitJob, dict[str, Any]], None]


def _fit_task(job: FitJob, threads: int) -> dict[str, Any]:
    return run_fit(job, threads=threads)


class FitPool:
    """Runs ``fits`` on Ray; ``state(out_dir)`` is 'ready', 'failed' or 'pending'."""

    def __init__(self, fits: list[FitJob], cpus: float, max_in_flight: int,
                 extra_resources: dict[str, float], on_done: FitDone) -> None:
        import ray

        self.queue: deque[FitJob] = deque(fits)
        self.running: dict[Any, FitJob] = {}
        self.ready: set[str] = set()
        self.failed: dict[str, str] = {}
        self.total = len(fits)
        self.max_in_flight = max(1, max_in_flight)
        self.on_done = on_done
        self.threads = max(1, int(cpus))
        self.remote = ray.remote(_fit_task).options(
            num_cpus=cpus, resources=extra_resources or None, max_retries=2)

    def state(self, out_dir: str) -> str:
        if out_dir in self.ready:
            return "ready"
        return "failed" if out_dir in self.failed else "pending"

    @property
    def finished(self) -> bool:
        return not self.queue and not self.running

    def counts(self) -> dict[str, int]:
        return {"total": self.total, "done": len(self.ready), "failed": len(self.failed),
                "running": len(self.running), "queued": len(self.queue)}

    def poll(self, timeout: float = 0.0) -> list[FitJob]:
        """Collect finished fits (waiting up to ``timeout`` s for one), submit queued ones;
        returns the fits that finished in this poll."""
        import ray

        finished: list[FitJob] = []
        if self.running:
            done, _ = ray.wait(list(self.running), num_returns=len(self.running),
                               timeout=timeout)
            for ref in done:
                finished.append(self._collect(ref))
        while len(self.running) < self.max_in_flight:
            job = self._next_startable()
            if job is None:
                break
            self.running[self.remote.remote(job, self.threads)] = job
        return finished

    def _next_startable(self) -> FitJob | None:
        """The first queued fit whose prerequisite fits (a ``mixed`` fit's members) ended."""
        waiting = {j.out_dir for j in self.queue} | {j.out_dir for j in self.running.values()}
        for i, job in enumerate(self.queue):
            if not waiting.intersection(job.after):
                del self.queue[i]
                return job
        return None

    def _collect(self, ref: Any) -> FitJob:
        import ray

        job = self.running.pop(ref)
        try:
            summary = ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - worker died past its retries; one line
            summary = {"status": "error", "error": f"fit worker failed: {type(exc).__name__}"}
        if summary.get("status") == "ok":
            self.ready.add(job.out_dir)
        else:
            self.failed[job.out_dir] = summary.get("error", "unknown error")
        self.on_done(job, summary)
        return job
