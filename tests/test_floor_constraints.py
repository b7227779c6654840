"""requirements/floor-constraints.txt (what .ci/floor-smoke installs) pins every runtime
dependency of pyproject.toml at its floor, so the floor check tests the floors that are declared."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import REPO


def test_floor_constraints_pin_every_declared_floor():
    pins = {}
    for line in (REPO / "requirements" / "floor-constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version and "[" not in name, f"not a plain == pin: {line}"
            pins[canonicalize_name(name)] = Version(version)
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    declared = set()
    for dep in deps:
        req = Requirement(dep)
        name = canonicalize_name(req.name)
        declared.add(name)
        if name == "torch":  # only the local CPU wheel torch==2.13.0 installs here
            assert name not in pins
            continue
        floors = [Version(s.version) for s in req.specifier if s.operator == ">="]
        assert floors == [pins.get(name)], f"{dep}: floor-constraints pins {pins.get(name)}"
    assert set(pins) <= declared, f"pins for undeclared packages: {set(pins) - declared}"
