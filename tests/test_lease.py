"""One driver per sweep: the lease in the sweep's storage, and two real `causalmix run` of one
sweep started together."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import warnings

import pandas as pd
import pytest

from engine.cli import main
from engine.core.errors import SweepLockedError
from engine.storage.lease import SweepLease
from engine.storage.progress import STALE_SECONDS
from engine.storage.store import SweepStore, atomic_write_json
from tests.conftest import REPO, small_spec, write_yaml


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _foreign(path, **fields) -> None:
    holder = {"sweep": "s", "host": socket.gethostname(), "pid": _dead_pid(), "run_id": "other",
              "started": time.time() - 60, "heartbeat": time.time(), **fields}
    path.write_text(json.dumps(holder))


def test_a_held_lease_refuses_a_second_driver(tmp_path):
    path = tmp_path / "lease.json"
    with SweepLease(path, "s") as lease:
        assert json.loads(path.read_text())["run_id"] == lease.run_id
        with pytest.raises(SweepLockedError) as exc:
            SweepLease(path, "s").acquire()
        msg = str(exc.value)
        assert "\n" not in msg and socket.gethostname() in msg and "pid" in msg
    assert not path.exists(), "the lease is given back when the run ends"


@pytest.mark.parametrize(("fields", "taken"), [
    ({}, True),  # this host, dead pid
    ({"host": "elsewhere", "pid": 1, "heartbeat": time.time() - 10_000}, True),  # old heartbeat
    ({"host": "elsewhere", "pid": 1}, False),  # another host's live driver
])
def test_a_stale_lease_is_taken_over_with_a_warning(tmp_path, fields, taken):
    path = tmp_path / "lease.json"
    _foreign(path, **fields)
    lease = SweepLease(path, "s")
    if not taken:
        with pytest.raises(SweepLockedError, match="elsewhere pid 1"):
            lease.acquire()
        return
    with pytest.warns(UserWarning, match="taking over the lease"):
        lease.acquire()
    assert json.loads(path.read_text())["run_id"] == lease.run_id
    lease.release()
    assert not path.exists()


def test_two_runs_of_one_sweep_started_together(tmp_path):
    path = write_yaml(tmp_path / "twice.yaml", small_spec(tmp_path, methods=["finetune"]))
    cmd = [sys.executable, "-m", "engine.cli", "run", str(path), "--num-cpus", "2", "--no-report"]
    procs = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in outs)
    assert codes == [0, 2], outs
    err = next(e for code, e in outs if code == 2)
    lines = [ln for ln in err.splitlines() if ln.startswith("causalmix: error:")]
    assert len(lines) == 1 and "is held by" in lines[0] and socket.gethostname() in lines[0]
    res = pd.read_parquet(tmp_path / "store" / "mini" / "results.parquet")
    assert len(res) == 2 and res["trial_id"].is_unique and (res["status"] == "ok").all()
    assert not (tmp_path / "store" / "mini" / "lease.json").exists()


def test_a_killed_drivers_lease_is_taken_over_by_the_next_run(tmp_path):
    path = write_yaml(tmp_path / "again.yaml", small_spec(tmp_path, methods=["finetune"]))
    _foreign_dir = tmp_path / "store" / "mini"
    _foreign_dir.mkdir(parents=True)
    _foreign(_foreign_dir / "lease.json")  # what a SIGKILLed driver leaves behind
    cmd = [sys.executable, "-m", "engine.cli", "run", str(path), "--num-cpus", "2", "--no-report"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "taking over the lease" in done.stderr
    assert len(pd.read_parquet(_foreign_dir / "results.parquet")) == 2


def _race(path, drivers: int = 4) -> list[SweepLease]:
    """``drivers`` threads acquire the lease at ``path`` at once; the ones that got it."""
    leases = [SweepLease(path, "s") for _ in range(drivers)]
    start, won, errors = threading.Barrier(drivers), [], []

    def drive(lease: SweepLease) -> None:
        start.wait()
        try:
            lease.acquire()
            won.append(lease)
        except SweepLockedError as exc:
            assert "held by" in str(exc) or "taken at the same time" in str(exc)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=drive, args=(lease,)) for lease in leases]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the stale lease's takeover warning
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors
    return won


@pytest.mark.parametrize("stale", [False, True], ids=["fresh", "stale"])
def test_drivers_racing_for_a_lease_never_both_get_it(tmp_path, stale):
    """Fresh: no one reads a lease file before its content is there (and takes it over as
    unreadable). Stale: of the drivers that all see a dead driver's lease one takes it over."""
    for attempt in range(25):
        path = tmp_path / f"try{attempt}" / "lease.json"
        path.parent.mkdir()
        if stale:
            _foreign(path)
        won = _race(path)
        assert len(won) == 1, f"attempt {attempt}: {len(won)} drivers hold the lease"
        assert json.loads(path.read_text())["run_id"] == won[0].run_id
        assert os.listdir(path.parent) == ["lease.json"], "no temporary or moved-aside file left"
        won[0].release()


def test_a_lease_being_written_is_read_again_not_taken_over(tmp_path):
    """An empty lease file (a writer between create and write) is not judged unreadable at once."""
    path = tmp_path / "lease.json"
    path.write_text("")
    holder = SweepLease(path, "s")
    writer = threading.Timer(0.3, lambda: path.write_text(json.dumps(holder.record())))
    writer.start()
    with pytest.raises(SweepLockedError, match="is held by"):
        SweepLease(path, "s").acquire()
    writer.join()
    assert json.loads(path.read_text())["run_id"] == holder.run_id


def _status_json(sweep_dir, **fields) -> None:
    now = time.time()
    counts = {"total": 2, "reused": 0, "done": 1, "running": 1, "failed": 0}
    atomic_write_json(SweepStore(sweep_dir).status_path,
                      {"sweep": "s", "host": "elsewhere", "pid": 1, "started_at": now - 600,
                       "updated_at": now, "fits": counts, "trials": dict(counts),
                       "eta_seconds": None, "finished": False, **fields})


@pytest.mark.parametrize(("status", "word"), [
    ({"updated_at": time.time() - STALE_SECONDS - 60}, "running"),  # quiet driver, live lease
    ({"finished": True}, "running"),  # a finished sweep that a new run resumes
    (None, "running"),  # a run that has not written its progress yet
])
def test_status_is_running_while_a_live_driver_holds_the_lease(tmp_path, capsys, status, word):
    sweep_dir = tmp_path / "s"
    sweep_dir.mkdir()
    if status is not None:
        _status_json(sweep_dir, **status)
    with SweepLease(SweepStore(sweep_dir).lease_path, "s"):
        assert main(["status", str(sweep_dir)]) == 4
    out = capsys.readouterr().out
    assert out.startswith(f"s: {word}") and socket.gethostname() in out, out


def test_status_is_stale_when_the_lease_holder_is_gone(tmp_path, capsys):
    sweep_dir = tmp_path / "s"
    sweep_dir.mkdir()
    _status_json(sweep_dir)  # recent, from another host: alone it would read as running
    _foreign(sweep_dir / "lease.json")  # this host, dead pid
    assert main(["status", str(sweep_dir)]) == 5
    assert capsys.readouterr().out.startswith("s: stale")
