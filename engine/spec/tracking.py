"""The ``tracking:`` section of a sweep file: log every trial to MLflow or Weights & Biases.

    tracking:
      mlflow: {tracking_uri: "file:/abs/path/mlruns", experiment: my-exp}
    # or
    tracking:
      wandb: {project: my-project, group: my-group, mode: offline, dir: /abs/path}

Exactly one backend. The MLflow experiment and the W&B group default to the sweep name. Tracking
only observes: it is no input of any cache key, so changing it never reruns a stored trial.
The callbacks themselves are built by ``engine.execution.tracking``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.core.errors import MissingExtraError, SpecError

BACKENDS = ("mlflow", "wandb")
FIELDS = {"mlflow": ("tracking_uri", "experiment"), "wandb": ("project", "group", "mode", "dir")}
WANDB_MODES = ("online", "offline")
_FEATURES = {"mlflow": "experiment tracking to MLflow",
             "wandb": "experiment tracking to Weights & Biases"}


@dataclass(frozen=True)
class TrackingSpec:
    """Where a sweep's trials are logged: one backend and its settings (unused ones None)."""

    backend: str  # one of BACKENDS
    tracking_uri: str | None = None  # mlflow: None = MLFLOW_TRACKING_URI or MLflow's default
    experiment: str | None = None  # mlflow experiment name
    project: str | None = None  # wandb: None = WANDB_PROJECT
    group: str | None = None  # wandb group
    mode: str | None = None  # wandb: online | offline; None = WANDB_MODE or online
    dir: str | None = None  # wandb: folder of its run files; None = WANDB_DIR or ./wandb

    def shown(self) -> str:
        """One line for the run log: the backend and where it logs."""
        if self.backend == "mlflow":
            return (f"MLflow experiment '{self.experiment}' at "
                    f"{self.tracking_uri or 'the default tracking URI'}")
        return (f"W&B project '{self.project or os.environ.get('WANDB_PROJECT')}', group "
                f"'{self.group}'{f' ({self.mode})' if self.mode else ''}")


def parse_tracking(v: Any, raw: Any, sweep_name: str) -> TrackingSpec | None:
    """Validate the ``tracking`` section (``v`` is the spec's field validator); None if absent."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        raise SpecError(v.source, "tracking", f"expected a mapping with one of {list(BACKENDS)}")
    extra = sorted(str(k) for k in set(raw) - set(BACKENDS))
    if extra:
        raise SpecError(v.source, f"tracking.{extra[0]}",
                        f"unknown field (allowed: {', '.join(BACKENDS)})")
    if len(raw) > 1:
        raise SpecError(v.source, "tracking", "give one backend, mlflow or wandb, not both")
    backend = next(iter(raw))
    where = f"tracking.{backend}"
    section = raw[backend] if raw[backend] is not None else {}
    if not isinstance(section, dict):
        raise SpecError(v.source, where, f"expected a mapping ({', '.join(FIELDS[backend])})")
    extra = sorted(str(k) for k in set(section) - set(FIELDS[backend]))
    if extra:
        raise SpecError(v.source, f"{where}.{extra[0]}",
                        f"unknown field (allowed: {', '.join(FIELDS[backend])})")
    if not installed(backend):
        raise SpecError(v.source, where, str(MissingExtraError(_FEATURES[backend], backend,
                                                               backend)))
    if backend == "mlflow":
        return _mlflow(v, section, where, sweep_name)
    return _wandb(v, section, where, sweep_name)


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _optional(v: Any, d: dict, key: str, where: str) -> str | None:
    return v.string(d, key, where=where) if d.get(key) is not None else None


def _mlflow(v: Any, d: dict, where: str, sweep_name: str) -> TrackingSpec:
    uri = _optional(v, d, "tracking_uri", where)
    if uri is not None and uri.startswith(("/", ".", "~")):  # a path: the file store there
        uri = Path(uri).expanduser().resolve().as_uri()
    experiment = _optional(v, d, "experiment", where) or sweep_name
    return TrackingSpec(backend="mlflow", tracking_uri=uri, experiment=experiment)


def _wandb(v: Any, d: dict, where: str, sweep_name: str) -> TrackingSpec:
    project = _optional(v, d, "project", where)
    if project is None and not os.environ.get("WANDB_PROJECT"):
        raise SpecError(v.source, f"{where}.project", "required (or set WANDB_PROJECT), "
                        "expected a string")
    mode = v.choice(d, "mode", WANDB_MODES, default="online", where=where) \
        if d.get("mode") is not None else None
    folder = _optional(v, d, "dir", where)
    return TrackingSpec(backend="wandb", project=project,
                        group=_optional(v, d, "group", where) or sweep_name, mode=mode,
                        dir=str(Path(folder).expanduser().resolve()) if folder else None)
