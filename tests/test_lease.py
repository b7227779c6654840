"""One driver per sweep: the lease in the sweep's storage, and two real `causalmix run` of one
sweep started together."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest

from engine.core.errors import SweepLockedError
from engine.storage.lease import SweepLease
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
