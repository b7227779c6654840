"""The generator plug-in interface: ``fit(X, y)`` on a fold's training rows, ``sample(n, seed)``.

A generator must be picklable (it travels through Ray), deterministic for a seed, and return
rows with the real table's columns, dtypes and class labels. Subclasses implement ``_fit`` and
``_sample``; this base class records the schema, runs both hooks with pinned thread pools
(:func:`engine.generators.determinism.fixed_threads`: bit-identical rows whatever the machine's
core or thread count) and conforms the output to it.

It also implements the ``class_balance`` option of every generator (:meth:`set_class_balance`,
applied by ``make_generator``): ``as_train`` (the default) draws ``_sample(n, seed)`` as is;
``balanced`` and ``{minority_share: x}`` decide the rows per class here and draw each class with
the plug-in's ``_sample_class`` hook, or by rejection from ``_sample`` where it has none.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from engine.core.errors import CausalMixError, OptionError
from engine.core.registry import Registry
from engine.generators.determinism import fixed_threads


class Generator(ABC):
    """Base class of every synthetic-data generator."""

    name: ClassVar[str] = ""
    #: ``class_balance`` when the option is absent (``smote`` overrides it)
    DEFAULT_CLASS_BALANCE: ClassVar[str] = "as_train"

    def __init__(self, **params: Any) -> None:
        self.params = dict(params)
        self.class_balance_: ClassBalance = parse_class_balance(self.DEFAULT_CLASS_BALANCE)
        if self.class_balance_ != AS_TRAIN:
            self.params["class_balance"] = self.class_balance_
        self.class_counts_: np.ndarray = np.zeros(0, dtype=np.int64)
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
        self.class_counts_ = np.array([int((y == c).sum()) for c in self.classes_.tolist()],
                                      dtype=np.int64)
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
            if self.class_balance_ == AS_TRAIN:
                X_syn, y_syn = self._sample(int(n), int(seed))
            else:
                X_syn, y_syn = self._sample_by_class(int(n), int(seed))
        return self._conform(X_syn, y_syn)

    def sample_class(self, n: int, seed: int, label: Any) -> tuple[pd.DataFrame, pd.Series]:
        """Draw ``n`` rows of class ``label`` (one of ``classes_``); deterministic for a seed."""
        if not self.fitted_:
            raise CausalMixError(f"{self.name}: sample_class() called before fit()")
        if label not in self.classes_.tolist():
            raise CausalMixError(f"{self.name}: {label!r} is not a class of the training rows")
        if n <= 0:
            return self._empty()
        with fixed_threads(self._torch_threads()):
            X_syn, y_syn = self._draw_class(int(n), int(seed), label)
        return self._conform(X_syn, y_syn)

    def set_class_balance(self, value: Any) -> Generator:
        """Set the ``class_balance`` option (None: the default); only a setting other than
        ``as_train`` enters ``params`` (so the default keeps every cache key)."""
        self.class_balance_ = parse_class_balance(
            self.DEFAULT_CLASS_BALANCE if value is None else value)
        self.params.pop("class_balance", None)
        if self.class_balance_ != AS_TRAIN:
            self.params["class_balance"] = self.class_balance_
        return self

    def class_counts(self, n: int) -> np.ndarray:
        """Rows per class (in ``classes_`` order) that ``sample(n, ...)`` draws under
        ``class_balance`` (``as_train``: the expected counts, largest remainder)."""
        return balance_counts(n, self.class_counts_, self.classes_, self.class_balance_)

    # ------------------------------------------------------------------ plug-in hooks
    @abstractmethod
    def _fit(self, X: pd.DataFrame, y: pd.Series) -> None: ...

    @abstractmethod
    def _sample(self, n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]: ...

    def _sample_class(self, n: int, seed: int, label: Any,
                      ) -> tuple[pd.DataFrame, pd.Series] | None:
        """Optional: ``n`` rows of class ``label`` drawn directly (None: by rejection)."""
        return None

    # ------------------------------------------------------------------ class balance
    def _sample_by_class(self, n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
        """``n`` rows in the counts ``class_balance`` asks for, each class drawn with its own
        seed, shuffled (seeded)."""
        counts = self.class_counts(n)
        Xs, ys = [], []
        for k, (label, m) in enumerate(zip(self.classes_.tolist(), counts)):
            if m > 0:
                X_c, y_c = self._draw_class(int(m), _child_seed(seed, k), label)
                Xs.append(X_c.reset_index(drop=True))
                ys.append(pd.Series(np.asarray(y_c, dtype=object)))
        X = pd.concat(Xs, ignore_index=True)
        y = pd.concat(ys, ignore_index=True)
        order = np.random.default_rng(_child_seed(seed, len(counts))).permutation(len(X))
        return X.iloc[order].reset_index(drop=True), y.iloc[order].reset_index(drop=True)

    def _draw_class(self, n: int, seed: int, label: Any) -> tuple[pd.DataFrame, pd.Series]:
        """Rows of one class: the plug-in's ``_sample_class``, else rejection from ``_sample``."""
        direct = self._sample_class(n, seed, label)
        if direct is not None:
            return direct
        k = self.classes_.tolist().index(label)
        share = self.class_counts_[k] / max(int(self.class_counts_.sum()), 1)
        return self._rejection(self._sample, n, seed, label, float(share))

    def _rejection(self, draw: Callable[[int, int], tuple[pd.DataFrame, pd.Series]], n: int,
                   seed: int, label: Any, share: float) -> tuple[pd.DataFrame, pd.Series]:
        """Keep the rows of class ``label`` from seeded ``draw(m, seed)`` batches, sized by the
        acceptance rate seen so far (first: ``share``), for at most ``REJECTION_ROUNDS``."""
        Xs, got, drawn, kept = [], 0, 0, 0
        for r in range(REJECTION_ROUNDS):
            rate = max(kept / drawn if drawn else share, MIN_ACCEPTANCE)
            m = min(int(np.ceil(1.2 * (n - got) / rate)) + 16, MAX_REJECTION_BATCH)
            X_r, y_r = draw(m, _child_seed(seed, 1000 + r))
            hit = np.asarray(pd.Series(np.asarray(y_r, dtype=object)) == label)
            drawn, kept = drawn + m, kept + int(hit.sum())
            Xs.append(X_r.reset_index(drop=True).loc[hit])
            got += int(hit.sum())
            if got >= n:
                X = pd.concat(Xs, ignore_index=True).iloc[:n].reset_index(drop=True)
                return X, pd.Series([label] * n, dtype=object)
        raise CausalMixError(
            f"{self.name}: class_balance cannot reach {n} rows of class {label!r}: "
            f"{got} of {drawn} rows drawn in {REJECTION_ROUNDS} rounds were of that class")

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


