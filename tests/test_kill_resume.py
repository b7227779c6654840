"""A sweep killed mid-run resumes without losing or repeating finished work (slow: real
``causalmix run`` processes, each starting its own local Ray)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from tests.conftest import REPO, small_spec, write_yaml


@pytest.mark.slow
def test_killed_sweep_resumes(tmp_path):
    spec = small_spec(tmp_path, grid={"synthetic_scale": [0.5, 1.0], "mix_ratio": [0.25, 0.5]})
    path = write_yaml(tmp_path / "kill.yaml", spec)
    sweep_dir = tmp_path / "store" / "mini"
    cmd = [sys.executable, "-m", "engine.cli", "run", str(path), "--num-cpus", "2", "--no-report"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 400
    finished: list = []
    while time.time() < deadline and len(finished) < 3 and proc.poll() is None:
        time.sleep(2)
        finished = list((sweep_dir / "trials").glob("**/result.json"))
    assert proc.poll() is None, "the sweep ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    stamps = {p: p.stat().st_mtime_ns for p in finished}
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    res = pd.read_parquet(sweep_dir / "results.parquet")
    assert len(res) == 2 * (1 + 4 + 2) and (res["status"] == "ok").all()
    for p, stamp in stamps.items():
        assert p.stat().st_mtime_ns == stamp, f"{p} was recomputed after the kill"
    assert res["trial_id"].is_unique
