"""One driver per sweep: a lease file ``<sweep>/lease.json`` (host, pid, run id, start and
heartbeat times) that a run takes before it writes anything and gives back when it ends.

Taking it is atomic on local paths (``O_CREAT | O_EXCL``; a stale lease is replaced by an atomic
rename and read back). pyarrow's object-store filesystems have no conditional write, so there a
run writes its lease, waits ``SETTLE_SECONDS`` and reads it back: of two runs that start within
the same moment the later writer wins and the other one stops before writing anything else.
That is the guarantee object stores allow without a lock service; it holds for runs started
further apart than the store's write latency, which covers two shells or a resubmitted job.

A lease is stale, and is taken over with a warning, when its pid is dead on this host or its
heartbeat is older than ``CAUSALMIX_LEASE_TIMEOUT`` seconds (default 300); the holder renews it
every ``HEARTBEAT_SECONDS``.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
import warnings
from typing import Any

from engine.core.errors import SweepLockedError
from engine.storage import fsio
from engine.storage.fsio import Location, shown

HEARTBEAT_SECONDS = 15.0
SETTLE_SECONDS = 2.0


def lease_timeout() -> float:
    return float(os.environ.get("CAUSALMIX_LEASE_TIMEOUT", "300"))


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs on this host (a process of another user counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_reason(holder: dict[str, Any], now: float | None = None) -> str:
    """'' while ``holder`` is live, else why its lease may be taken over."""
    age = (now or time.time()) - float(holder.get("heartbeat", 0))
    if holder.get("host") == socket.gethostname() and not pid_alive(int(holder.get("pid", 0))):
        return f"its pid {holder.get('pid')} is gone"
    if age > lease_timeout():
        return f"no heartbeat for {age:.0f} s"
    return ""


def describe(holder: dict[str, Any]) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    beat = time.time() - float(holder.get("heartbeat", 0))
    return (f"{holder.get('host')} pid {holder.get('pid')} (run {holder.get('run_id')}, since "
            f"{started}, heartbeat {beat:.0f} s ago)")


class SweepLease:
    """``with SweepLease(path, sweep):`` holds the sweep for this process, renewed in the
    background; a second holder gets ``SweepLockedError`` naming the first."""

    def __init__(self, path: Location, sweep: str) -> None:
        self.path, self.sweep = path, sweep
        self.run_id = uuid.uuid4().hex[:12]
        self.started = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self) -> dict[str, Any]:
        return {"sweep": self.sweep, "host": socket.gethostname(), "pid": os.getpid(),
                "run_id": self.run_id, "started": self.started, "heartbeat": time.time()}

    def __enter__(self) -> SweepLease:
        self.acquire()
        self._thread = threading.Thread(target=self._beat, name="causalmix-lease", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.release()

    def acquire(self) -> None:
        holder = fsio.read_json(self.path)
        if holder is None and self._create():
            return
        holder = fsio.read_json(self.path) or {}
        reason = stale_reason(holder) if holder else "it was unreadable"
        if not reason:
            raise SweepLockedError(f"sweep '{self.sweep}' at {shown(self.path)} is held by "
                                   f"{describe(holder)}; wait for it or stop it")
        warnings.warn(f"taking over the lease of sweep '{self.sweep}' from "
                      f"{describe(holder) if holder else 'an unreadable lease'}: {reason}",
                      stacklevel=2)
        self._write()
        self._check_owner()

    def _create(self) -> bool:
        """Write the lease if none exists; False when another run created it first."""
        local = fsio.local_path(self.path)
        if local is None:
            self._write()
            self._check_owner()
            return True
        os.makedirs(os.path.dirname(local), exist_ok=True)
        try:
            fd = os.open(local, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump(self.record(), f)
        return True

    def _write(self) -> None:
        fsio.atomic_write_bytes(self.path, json.dumps(self.record()).encode())

    def _check_owner(self) -> None:
        """Read back after a settle interval: a later writer holds it, not this run."""
        if fsio.local_path(self.path) is None:
            time.sleep(SETTLE_SECONDS)
        holder = fsio.read_json(self.path) or {}
        if holder.get("run_id") != self.run_id:
            raise SweepLockedError(f"sweep '{self.sweep}' at {shown(self.path)} was taken at the "
                                   f"same time by {describe(holder)}")

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            holder = fsio.read_json(self.path) or {}
            if holder.get("run_id") not in (None, self.run_id):
                warnings.warn(f"sweep '{self.sweep}': the lease was taken over by "
                              f"{describe(holder)}", stacklevel=1)
                return
            try:
                self._write()
            except OSError as exc:  # a storage hiccup: the next beat tries again
                warnings.warn(f"lease heartbeat failed: {fsio.first_line(exc)}", stacklevel=1)

    def release(self) -> None:
        holder = fsio.read_json(self.path) or {}
        if holder.get("run_id") == self.run_id:
            fsio.delete(self.path)
