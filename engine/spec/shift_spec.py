"""The ``shift:`` section of a sweep file: which rows form the out-of-domain (OOD) test pool.

Three kinds, after the benchmarks that measure robustness this way (TableShift's domain
splits, covariate shift by one feature, subpopulation shift by held-out clusters)::

    shift: {kind: domain, column: sex, ood: [Female]}      # or ood: auto; bins: k for numbers
    shift: {kind: feature, column: age | auto, quantile: 0.8, side: upper}
    shift: {kind: cluster, clusters: 4}                    # fold k holds out cluster k mod 4

The split itself is data (``engine.folds.shift``), so every split protocol takes it. Checks
that need the table (the column exists, the values occur, the OOD pool has enough rows) run
at validate time from ``engine.folds.shift.check_shift``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.core.errors import SpecError

KINDS = ("domain", "feature", "cluster")
FIELDS = {
    "domain": {"kind", "column", "ood", "bins", "drop_column"},
    "feature": {"kind", "column", "quantile", "side", "drop_column"},
    "cluster": {"kind", "clusters"},
}


@dataclass(frozen=True)
class ShiftSpec:
    """A parsed ``shift:`` section (see the module docstring)."""

    kind: str
    column: str | None = None  # domain / feature; None = auto (feature)
    ood: tuple[str, ...] | None = None  # domain: OOD values as text; None = auto
    bins: int | None = None  # domain on a numeric column: quantile bins (values "0".."k-1")
    quantile: float = 0.8  # feature
    side: str = "upper"  # feature: OOD above (upper) or below (lower) the quantile
    clusters: int = 0  # cluster
    drop_column: bool = False  # the shift column is not a feature
    where: str = field(default="shift", compare=False)  # its place in the sweep file

    def field_name(self, name: str) -> str:
        """``shift.<name>`` as the sweep file spells it (``datasets[i].shift.<name>``)."""
        return name.replace("shift", self.where, 1)

    def key(self) -> dict[str, Any]:
        """What enters the fold's cache key (only the fields of its kind)."""
        if self.kind == "domain":
            return {"kind": "domain", "column": self.column,
                    "ood": list(self.ood) if self.ood is not None else "auto",
                    "bins": self.bins, "drop_column": self.drop_column}
        if self.kind == "feature":
            return {"kind": "feature", "column": self.column or "auto",
                    "quantile": self.quantile, "side": self.side,
                    "drop_column": self.drop_column}
        return {"kind": "cluster", "clusters": self.clusters}

    def describe(self) -> str:
        """One line for logs and results (``shift`` column)."""
        if self.kind == "domain":
            ood = ",".join(self.ood) if self.ood is not None else "auto"
            return f"domain {self.column}" + (f" (bins {self.bins})" if self.bins else "") + \
                f" ood={ood}"
        if self.kind == "feature":
            return f"feature {self.column or 'auto'} {self.side} q{self.quantile:g}"
        return f"cluster k={self.clusters}"


def parse_shift(v: Any, raw: Any) -> ShiftSpec | None:
    """``shift:`` of a sweep file through the sweep file's validator ``v``; None if absent."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise SpecError(v.source, "shift", "expected a mapping with 'kind' (domain, feature, "
                        "cluster)")
    kind = v.choice(raw, "kind", KINDS, default="", where="shift") if "kind" in raw else None
    if kind is None:
        raise SpecError(v.source, "shift.kind", f"required, one of {list(KINDS)}")
    extra = sorted(set(raw) - FIELDS[kind])
    if extra:
        raise SpecError(v.source, f"shift.{extra[0]}", f"unknown field for kind {kind} "
                        f"(allowed: {sorted(FIELDS[kind])})")
    if kind == "cluster":
        return ShiftSpec(kind, clusters=v.integer(raw, "clusters", default=0, minimum=2,
                                                  where="shift", maximum=50))
    drop = v.boolean(raw, "drop_column", default=False, where="shift")
    if kind == "feature":
        column = v.string(raw, "column", default="auto", where="shift")
        q = v.number(raw, "quantile", default=0.8, where="shift")
        if not 0 < q < 1:
            raise SpecError(v.source, "shift.quantile", f"expected a number in (0, 1), got {q:g}")
        side = v.choice(raw, "side", ("upper", "lower"), default="upper", where="shift")
        return ShiftSpec(kind, column=None if column == "auto" else column, quantile=q,
                         side=side, drop_column=drop)
    column = v.string(raw, "column", required=True, where="shift")
    bins = None
    if "bins" in raw:
        bins = v.integer(raw, "bins", default=0, minimum=2, where="shift", maximum=100)
    return ShiftSpec(kind, column=column, ood=_ood_values(v, raw.get("ood", "auto")),
                     bins=bins, drop_column=drop)


def _ood_values(v: Any, raw: Any) -> tuple[str, ...] | None:
    if raw == "auto":
        return None
    values = raw if isinstance(raw, list) else [raw]
    if not values or any(isinstance(x, dict | list) or x is None for x in values):
        raise SpecError(v.source, "shift.ood", f"expected 'auto' or a non-empty list of "
                        f"values, got {raw!r}")
    return tuple(sorted({domain_text(x) for x in values}))


def domain_text(value: Any) -> str:
    """A domain value as text: 1.0 and 1 name the same value, True is 'True'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
