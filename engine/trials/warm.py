"""What a warm trial worker keeps across trials: the sweep's jobs, loaded models and zero-shot
baselines.

Tune reuses trial actors (``reuse_actors=True``), so a worker process runs many trials. A model
is loaded once per (spec, device) and its pretrained weights are restored before every trial.
The zero-shot baseline of a (dataset-fold, model, preprocessing) is the same for every method
and grid point: it is computed once, kept in the process and stored in the sweep folder, so
that other workers and later runs reuse it.
"""

from __future__ import annotations

import json
from typing import Any

from engine.models.base import InContextClassifier
from engine.storage.store import SweepStore, atomic_write_json, read_json
from engine.trials.finetune import EvalSplit, Evaluation, evaluate

_JOBS: dict[str, Any] = {}  # object ref (hex) -> the sweep's jobs; the latest run's only
_MODELS: dict[str, tuple[InContextClassifier, dict[str, Any]]] = {}
_BASELINES: dict[str, Evaluation] = {}
BASELINE_INPUTS = ("version", "fold", "model", "preprocessing", "device")


class SharedJobs:
    """The sweep's typed jobs, put in Ray's object store once and read once per worker.

    Tune's ``with_parameters`` calls ``ray.get`` for every trial, which unpickles the whole
    object each time: for a dict of 20,625 jobs 0.34 s per trial, so a sweep paid time
    quadratic in its trials. This small holder travels instead, and each worker process
    keeps the jobs it read (keyed by the object ref, so a new run is read afresh)."""

    def __init__(self, jobs: Any) -> None:
        import ray

        self.ref = ray.put(jobs)

    def get(self) -> Any:
        key = self.ref.hex()
        if key not in _JOBS:
            import ray

            _JOBS.clear()
            _JOBS[key] = ray.get(self.ref)
        return _JOBS[key]


def warm_model(spec: dict[str, Any], device: str) -> InContextClassifier:
    """The model of ``spec`` on ``device`` with its pretrained weights (loaded once)."""
    from engine.models import load_model

    key = json.dumps([spec, device], sort_keys=True, default=str)
    if key not in _MODELS:
        options = {k: v for k, v in spec.items() if k != "name"}
        model = load_model(spec["name"], device=device, **options)
        _MODELS[key] = (model, model.state_dict())
    model, pristine = _MODELS[key]
    model.load_state_dict(pristine)
    model.set_categorical(None)  # the previous trial's table is not this one's
    model.module.eval()
    return model


def baseline_key(inputs: dict[str, Any]) -> str:
    from engine.spec.cache_keys import digest

    return digest({k: inputs.get(k) for k in BASELINE_INPUTS})


def _has_all_metrics(stored: dict[str, Any], parts: tuple[str, ...] = ("val", "test")) -> bool:
    """A stored baseline written before a metric was added is computed again."""
    from engine.storage.results_schema import METRICS

    return all(set(METRICS) <= set(stored.get(part) or {}) for part in parts)


def shared_baseline(store: SweepStore, key: str, model: InContextClassifier, val: EvalSplit,
                    test: EvalSplit, n_classes: int, ood: EvalSplit | None = None,
                    ) -> tuple[Evaluation, bool]:
    """The zero-shot evaluation (step 0) and whether it was computed here (``ood``: the
    out-of-domain test rows of a shifted fold, stored beside val and test)."""
    if key in _BASELINES:
        return _BASELINES[key], False
    path = store.baseline_path(key)
    stored = read_json(path)
    parts = ("val", "test", "ood") if ood is not None else ("val", "test")
    if stored and stored.get("key") == key and _has_all_metrics(stored, parts):
        ev = Evaluation(0, float("nan"), stored["val"], stored["test"], stored.get("ood"))
        _BASELINES[key] = ev
        return ev, False
    ev = Evaluation(0, float("nan"), evaluate(model, val, n_classes),
                    evaluate(model, test, n_classes),
                    evaluate(model, ood, n_classes) if ood is not None else None)
    record = {"key": key, "val": ev.val, "test": ev.test}
    if ev.ood is not None:
        record["ood"] = ev.ood
    atomic_write_json(path, record)
    _BASELINES[key] = ev
    return ev, True
