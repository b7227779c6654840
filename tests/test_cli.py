"""The command line's contract: --version, exit codes in --help, status exit code by state."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from engine import __version__
from engine.cli import main
from engine.storage.progress import STALE_SECONDS
from engine.storage.store import SweepStore, atomic_write_json
from tests.conftest import REPO


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"causalmix {__version__}"


def test_help_lists_the_exit_codes():
    out = subprocess.run([sys.executable, "-m", "engine.cli", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=120).stdout
    codes = [line.split()[0] for line in out.split("exit status:")[1].splitlines() if line.strip()]
    assert codes == ["0", "1", "2", "3", "4", "5", "130"]


COUNTS = {"total": 2, "reused": 0, "done": 1, "running": 1, "failed": 0}


def _status(tmp_path, **fields) -> dict:
    now = time.time()
    snap = {"sweep": "s", "host": socket.gethostname(), "pid": os.getpid(), "started_at": now - 60,
            "updated_at": now, "fits": dict(COUNTS), "trials": dict(COUNTS),
            "eta_seconds": None, "finished": False, **fields}
    atomic_write_json(SweepStore(tmp_path / "s").status_path, snap)
    return snap


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize(("fields", "code", "word"), [
    ({"finished": True}, 0, "finished"),
    ({}, 4, "running"),  # this process is the driver: alive, fresh heartbeat
    ({"pid": "dead"}, 5, "stale"),  # the driver's pid is gone on this host
    ({"host": "elsewhere", "updated_at": time.time() - STALE_SECONDS - 5}, 5, "stale"),
    ({"host": "elsewhere"}, 4, "running"),  # another host's driver, recent heartbeat
])
def test_status_exit_code_by_state(tmp_path, capsys, fields, code, word):
    if fields.get("pid") == "dead":
        fields = {**fields, "pid": _dead_pid()}
    _status(tmp_path, **fields)
    assert main(["status", str(tmp_path / "s")]) == code
    assert capsys.readouterr().out.splitlines()[0].startswith(f"s: {word}")
