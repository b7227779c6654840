"""The generator plug-in interface: ``fit(X, y)`` on a fold's training rows, ``sample(n, seed)``.

A generator must be picklable (it travels through Ray), deterministic for a seed, and return
rows with the real table's columns, dtypes and class labels. Subclasses implement ``_fit`` and
``_sample``; this base class records the schema, runs both hooks with pinned thread pools
(:func:`engine.generators.determinism.fixed_threads`: bit-identical rows whatever the machine's
core or thread count) and conforms the output to it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from engine.core.errors import CausalMixError
from engine.core.registry import Registry
from engine.generators.determinism import fixed_threads


class Generator(ABC):
    """Base class of every synthetic-data generator."""

    name: ClassVar[str] = ""

    def __init__(self, **params: Any) -> None:
        self.params = dict(params)
        self.columns_: list[str] = []
        self.dtypes_: dict[str, Any] = {}
        self.classes_: np.ndarray = np.array([])
        self.target_name_: str = "target"
        self.seen_index_: pd.Index = pd.Index([])
        self.fitted_ = False

    # ------------------------------------------------------------------ public API
    def fit(self, X: pd.DataFrame, y: pd.Series) -> Generator:
        """Fit on training rows only. ``y`` holds the class labels (any hashable dtype)."""
        if len(X) != len(y):
            raise CausalMixError(f"{self.name}: X has {len(X)} rows but y has {len(y)}")
        if len(X) < 2:
            raise CausalMixError(f"{self.name}: needs at least 2 training rows, got {len(X)}")
        self.columns_ = list(X.columns)
        self.dtypes_ = {c: X[c].dtype for c in X.columns}
        self.classes_ = np.asarray(pd.unique(y.dropna()))
        self.target_name_ = str(y.name) if y.name is not None else "target"
        self.seen_index_ = X.index.copy()
        with fixed_threads(self._torch_threads()):
            self._fit(X.reset_index(drop=True), y.reset_index(drop=True))
        self.fitted_ = True
        return self

    def sample(self, n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
        """Draw ``n`` synthetic rows; the same seed gives the same rows."""
        if not self.fitted_:
            raise CausalMixError(f"{self.name}: sample() called before fit()")
        if n <= 0:
            return self._empty()
        with fixed_threads(self._torch_threads()):
            X_syn, y_syn = self._sample(int(n), int(seed))
        return self._conform(X_syn, y_syn)

    # ------------------------------------------------------------------ plug-in hooks
    @abstractmethod
    def _fit(self, X: pd.DataFrame, y: pd.Series) -> None: ...

    @abstractmethod
    def _sample(self, n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]: ...

    # ------------------------------------------------------------------ helpers
    def _torch_threads(self) -> int:
        """torch intra-op threads inside ``fit``/``sample``: the ``threads`` parameter, else 1."""
        return max(1, int(self.params.get("threads", 1) or 1))

    def _empty(self) -> tuple[pd.DataFrame, pd.Series]:
        X = pd.DataFrame({c: pd.Series([], dtype=self.dtypes_[c]) for c in self.columns_})
        y = pd.Series(np.array([], dtype=self.classes_.dtype), name=self.target_name_)
        return X, y

    def _conform(self, X: pd.DataFrame, y: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
        """Give synthetic rows the real columns, dtypes and label set."""
        X = X.reset_index(drop=True)
        missing = [c for c in self.columns_ if c not in X.columns]
        if missing:
            raise CausalMixError(f"{self.name}: synthetic rows lack columns {missing}")
        out = {}
        for c in self.columns_:
            out[c] = _cast_like(X[c], self.dtypes_[c])
        X_out = pd.DataFrame(out, columns=self.columns_)
        y_arr = np.asarray(y)
        known = set(self.classes_.tolist())
        bad = [v for v in pd.unique(y_arr) if v not in known]
        if bad:
            raise CausalMixError(f"{self.name}: synthetic labels {bad[:3]} are not real classes")
        y_out = pd.Series(y_arr.astype(self.classes_.dtype, copy=False), name=self.target_name_)
        return X_out, y_out


def _cast_like(col: pd.Series, dtype: Any) -> pd.Series:
    """Cast one synthetic column to the real column's dtype (rounding for integers)."""
    if isinstance(dtype, pd.CategoricalDtype):
        return pd.Series(pd.Categorical(col.astype(object), categories=dtype.categories))
    if pd.api.types.is_bool_dtype(dtype):
        return col.astype(bool)
    if pd.api.types.is_integer_dtype(dtype):
        vals = pd.to_numeric(col, errors="coerce")
        if vals.isna().any():
            return vals.round().astype("Int64")
        return vals.round().astype(dtype)
    if pd.api.types.is_float_dtype(dtype):
        return pd.to_numeric(col, errors="coerce").astype(dtype)
    return col.astype(object) if dtype is object or str(dtype) == "object" else col.astype(dtype)


GENERATORS: Registry[type[Generator]] = Registry("generator")


def register_generator(name: str):  # noqa: ANN201 - decorator
    """Class decorator: register a Generator subclass under ``name``."""

    def deco(cls: type[Generator]) -> type[Generator]:
        cls.name = name
        GENERATORS.register(name)(cls)
        return cls

    return deco
