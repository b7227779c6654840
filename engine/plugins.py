"""Import every module of a plug-in package so that each registers itself (one file per plug-in)."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def import_submodules(package: ModuleType, skip: tuple[str, ...] = ("base",)) -> None:
    """Import all direct submodules of ``package`` except those named in ``skip``."""
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_") or info.name in skip:
            continue
        importlib.import_module(f"{package.__name__}.{info.name}")
