"""Live progress of a sweep: one readable line at a time, and ``status.json`` for
``causalmix status`` from another shell."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from engine.storage.fsio import Location, shown
from engine.storage.lease import describe, pid_alive, stale_reason
from engine.storage.store import SweepStore, atomic_write_json, read_json

STALE_SECONDS = 120  # a status older than this means the driver is gone


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class Progress:
    """Counts of fits and trials; ``line()`` for the log, ``save()`` for ``status.json``."""

    def __init__(self, store: SweepStore, sweep: str, trials_total: int, trials_reused: int,
                 fits_total: int, fits_reused: int) -> None:
        self.store, self.sweep = store, sweep
        self.started = time.time()
        self.fits = {"total": fits_total, "reused": fits_reused, "done": 0, "running": 0,
                     "failed": 0}
        self.trials = {"total": trials_total, "reused": trials_reused, "done": 0,
                       "running": 0, "failed": 0}
        self.last_save = 0.0

    def eta(self) -> float | None:
        finished = self.trials["done"] + self.trials["failed"]
        left = self.trials["total"] - self.trials["reused"] - finished
        if finished == 0:
            return None
        return (time.time() - self.started) / finished * left

    def snapshot(self) -> dict[str, Any]:
        return {"sweep": self.sweep, "host": socket.gethostname(), "pid": os.getpid(),
                "started_at": self.started, "updated_at": time.time(), "fits": dict(self.fits),
                "trials": dict(self.trials), "eta_seconds": self.eta(), "finished": False}

    def line(self) -> str:
        return format_status(self.snapshot())

    def save(self, force: bool = False, finished: bool = False) -> None:
        if force or finished or time.monotonic() - self.last_save > 5:
            snap = self.snapshot()
            snap["finished"] = finished
            atomic_write_json(self.store.status_path, snap)
            self.last_save = time.monotonic()


def format_status(snap: dict[str, Any]) -> str:
    f, t = snap["fits"], snap["trials"]
    elapsed = snap["updated_at"] - snap["started_at"]
    eta = snap.get("eta_seconds")
    return (f"fits {f['done'] + f['reused']}/{f['total']} done ({f['running']} running, "
            f"{f['failed']} failed) | trials {t['done'] + t['reused']}/{t['total']} done "
            f"({t['running']} running, {t['failed']} failed) | elapsed {_duration(elapsed)}"
            f" | ETA {'?' if eta is None else _duration(eta)}")


STATE_EXIT = {"finished": 0, "running": 4, "stale": 5}
"""``causalmix status`` exit code per state, so that a shell script can wait on a sweep."""


def sweep_state(snap: dict[str, Any], lease: dict[str, Any] | None = None) -> str:
    """``finished``, ``running``, or ``stale``: the driver is gone (its pid is dead on this host,
    or it has not written for ``STALE_SECONDS``) before the sweep finished. The sweep's lease,
    when there is one, decides over ``status.json``: a live holder is a driver at work (running,
    also while it is quiet or before it has written progress), a stale one is a driver gone."""
    if lease and not stale_reason(lease):
        return "running"
    if snap.get("finished"):
        return "finished"
    if lease:
        return "stale"
    if snap.get("host") == socket.gethostname() and not pid_alive(int(snap.get("pid") or 0)):
        return "stale"
    return "stale" if time.time() - snap["updated_at"] > STALE_SECONDS else "running"


def read_status(sweep_dir: Location) -> tuple[str, str]:
    """(state, text): the state of a running or finished sweep and its status in two lines."""
    from engine.core.errors import CausalMixError

    store = SweepStore(sweep_dir)
    snap = read_json(store.status_path)
    lease = read_json(store.lease_path)
    lease = lease if isinstance(lease, dict) and lease.get("run_id") else None
    held = lease is not None and not stale_reason(lease)
    if not snap:
        if held:
            return "running", (f"{lease.get('sweep')}: running (driver {describe(lease)}; "
                               "no progress written yet)")
        raise CausalMixError(f"{shown(sweep_dir)}: no status.json (not a sweep folder, or a sweep "
                             "that never started)")
    state = sweep_state(snap, lease)
    shown_state = state
    if held and (snap.get("finished") or sweep_state(snap) != "running"):
        age = _duration(time.time() - snap["updated_at"])
        shown_state = f"running (driver {describe(lease)}; progress below written {age} ago)"
    elif state == "stale":
        age = _duration(time.time() - snap["updated_at"])
        shown_state = (f"stale (driver {snap.get('host')}:{snap.get('pid')} gone, last update "
                       f"{age} ago; rerun the sweep to resume)")
    return state, f"{snap['sweep']}: {shown_state}\n{format_status(snap)}"
