"""One driver per sweep: a lease file ``<sweep>/lease.json`` (host, pid, run id, start and
heartbeat times) that a run takes before it writes anything and gives back when it ends.

On local paths taking it is atomic: the record is written to a temporary file beside it and
hard-linked to ``lease.json`` (``os.link`` fails when the name exists), so another run never sees
a lease without its content. A stale lease is taken over under ``lease.json.takeover``, created
the same way: the run that creates it reads the lease again, replaces it only if it is still the
one judged stale, and removes the lock; a run that finds the lock waits for it to go and then
reads the lease again, so of several runs that see the same stale lease one takes it and the
others say who holds the sweep. pyarrow's object-store filesystems have no conditional
write, so there a run writes its lease, waits ``SETTLE_SECONDS`` and reads it back: of two runs
that start within the same moment the later writer wins and the other one stops before writing
anything else. That is the guarantee object stores allow without a lock service; it holds for
runs started further apart than the store's write latency, which covers two shells or a
resubmitted job.

A lease is stale, and is taken over with a warning, when its pid is dead on this host or its
heartbeat is older than ``CAUSALMIX_LEASE_TIMEOUT`` seconds (default 300); the holder renews it
every ``HEARTBEAT_SECONDS``. A lease that exists but cannot be read is read again for
``READ_RETRY_SECONDS`` before it counts as unreadable (and so stale).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
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
READ_RETRY_SECONDS = 1.0
ACQUIRE_TRIES = 3  # looks at a lease that changed while this run was taking it
TAKEOVER_LOCK_SECONDS = 10.0  # a takeover lock older than this was left by a killed run


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
        for _ in range(ACQUIRE_TRIES):
            holder = self._read()
            if holder is None:
                if self._create():
                    return
                continue  # another run created it first: look at it
            reason = stale_reason(holder) if holder else "it was unreadable"
            if not reason:
                raise SweepLockedError(f"sweep '{self.sweep}' at {shown(self.path)} is held by "
                                       f"{describe(holder)}; wait for it or stop it")
            if self._take_over(holder, reason):
                return
        holder = self._read() or {}
        raise SweepLockedError(f"sweep '{self.sweep}' at {shown(self.path)} was taken at the "
                               f"same time by {describe(holder)}")

    def _read(self) -> dict[str, Any] | None:
        """The lease's record, None when there is none, ``{}`` when it stays unreadable for
        ``READ_RETRY_SECONDS`` (a write in flight on a store without atomic creates, or torn)."""
        deadline = time.monotonic() + READ_RETRY_SECONDS
        while True:
            try:
                holder = _parse(fsio.read_bytes(self.path))
            except FileNotFoundError:
                return None
            except OSError:
                if not fsio.exists(self.path):  # a store that says "missing" less precisely
                    return None
                holder = None
            if holder is not None or time.monotonic() >= deadline:
                return holder or {}
            time.sleep(0.05)

    def _warn_takeover(self, holder: dict[str, Any], reason: str) -> None:
        warnings.warn(f"taking over the lease of sweep '{self.sweep}' from "
                      f"{describe(holder) if holder else 'an unreadable lease'}: {reason}",
                      stacklevel=4)

    def _create(self) -> bool:
        """Write the lease if none exists; False when another run created it first."""
        local = fsio.local_path(self.path)
        if local is None:
            self._write()
            self._check_owner()
            return True
        return self._create_local(local)

    def _create_local(self, local: str) -> bool:
        """Create the file ``local`` holding this run's record, complete before it has its name
        (a temporary file hard-linked to it); False when it exists."""
        os.makedirs(os.path.dirname(local), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(local),
                                   prefix=f".{os.path.basename(local)}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self.record(), f)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, local)  # fails when the name exists
            except FileExistsError:
                return False
            except OSError:  # a filesystem without hard links: exclusive create, then write
                return self._create_exclusive(local)
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _create_exclusive(self, local: str) -> bool:
        try:
            fd = os.open(local, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:  # readers retry an empty file (READ_RETRY_SECONDS)
            json.dump(self.record(), f)
        return True

    def _take_over(self, holder: dict[str, Any], reason: str) -> bool:
        """Replace the stale lease ``holder``; False when another run took it over first."""
        local = fsio.local_path(self.path)
        if local is None:
            self._warn_takeover(holder, reason)
            self._write()
            self._check_owner()
            return True
        lock = f"{local}.takeover"
        if not self._create_local(lock):  # another run is taking it over: let it finish
            _wait_for_lock(lock)
            return False
        try:
            if self._read() != holder:  # replaced since it was judged stale
                return False
            self._warn_takeover(holder, reason)
            self._write()
            return True
        finally:
            os.unlink(lock)

    def _write(self) -> None:
        fsio.atomic_write_bytes(self.path, json.dumps(self.record()).encode())

    def _check_owner(self) -> None:
        """Read back after a settle interval: a later writer holds it, not this run."""
        time.sleep(SETTLE_SECONDS)
        holder = self._read() or {}
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


def _parse(data: bytes) -> dict[str, Any] | None:
    """A lease record from its bytes; None for an empty, partial or foreign file."""
    try:
        holder = json.loads(data)
    except ValueError:
        return None
    return holder if isinstance(holder, dict) and holder.get("run_id") else None


def _wait_for_lock(lock: str) -> None:
    """Until the takeover lock ``lock`` is gone; one left by a run killed mid-takeover (older
    than ``TAKEOVER_LOCK_SECONDS``) is removed."""
    deadline = time.monotonic() + TAKEOVER_LOCK_SECONDS
    while time.monotonic() < deadline:
        try:
            age = time.time() - os.stat(lock).st_mtime
        except FileNotFoundError:
            return
        if age > TAKEOVER_LOCK_SECONDS:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
            return
        time.sleep(0.02)
