"""The ``search:`` section of a sweep file: grid (default) or an Optuna search per study.

    search:
      mode: optuna              # grid (default) | optuna
      budget: 8                 # trials per (dataset, fold, method)
      max_concurrent: 2         # trials of one study running at once
      seed: 0                   # sampler seed (each study's sampler is seeded from it)
      sampler: tpe              # tpe | random
      metric: roc_auc           # validation metric maximised (test rows never steer)
      space:
        synthetic_scale: [0.25, 8]          # log-uniform by default
        mix_ratio: [0.1, 0.9]               # uniform
        lr: {low: 1.0e-5, high: 3.0e-4}     # log-uniform by default
        steps: [20, 200]                    # integer
      scheduler: asha           # none (default) | asha
      grace_period: 20          # ASHA: fine-tuning steps before the first cut
      reduction_factor: 3       # ASHA: keep 1/reduction_factor at each rung

Dimensions left out of ``space`` stay fixed: the scale and mix at the grid's single value, the
fine-tuning settings at ``finetune:``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.core.errors import SpecError
from engine.storage.results_schema import METRICS

SEARCH_FIELDS = ("mode", "budget", "max_concurrent", "seed", "sampler", "metric", "space",
                 "scheduler", "grace_period", "reduction_factor")
MODES = ("grid", "optuna")
SAMPLERS = ("tpe", "random")
SCHEDULERS = ("none", "asha")
# dimension -> (log scale by default, integer, lowest allowed, highest allowed)
DIMENSIONS: dict[str, tuple[bool, bool, float, float]] = {
    "synthetic_scale": (True, False, 1e-6, 1e6),
    "mix_ratio": (False, False, 0.0, 1.0),
    "lr": (True, False, 1e-12, 1.0),
    "steps": (False, True, 1, 2**31 - 1),
}
DATA_DIMENSIONS = ("synthetic_scale", "mix_ratio")  # searched only by methods with a generator


@dataclass(frozen=True)
class Dimension:
    """One searched hyperparameter: a range, log-uniform or uniform, integer or real."""

    name: str
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def distribution(self) -> Any:
        """The Optuna distribution of this dimension."""
        from optuna.distributions import FloatDistribution, IntDistribution

        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log)


@dataclass(frozen=True)
class SearchSpec:
    """How a sweep explores its space: a fixed grid, or an Optuna study per
    (dataset, fold, method) with ``budget`` trials."""

    mode: str = "grid"
    budget: int = 0
    max_concurrent: int = 1
    seed: int = 0
    sampler: str = "tpe"
    metric: str = "roc_auc"
    space: tuple[Dimension, ...] = ()
    scheduler: str = "none"
    grace_period: int = 20
    reduction_factor: int = 3

    @property
    def is_search(self) -> bool:
        return self.mode == "optuna"

    @property
    def direction(self) -> str:
        """'minimize' for a loss, else 'maximize'."""
        return "minimize" if self.metric == "log_loss" else "maximize"

    def dims_for(self, has_generator: bool, synthetic_only: bool) -> tuple[Dimension, ...]:
        """The dimensions one method searches: the data ones only with a generator, and the
        mix ratio not for synthetic-only methods (their mix is 1)."""
        out = []
        for d in self.space:
            if d.name in DATA_DIMENSIONS and not has_generator:
                continue
            if d.name == "mix_ratio" and synthetic_only:
                continue
            out.append(d)
        return tuple(out)

    def high(self, name: str) -> float | None:
        """The upper bound of a searched dimension (None when it is not searched)."""
        return next((d.high for d in self.space if d.name == name), None)


def parse_search(v: Any, raw: Any, scales: tuple[float, ...], mixes: tuple[float, ...],
                 grid_given: bool) -> SearchSpec:
    """Validate the ``search`` section (``v`` is the spec's field validator)."""
    if raw is None:
        return SearchSpec()
    if not isinstance(raw, dict):
        raise SpecError(v.source, "search", "expected a mapping (mode, budget, space, ...)")
    extra = sorted(set(raw) - set(SEARCH_FIELDS))
    if extra:
        raise SpecError(v.source, f"search.{extra[0]}",
                        f"unknown field (allowed: {', '.join(SEARCH_FIELDS)})")
    mode = _choice(v, raw, "mode", MODES, "grid")
    if mode == "grid":
        others = sorted(set(raw) - {"mode"})
        if others:
            raise SpecError(v.source, f"search.{others[0]}", "only used with mode: optuna")
        return SearchSpec()
    budget = v.integer(raw, "budget", default=0, minimum=1, where="search") \
        if "budget" in raw else _missing(v, "budget", "the number of trials per study (>= 1)")
    space = _space(v, raw.get("space"))
    _check_fixed(v, space, scales, mixes, grid_given)
    metric = v.choice(raw, "metric", METRICS, default="roc_auc", where="search")
    return SearchSpec(
        mode=mode, budget=budget,
        max_concurrent=v.integer(raw, "max_concurrent", default=1, minimum=1, where="search"),
        seed=v.integer(raw, "seed", default=0, minimum=0, maximum=2**32 - 1, where="search"),
        sampler=_choice(v, raw, "sampler", SAMPLERS, "tpe"), metric=metric, space=space,
        scheduler=_choice(v, raw, "scheduler", SCHEDULERS, "none"),
        grace_period=v.integer(raw, "grace_period", default=20, minimum=1, where="search"),
        reduction_factor=v.integer(raw, "reduction_factor", default=3, minimum=2,
                                   where="search"),
    )


def _missing(v: Any, key: str, what: str) -> int:
    raise SpecError(v.source, f"search.{key}", f"required with mode: optuna ({what})")


def _choice(v: Any, raw: dict, key: str, allowed: tuple[str, ...], default: str) -> str:
    return v.choice(raw, key, allowed, default=default, where="search")


def _space(v: Any, raw: Any) -> tuple[Dimension, ...]:
    if not isinstance(raw, dict) or not raw:
        raise SpecError(v.source, "search.space", "mode: optuna needs a space with at least one "
                        f"of {', '.join(DIMENSIONS)} (e.g. synthetic_scale: [0.5, 8])")
    extra = sorted(set(raw) - set(DIMENSIONS))
    if extra:
        raise SpecError(v.source, f"search.space.{extra[0]}",
                        f"unknown dimension (allowed: {', '.join(DIMENSIONS)})")
    return tuple(_dimension(v, name, raw[name]) for name in DIMENSIONS if name in raw)


def _dimension(v: Any, name: str, raw: Any) -> Dimension:
    """``[low, high]`` or ``{low, high, log}``."""
    where = f"search.space.{name}"
    log, integer, lo_ok, hi_ok = DIMENSIONS[name]
    if isinstance(raw, list) and len(raw) == 2:
        raw = {"low": raw[0], "high": raw[1]}
    if not isinstance(raw, dict) or not {"low", "high"} <= set(raw):
        raise SpecError(v.source, where, "expected [low, high] or {low, high, log}")
    extra = sorted(set(raw) - {"low", "high", "log"})
    if extra:
        raise SpecError(v.source, f"{where}.{extra[0]}", "unknown field (low, high, log)")
    if integer:
        low = v.integer(raw, "low", minimum=int(lo_ok), maximum=int(hi_ok), where=where)
        high = v.integer(raw, "high", minimum=int(lo_ok), maximum=int(hi_ok), where=where)
    else:
        low = v.number(raw, "low", low=lo_ok, high=hi_ok, where=where)
        high = v.number(raw, "high", low=lo_ok, high=hi_ok, where=where)
    if low > high:
        raise SpecError(v.source, where, f"reversed range: low {low:g} > high {high:g}")
    log = raw.get("log", log)
    if not isinstance(log, bool):
        raise SpecError(v.source, f"{where}.log", f"expected true or false, got {log!r}")
    if log and low <= 0:
        raise SpecError(v.source, where, f"a log range needs low > 0, got {low:g}")
    return Dimension(name, float(low), float(high), log, integer)


def _check_fixed(v: Any, space: tuple[Dimension, ...], scales: tuple[float, ...],
                 mixes: tuple[float, ...], grid_given: bool) -> None:
    """A data dimension that is not searched takes the grid's value, which must be single."""
    searched = {d.name for d in space}
    for name, values in (("synthetic_scale", scales), ("mix_ratio", mixes)):
        if name in searched and grid_given and len(values) > 1:
            raise SpecError(v.source, f"grid.{name}", f"searched by search.space.{name}; give "
                            "at most one grid value (used where it is not searched)")
        if name not in searched and len(values) > 1:
            raise SpecError(v.source, f"grid.{name}", f"{len(values)} values, but mode: optuna "
                            f"does not search {name}: give one value or add it to search.space")
