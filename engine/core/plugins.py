"""Import every module of a plug-in package so that each registers itself (one file per plug-in).

``CAUSALMIX_PLUGINS`` (comma-separated module names) names extra modules that register
plug-ins from outside the package; they are imported with every registry, on the driver and on
each Ray worker (which inherits the variable), e.g. ``CAUSALMIX_PLUGINS=benchmarks.cheap_model``.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from types import ModuleType

PLUGINS_ENV = "CAUSALMIX_PLUGINS"
_DONE: set[tuple[str, tuple[str, ...]]] = set()  # packages whose submodules are imported


def import_submodules(package: ModuleType, skip: tuple[str, ...] = ("base",)) -> None:
    """Import all direct submodules of ``package`` except those named in ``skip``, then the
    modules named in ``$CAUSALMIX_PLUGINS``. The package's folder is listed once per process
    (registries call this on every lookup; planning does thousands)."""
    done = (package.__name__, skip)
    if done not in _DONE:
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_") or info.name in skip:
                continue
            importlib.import_module(f"{package.__name__}.{info.name}")
        _DONE.add(done)
    import_extra_plugins()


def import_extra_plugins() -> None:
    """Import the modules named in ``$CAUSALMIX_PLUGINS`` (each registers what it defines)."""
    for name in os.environ.get(PLUGINS_ENV, "").split(","):
        if name.strip():
            importlib.import_module(name.strip())