# ---------------------------------------------------------------------------- class balance
ClassBalance = str | dict[str, float]
AS_TRAIN = "as_train"
BALANCED = "balanced"
REJECTION_ROUNDS = 10
MIN_ACCEPTANCE = 0.02  # batches are sized for at least this acceptance rate
MAX_REJECTION_BATCH = 2_000_000
_CLASS_BALANCE_HINT = "as_train, balanced or {minority_share: x} with 0 < x < 1"


def parse_class_balance(value: Any) -> ClassBalance:
    """The canonical ``class_balance``: ``"as_train"``, ``"balanced"`` or
    ``{"minority_share": x}``; anything else is one line naming the option."""
    if value in (AS_TRAIN, BALANCED):
        return str(value)
    if isinstance(value, dict) and set(value) == {"minority_share"}:
        x = value["minority_share"]
        if (isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x)
                and 0.0 < float(x) < 1.0):
            return {"minority_share": float(x)}
    raise OptionError("class_balance",
                      f"class_balance must be {_CLASS_BALANCE_HINT}, got {value!r}")


def minority_index(counts: np.ndarray, classes: np.ndarray) -> int:
    """The least frequent training class (ties: the smaller label)."""
    low = [k for k in range(len(counts)) if counts[k] == counts.min()]
    try:
        return min(low, key=lambda k: classes[k])
    except TypeError:
        return min(low, key=lambda k: str(classes[k]))


def balance_counts(n: int, train_counts: np.ndarray, classes: np.ndarray,
                   balance: ClassBalance) -> np.ndarray:
    """Rows per class for ``n`` synthetic rows (largest-remainder rounding): the training
    proportions, equal counts (``balanced``), or ``round(x * n)`` rows of the least frequent
    class and the rest in the other classes' training proportions (``minority_share``)."""
    train = np.asarray(train_counts, dtype=np.float64)
    if len(train) <= 1 or balance == AS_TRAIN:
        return proportional_counts(n, train) if len(train) else np.zeros(0, dtype=np.int64)
    if balance == BALANCED:
        return proportional_counts(n, np.ones(len(train)))
    k = minority_index(train_counts, classes)
    m = int(round(float(balance["minority_share"]) * n))  # type: ignore[index]
    rest = np.delete(train, k)
    counts = np.insert(proportional_counts(n - m, rest), k, m)
    return counts.astype(np.int64)


def proportional_counts(n: int, weights: np.ndarray) -> np.ndarray:
    """Split ``n`` into integer counts proportional to ``weights`` (largest remainder)."""
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    raw = w * n
    counts = np.floor(raw).astype(np.int64)
    rest = n - int(counts.sum())
    if rest > 0:
        order = np.argsort(-(raw - counts), kind="stable")
        counts[order[:rest]] += 1
    return counts


def _child_seed(seed: int, k: int) -> int:
    """A seed derived from ``seed`` for part ``k`` of a draw."""
    return int(np.random.SeedSequence([int(seed) % 2**63, int(k)]).generate_state(1)[0])


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
