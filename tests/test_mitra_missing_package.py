"""The Mitra backend's missing-package message names the package that is really missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _message_with_blocked(module: str) -> str:
    """Block ``module`` (``sys.modules[module] = None`` makes its import fail) in a fresh
    interpreter, build the Mitra network class and return the error message."""
    code = (f"import sys; sys.modules[{module!r}] = None\n"
            "from engine.models.mitra import tab2d_class\n"
            "try:\n    tab2d_class()\nexcept Exception as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@pytest.mark.skipif(not _installed("autogluon.tabular"), reason="autogluon.tabular missing")
def test_missing_dependency_of_autogluon_is_named():
    msg = _message_with_blocked("frozendict")
    assert "'frozendict'" in msg and "autogluon" not in msg.split("install")[0], msg


def test_missing_autogluon_is_named():
    msg = _message_with_blocked("autogluon")
    assert "'autogluon.tabular'" in msg, msg
