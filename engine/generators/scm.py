"""The ``scm`` generator: synthetic rows from structural causal models learned per fold.

Fit: learn edge probabilities over the features and the target with PC and FCI (PC alone
beyond 30 modelled columns; :mod:`engine.causal.discovery`), draw ``n_dags`` DAGs from them
(the first is the most probable one), fit one DoWhy ``gcm`` SCM per DAG and sample rows by
pushing exogenous noise through the graphs. ``sample(n, seed)`` splits ``n`` evenly across
the SCMs and shuffles the union. With a ``class_balance`` option a class's rows are the sampled
rows of that class (rejection on the label node, which is correct whatever the label's place in
the graph), or, when the label is a root of every SCM, ancestral samples with the label fixed.

Preprocessing (all inside the generator):

* column kinds: bool, object, string and category columns are categorical; numeric columns whose
  non-missing values are all integers with at most ``discrete_threshold`` distinct values are
  categorical too (their exact levels come back); other numeric columns are numeric. Columns with
  at most one distinct non-missing value are constant: left out of discovery and the SCM and
  re-added as that constant.
* categorical levels seen fewer than ``rare_min_count`` times, and levels beyond the
  ``max_categories`` most frequent, are pooled into one "rare" level for modelling; sampled rare
  levels are expanded back to the pooled values in their observed proportions. A column left with
  a single modelled level is sampled from its marginal. Target classes are never pooled.
* missing values: numeric columns are median-imputed, categorical ones mode-imputed for discovery
  and mechanism fitting; with ``reinject_missing`` the samples get missing values again at each
  column's observed rate (independently of the other columns). Rows with a missing label are
  dropped.
* numeric columns are standardised (``"standard"``; with ``clip``, clipped to the observed
  range on output) or mapped to normal scores (``"quantile"``, a rank-based Gaussian copula
  transform, decoded through the observed quantiles). ``numeric_transform="auto"`` (the
  default): on a table whose features are all numeric it picks per column, ``quantile`` when
  the column is far from normal (|skewness| > 1, excess kurtosis > 3, normal probability-plot
  correlation < 0.99, or one value in more than 2% of the rows), ``standard`` otherwise; on a
  table with categorical features every numeric column gets ``quantile``, as before the rule
  existed (the rule was chosen on the continuous families; on real mixed tables it brought no
  measured gain, docs/generators.md).
  On near-normal columns the copula only warps the scale the additive-noise mechanisms are
  fitted on (real and synthetic rows became easier to tell apart on the ground-truth families
  of ``benchmarks/scm_fidelity.py`` when the graph was right); on skewed, zero-inflated or
  heaped real columns standardised mechanisms miss the marginal (docs/generators.md has the
  tables). Categorical columns enter discovery as integer codes and the mechanisms as string
  levels.

Discovery: ``indep_test="auto"`` (the default) uses G-square when every tested column is
discrete, the RCIT kernel test (random Fourier features) when every tested feature is
continuous (the class label may be discrete), and Fisher-z otherwise, each of the two slow
tests only up to 20 tested columns (:func:`engine.causal.discovery.resolve_test`).

``profile="mixed_types"`` changes what ``auto`` means where numeric and categorical features
meet (up to 20 tested columns): the test becomes ``rcit_mixed`` (RCIT with one-hot
categoricals and cached bandwidths, :mod:`engine.causal.mixed_rcit`) and the transform the
per-column rule; all-numeric and all-discrete tables, explicit settings and the default
profile are unchanged (docs/generators.md, "Mixed-type tables").

Mechanisms: numeric root nodes a smoothed bootstrap of the training values
(:class:`engine.causal.mechanisms.SmoothedEmpiricalDistribution`, so no exact copies of real
values), categorical roots ``EmpiricalDistribution``; numeric non-root nodes
``AdditiveNoiseModel(regressor)``; categorical non-root nodes and the target
``ClassifierFCM(classifier)``. A fold with a single class gets a constant target. Mechanisms with
the same node and parent set are fitted once and shared between the SCMs. Everything runs on one
thread and numpy's global RNG (used by DoWhy) is seeded and restored around fitting and sampling.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from scipy.stats import norm, rankdata

from engine.causal.dag_sampling import most_probable_dag, sample_dags
from engine.causal.discovery import (
    ALGORITHMS,
    INDEP_TESTS,
    discover_edge_probabilities,
    resolve_test,
    seeded_global_numpy,
)
from engine.core.errors import CausalMixError
from engine.generators.base import Generator, register_generator

REGRESSORS = ("linear", "ridge", "hgb", "rf", "hnm", "hnm_linear", "auto")
CLASSIFIERS = ("logistic", "hgb", "rf", "auto")
_MIN_SELECT_ROWS = 60
_HNM_MARGIN = 0.05
_RARE = "rare"
_TARGET_NODE = "y"
_MAX_QUANTILES = 1000
_AUTO_BOOTSTRAP_MAX_NODES = 30
_AUTO_FCI_MAX_NODES = 30
NUMERIC_TRANSFORMS = ("auto", "quantile", "standard")
PROFILES = ("default", "mixed_types")  # what the "auto" rules mean on mixed-type tables
_MAX_ABS_SKEW = 1.0  # "auto": beyond this |skewness| (or excess kurtosis 3) use "quantile"
_MIN_NORMAL_PPCC = 0.99  # "auto": normal probability-plot correlation below this -> "quantile"
_MAX_MODE_SHARE = 0.02  # "auto": a value repeated in more than 2% of the rows -> "quantile"


@dataclass
class _Column:
    """How one real column (or the target) is modelled and decoded."""

    name: Hashable
    node: str
    kind: str  # "numeric" | "categorical" | "constant" | "marginal"
    missing_rate: float = 0.0
    mean: float = 0.0
    std: float = 1.0
    lo: float = -np.inf
    hi: float = np.inf
    quantiles: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tokens: list[str] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    rare_values: list[Any] = field(default_factory=list)
    rare_probs: np.ndarray = field(default_factory=lambda: np.zeros(0))
    constant: Any = None


def _make_regressor(name: str, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import LinearRegression, Ridge

    if name == "linear":
        return LinearRegression()
    if name == "ridge":
        return Ridge(alpha=1.0)
    if name == "hgb":
        return HistGradientBoostingRegressor(max_iter=100, learning_rate=0.1, max_leaf_nodes=15,
                                             min_samples_leaf=20, early_stopping=False,
                                             random_state=seed)
    return RandomForestRegressor(n_estimators=50, min_samples_leaf=5, max_features=0.5,
                                 n_jobs=1, random_state=seed)


def _make_classifier(name: str, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    if name == "logistic":
        return LogisticRegression(max_iter=1000)
    if name == "hgb":
        return HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, max_leaf_nodes=15,
                                              min_samples_leaf=20, early_stopping=False,
                                              random_state=seed)
    return RandomForestClassifier(n_estimators=50, min_samples_leaf=5, max_features=0.5,
                                  n_jobs=1, random_state=seed)


def _make_scale_regressor(seed: int) -> Any:
    """A smooth regressor of log absolute residuals (the noise scale of ``hnm``)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(max_iter=50, learning_rate=0.1, max_leaf_nodes=7,
                                         min_samples_leaf=40, early_stopping=False,
                                         random_state=seed)


def _design(X: np.ndarray) -> np.ndarray:
    """Parents as a float matrix: categorical (string-token) columns one-hot encoded."""
    cols = []
    for j in range(X.shape[1]):
        col = X[:, j]
        if col.dtype == object:
            cols.append(pd.get_dummies(pd.Series(col, dtype=object)).to_numpy(dtype=float))
        else:
            cols.append(col.astype(float).reshape(-1, 1))
    return np.hstack(cols) if cols else np.zeros((X.shape[0], 0))


def _split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded 2/3 - 1/3 train/validation split of ``n`` rows."""
    idx = np.random.default_rng(seed).permutation(n)
    return idx[n // 3:], idx[: n // 3]


def _choose_regressor(X: np.ndarray, y: np.ndarray, seed: int) -> str:
    """Per-node mechanism: the mean model (``linear`` or ``hgb``) by validation MSE, then its
    heteroscedastic form (``hnm_linear`` / ``hnm``) if a parent-dependent noise scale lowers
    the validation cost (the mean log scale of unit-variance residuals) by more than
    ``_HNM_MARGIN`` nats against the constant scale."""
    if len(y) < _MIN_SELECT_ROWS:
        return "linear"
    tr, va = _split(len(y), seed)
    res = {}
    for name in ("linear", "hgb"):
        model = _make_regressor(name, seed).fit(X[tr], y[tr])
        res[name] = y - model.predict(X)
    mse = {k: float(np.mean(r[va] ** 2)) for k, r in res.items()}
    best = "linear" if mse["linear"] <= mse["hgb"] else "hgb"
    r = res[best]
    if _log_scale_gain(X, r, tr, va, seed) > _HNM_MARGIN:
        return "hnm" if best == "hgb" else "hnm_linear"
    return best


def _log_scale_gain(X: np.ndarray, r: np.ndarray, tr: np.ndarray, va: np.ndarray,
                    seed: int) -> float:
    """Validation Gaussian cost saved (nats per row) by a parent-dependent residual scale."""
    floor = 1e-3 * (float(np.std(r[tr])) + 1e-12)
    scale = _make_scale_regressor(seed).fit(X[tr], np.log(np.abs(r[tr]) + floor))
    log_s = scale.predict(X[va])
    log_s = log_s + np.log(float(np.std(r[va] / np.exp(log_s))) or 1.0)
    const = np.log(float(np.std(r[va])) or 1e-12)
    return float(const - np.mean(log_s))


def _choose_classifier(X: np.ndarray, y: np.ndarray, seed: int) -> str:
    """Per-node classifier: ``logistic`` or ``hgb`` by validation log-loss."""
    from sklearn.metrics import log_loss

    if len(y) < _MIN_SELECT_ROWS or len(set(y.tolist())) < 2:
        return "logistic"
    tr, va = _split(len(y), seed)
    labels = sorted(set(y.tolist()))
    loss = {}
    for name in ("logistic", "hgb"):
        if len(set(y[tr].tolist())) < 2:
            return "logistic"
        model = _make_classifier(name, seed).fit(X[tr], y[tr])
        p = pd.DataFrame(model.predict_proba(X[va]), columns=model.classes_).reindex(
            columns=labels, fill_value=0.0).to_numpy()
        p = np.clip(p, 1e-6, 1.0)
        loss[name] = log_loss(y[va], p / p.sum(axis=1, keepdims=True), labels=labels)
    return "logistic" if loss["logistic"] <= loss["hgb"] else "hgb"


def _is_categorical_dtype(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype)


def _integer_valued(values: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))


def _check_options(n_dags: int, algorithms: list[str] | None, alpha: float, indep_test: str,
                   regressor: str, classifier: str, numeric_transform: str, profile: str,
                   bootstrap: int | None) -> None:
    """Refuse bad scm options in one line that names each field."""
    problems = []
    if int(n_dags) < 1:
        problems.append(f"n_dags must be >= 1, got {n_dags}")
    if algorithms is not None and (not algorithms
                                   or any(a not in ALGORITHMS for a in algorithms)):
        problems.append(f"algorithms must be drawn from {list(ALGORITHMS)}, got {algorithms}")
    if not 0.0 < float(alpha) < 1.0:
        problems.append(f"alpha must lie in (0, 1), got {alpha}")
    if indep_test not in INDEP_TESTS:
        problems.append(f"indep_test must be one of {list(INDEP_TESTS)}, got '{indep_test}'")
    if regressor not in REGRESSORS:
        problems.append(f"regressor must be one of {list(REGRESSORS)}, got '{regressor}'")
    if classifier not in CLASSIFIERS:
        problems.append(f"classifier must be one of {list(CLASSIFIERS)}, got '{classifier}'")
    if numeric_transform not in NUMERIC_TRANSFORMS:
        problems.append(f"numeric_transform must be one of {list(NUMERIC_TRANSFORMS)}, "
                        f"got '{numeric_transform}'")
    if profile not in PROFILES:
        problems.append(f"profile must be one of {list(PROFILES)}, got '{profile}'")
    if bootstrap is not None and int(bootstrap) < 0:
        problems.append(f"bootstrap must be >= 0, got {bootstrap}")
    if problems:
        raise CausalMixError("scm: " + "; ".join(problems))


@register_generator("scm")
class SCMGenerator(Generator):
    """Rows from an ensemble of DoWhy SCMs over DAGs sampled from PC/FCI edge probabilities.

    Parameters (defaults): ``n_dags`` (3 DAGs, the first the most probable), ``algorithms``
    (None: ("pc", "fci") up to 30 modelled columns, ("pc",) beyond), ``alpha`` (0.05),
    ``indep_test`` ("auto": G-square / RCIT / Fisher-z by the table; "fisherz", "rcit",
    "rcit_mixed" (one-hot categoricals), "chisq"/"gsq" bin numeric columns into quantiles,
    "kci" is slow), ``depth`` (None: unlimited
    up to 15 modelled columns, else 3), ``bootstrap`` (None: one resampled run per algorithm up
    to 30 modelled columns, none beyond), ``regressor`` ("hgb"; "linear", "ridge", "rf", "hnm",
    "hnm_linear", "auto"), ``classifier`` ("hgb"; "logistic", "rf", "auto"), ``max_parents``
    (None), ``seed`` (0: discovery, DAG sampling, fitting), ``reinject_missing`` (True),
    ``discrete_threshold`` (10), ``rare_min_count`` (5), ``max_categories`` (50), ``clip``
    (True; "standard" transform only), ``max_discovery_rows`` (5000), ``numeric_transform``
    ("auto": on all-numeric features per column, "quantile" for far-from-normal columns, else
    "standard"; with categorical features "quantile"; "standard": z-scores; "quantile": normal
    scores, decoded through the observed quantiles), ``root_smoothing`` (1.0: smoothed bootstrap
    bandwidth multiplier for numeric roots; 0 resamples training values exactly),
    ``collinear_threshold`` (0.99: columns this correlated with an earlier one skip the tests
    and become its child), ``profile`` ("default"; "mixed_types": on tables with numeric and
    categorical features ``auto`` means the ``rcit_mixed`` test and the per-column transform;
    enters ``params`` only when not "default").
    """

    VERSION = 2  # 2: new "auto" test/transform rules, PC alone beyond 30 columns

    def __init__(
        self,
        n_dags: int = 3,
        algorithms: Sequence[str] | None = None,
        alpha: float = 0.05,
        indep_test: str = "auto",
        depth: int | None = None,
        bootstrap: int | None = None,
        regressor: str = "hgb",
        classifier: str = "hgb",
        max_parents: int | None = None,
        seed: int = 0,
        reinject_missing: bool = True,
        discrete_threshold: int = 10,
        rare_min_count: int = 5,
        max_categories: int = 50,
        clip: bool = True,
        max_discovery_rows: int | None = 5000,
        numeric_transform: str = "auto",
        root_smoothing: float = 1.0,
        collinear_threshold: float = 0.99,
        profile: str = "default",
    ) -> None:
        if isinstance(algorithms, str):
            algorithms = [algorithms]
        if algorithms is not None:
            algorithms = [str(a).lower() for a in algorithms]
        super().__init__(
            n_dags=n_dags, algorithms=algorithms, alpha=alpha, indep_test=indep_test, depth=depth,
            bootstrap=bootstrap, regressor=regressor, classifier=classifier,
            max_parents=max_parents, seed=seed, reinject_missing=reinject_missing,
            discrete_threshold=discrete_threshold, rare_min_count=rare_min_count,
            max_categories=max_categories, clip=clip, max_discovery_rows=max_discovery_rows,
            numeric_transform=numeric_transform, root_smoothing=root_smoothing,
            collinear_threshold=collinear_threshold,
        )
        if profile != "default":  # only a non-default profile enters params (cache keys)
            self.params["profile"] = profile
        _check_options(n_dags, algorithms, alpha, indep_test, regressor, classifier,
                       numeric_transform, profile, bootstrap)
        self.n_dags = int(n_dags)
        self.algorithms = algorithms
        self.alpha = float(alpha)
        self.indep_test = indep_test
        self.depth = None if depth is None else int(depth)
        self.bootstrap = None if bootstrap is None else int(bootstrap)
        self.regressor = regressor
        self.classifier = classifier
        self.max_parents = None if max_parents is None else int(max_parents)
        self.seed = int(seed)
        self.reinject_missing = bool(reinject_missing)
        self.discrete_threshold = int(discrete_threshold)
        self.rare_min_count = int(rare_min_count)
        self.max_categories = int(max_categories)
        self.clip = bool(clip)
        self.max_discovery_rows = max_discovery_rows
        self.numeric_transform = numeric_transform
        self.root_smoothing = float(root_smoothing)
        self.collinear_threshold = float(collinear_threshold)
        self.profile = profile

        self.specs_: list[_Column] = []
        self.target_spec_: _Column | None = None
        self.nodes_: list[str] = []
        self.scms_: list[Any] = []
        self.dags_: list[nx.DiGraph] = []
        self.graph_: nx.DiGraph = nx.DiGraph()
        self.edge_probabilities_: pd.DataFrame = pd.DataFrame()
        self.discovery_: Any = None
        self.discovery_seconds_ = 0.0
        self.fit_seconds_ = 0.0
        self.cpu_seconds_: dict[str, float] = {}
        self.mechanisms_: dict[str, str] = {}
        self.test_ = ""

    # ------------------------------------------------------------------ preprocessing
    def _column_spec(self, s: pd.Series, node: str, is_target: bool,
                     per_column: bool = True) -> tuple[_Column, pd.Series]:
        """Describe one column and return its modelling form (standardised floats or tokens);
        ``per_column=False`` makes ``numeric_transform="auto"`` mean ``quantile``."""
        spec = _Column(name=s.name, node=node, kind="numeric")
        missing = s.isna().to_numpy()
        spec.missing_rate = 0.0 if is_target else float(missing.mean())
        present = s[~missing]
        levels = pd.unique(present)
        if len(levels) <= 1:
            spec.kind = "constant"
            spec.constant = levels[0] if len(levels) else np.nan
            return spec, s
        numeric = not _is_categorical_dtype(s)
        if numeric and not is_target:
            vals = present.to_numpy(dtype=float)
            if not (_integer_valued(vals) and len(levels) <= self.discrete_threshold):
                filled = s.to_numpy(dtype=float, na_value=np.nan)
                filled = np.where(np.isnan(filled), np.median(vals), filled)
                spec.lo, spec.hi = float(vals.min()), float(vals.max())
                if self._transform_of(filled, per_column) == "quantile":
                    m = min(len(filled), _MAX_QUANTILES)
                    spec.quantiles = np.quantile(filled, np.linspace(0.0, 1.0, m))
                    u = (rankdata(filled) - 0.5) / len(filled)
                    return spec, pd.Series(norm.ppf(u), name=node)
                spec.mean = float(filled.mean())
                spec.std = float(filled.std()) or 1.0
                return spec, pd.Series((filled - spec.mean) / spec.std, name=node)
        spec.kind = "categorical"
        counts = present.value_counts(sort=True, dropna=True)
        counts = counts[counts > 0]
        if is_target:
            kept, rare = list(counts.index), []
        else:
            kept = [v for v, c in counts.items() if c >= self.rare_min_count]
            kept = kept[: self.max_categories]
            kept_set = set(kept)
            rare = [v for v in counts.index if v not in kept_set]
        spec.values = list(kept)
        spec.tokens = [f"c{i}" for i in range(len(kept))]
        token_of = dict(zip(kept, spec.tokens))
        if rare:
            rare_counts = counts.loc[rare].to_numpy(dtype=float)
            spec.rare_values = list(rare)
            spec.rare_probs = rare_counts / rare_counts.sum()
            spec.tokens.append(_RARE)
            spec.values.append(None)
        mode_token = spec.tokens[0] if kept else _RARE
        coded = present.map(lambda v: token_of.get(v, _RARE))
        tokens = np.full(len(s), mode_token, dtype=object)
        tokens[~missing] = coded.to_numpy(dtype=object)
        if len(spec.tokens) == 1:
            spec.kind = "marginal"
        return spec, pd.Series(tokens, name=node, dtype=object)

    def _transform_of(self, values: np.ndarray, per_column: bool = True) -> str:
        """``auto``: ``quantile`` for a column far from normal (|skewness| > 1, excess kurtosis
        > 3, a normal probability-plot correlation below 0.99 (bimodal, flat), or a value
        repeated in more than 2% of the rows: zero-inflated, heaped or discrete-like), whose
        marginal standardised additive-noise mechanisms cannot reproduce; else ``standard``.
        Without ``per_column`` (a table with categorical features) ``quantile``."""
        if self.numeric_transform != "auto":
            return self.numeric_transform
        if not per_column:
            return "quantile"
        from scipy.stats import kurtosis, skew

        _, counts = np.unique(values, return_counts=True)
        if counts.max() > _MAX_MODE_SHARE * len(values):
            return "quantile"
        if abs(float(skew(values))) > _MAX_ABS_SKEW or float(kurtosis(values)) > 3.0:
            return "quantile"
        ranks = (np.arange(1, len(values) + 1) - 0.375) / (len(values) + 0.25)
        ppcc = float(np.corrcoef(np.sort(values), norm.ppf(ranks))[0, 1])
        return "quantile" if ppcc < _MIN_NORMAL_PPCC else "standard"

    # ------------------------------------------------------------------ fit
    def _fit(self, X: pd.DataFrame, y: pd.Series) -> None:
        from threadpoolctl import threadpool_limits

        keep = ~y.isna().to_numpy()
        if not keep.all():
            X, y = X.loc[keep].reset_index(drop=True), y.loc[keep].reset_index(drop=True)
        data = self._prepare(X, y, per_column=False)
        self.test_ = self._resolve_test()
        if self.numeric_transform == "auto" and (self.profile == "mixed_types"
                                                 or not self._has_categorical_features()):
            data = self._prepare(X, y, per_column=True)

        start, cpu = time.perf_counter(), time.process_time()
        probs = self._discover(data)
        self.discovery_seconds_ = time.perf_counter() - start
        self.cpu_seconds_ = {"discovery": time.process_time() - cpu}

        start, cpu = time.perf_counter(), time.process_time()
        self.dags_ = sample_dags(probs, self.n_dags, self.seed, names=self.nodes_,
                                 max_parents=self.max_parents)
        self.mechanisms_ = {}
        with threadpool_limits(limits=1), seeded_global_numpy(self.seed):
            self.scms_ = self._fit_scms(data)
        self.fit_seconds_ = time.perf_counter() - start
        self.cpu_seconds_["scm_fit"] = time.process_time() - cpu
        self._export_graphs(probs)

    def _prepare(self, X: pd.DataFrame, y: pd.Series, per_column: bool) -> pd.DataFrame:
        """Column specs and the modelling table (numerics as floats, categoricals as tokens)."""
        self.specs_, frames = [], {}
        for i, c in enumerate(X.columns):
            spec, col = self._column_spec(X[c], f"x{i}", False, per_column)
            self.specs_.append(spec)
            if spec.kind in ("numeric", "categorical"):
                frames[spec.node] = col.to_numpy()
        tspec, tcol = self._column_spec(y.rename(self.target_name_), _TARGET_NODE, True)
        self.target_spec_ = tspec
        if tspec.kind == "categorical":
            frames[_TARGET_NODE] = tcol.to_numpy()
        self.nodes_ = list(frames)
        return pd.DataFrame({k: pd.Series(v, dtype=object if v.dtype == object else float)
                             for k, v in frames.items()})

    def _has_categorical_features(self) -> bool:
        """Whether a modelled feature (not the label) is categorical."""
        return any(s.kind == "categorical" for s in self.specs_)

    def _resolve_test(self) -> str:
        """The independence test ``indep_test`` means for these modelled columns
        (:func:`engine.causal.discovery.resolve_test`; the class label may be discrete)."""
        kinds = {s.node: s.kind for s in [*self.specs_, self.target_spec_]}
        discrete = np.array([kinds[n] == "categorical" for n in self.nodes_], dtype=bool)
        label = self.nodes_.index(_TARGET_NODE) if _TARGET_NODE in self.nodes_ else None
        mixed = "rcit_mixed" if self.profile == "mixed_types" else "fisherz"
        return resolve_test(self.indep_test, discrete, label, mixed_test=mixed)

    def _discover(self, data: pd.DataFrame) -> np.ndarray:
        """Edge probabilities over the modelled nodes (zeros when fewer than two)."""
        d = len(self.nodes_)
        if d < 2:
            return np.zeros((d, d))
        specs = {s.node: s for s in [*self.specs_, self.target_spec_]}
        mat = np.empty((len(data), d))
        discrete = []
        for k, node in enumerate(self.nodes_):
            spec = specs[node]
            if spec.kind == "categorical":
                index = {t: i for i, t in enumerate(spec.tokens)}
                mat[:, k] = [index[t] for t in data[node]]
                discrete.append(True)
            else:
                mat[:, k] = data[node].to_numpy(dtype=float)
                discrete.append(False)
        self.discovery_ = discover_edge_probabilities(
            mat, algorithms=self._algorithms(d), alpha=self.alpha, indep_test=self.test_,
            depth=self.depth, bootstrap=self._bootstrap_runs(d), seed=self.seed,
            discrete_columns=discrete, max_rows=self.max_discovery_rows,
            collinear_threshold=self.collinear_threshold)
        return self.discovery_.probabilities

    def _algorithms(self, n_nodes: int) -> list[str]:
        """``algorithms=None``: PC and FCI up to 30 nodes, PC alone beyond (on the 40-node
        benchmark family FCI left the skeleton unchanged and cost a third of the fit at 100
        columns; docs/generators.md)."""
        if self.algorithms is not None:
            return list(self.algorithms)
        return list(ALGORITHMS) if n_nodes <= _AUTO_FCI_MAX_NODES else ["pc"]

    def _bootstrap_runs(self, n_nodes: int) -> int:
        """``bootstrap=None``: one resampled run per algorithm up to 30 nodes, none beyond."""
        if self.bootstrap is not None:
            return self.bootstrap
        return 1 if n_nodes <= _AUTO_BOOTSTRAP_MAX_NODES else 0

    def _fit_scms(self, data: pd.DataFrame) -> list[Any]:
        """One fitted SCM per DAG; a (node, parents) mechanism is fitted once and shared."""
        from dowhy import gcm

        gcm.config.disable_progress_bars()
        gcm.config.default_n_jobs = 1
        kinds = {s.node: s.kind for s in [*self.specs_, self.target_spec_]}
        cache: dict[tuple[str, tuple[str, ...]], Any] = {}
        scms = []
        for dag in self.dags_:
            scm = gcm.InvertibleStructuralCausalModel(nx.DiGraph(dag))
            for node in self.nodes_:
                parents = tuple(sorted(dag.predecessors(node)))
                key = (node, parents)
                if key not in cache:
                    cache[key] = self._fit_mechanism(node, parents, kinds[node], data)
                scm.set_causal_mechanism(node, cache[key])
                scm.graph.nodes[node]["parents_during_fit"] = list(parents)
            scms.append(scm)
        return scms

    def _fit_mechanism(self, node: str, parents: tuple[str, ...], kind: str,
                       data: pd.DataFrame) -> Any:
        from dowhy import gcm
        from dowhy.gcm.ml import SklearnClassificationModel, SklearnRegressionModel

        from engine.causal.mechanisms import (
            HeteroscedasticNoiseModel,
            SmoothedEmpiricalDistribution,
        )

        target = data[node].to_numpy()
        if not parents:
            if kind == "numeric" and self.root_smoothing > 0:
                mech = SmoothedEmpiricalDistribution(self.root_smoothing)
            else:
                mech = gcm.EmpiricalDistribution()
            mech.fit(target)
            return mech
        X = data[list(parents)].to_numpy()
        if kind == "categorical":
            name = self.classifier
            if name == "auto":
                name = _choose_classifier(_design(X), target.astype(str), self.seed)
            mech = gcm.ClassifierFCM(SklearnClassificationModel(
                _make_classifier(name, self.seed)))
        else:
            target = target.astype(float)
            name = self.regressor
            if name == "auto":
                name = _choose_regressor(_design(X), target, self.seed)
            if name in ("hnm", "hnm_linear"):
                mean = "hgb" if name == "hnm" else "linear"
                mech = HeteroscedasticNoiseModel(
                    SklearnRegressionModel(_make_regressor(mean, self.seed)),
                    SklearnRegressionModel(_make_scale_regressor(self.seed)))
            else:
                mech = gcm.AdditiveNoiseModel(SklearnRegressionModel(
                    _make_regressor(name, self.seed)))
        self.mechanisms_[f"{node} <- {','.join(parents)}"] = name
        mech.fit(X, target)
        return mech

    def _export_graphs(self, probs: np.ndarray) -> None:
        """Public views over real column names (the target node is named after ``y``)."""
        names: dict[str, Hashable] = {s.node: s.name for s in self.specs_}
        target_label: Hashable = self.target_name_
        if target_label in set(self.columns_):
            target_label = f"{self.target_name_} (target)"
        names[_TARGET_NODE] = target_label
        order = [s.node for s in self.specs_] + [_TARGET_NODE]
        labels = [names[n] for n in order]
        pos = {n: k for k, n in enumerate(self.nodes_)}
        full = np.zeros((len(order), len(order)))
        idx = [order.index(n) for n in self.nodes_]
        if idx:
            full[np.ix_(idx, idx)] = probs[np.ix_([pos[n] for n in self.nodes_],
                                                  [pos[n] for n in self.nodes_])]
        self.edge_probabilities_ = pd.DataFrame(full, index=labels, columns=labels)
        graph = most_probable_dag(probs, names=self.nodes_, max_parents=self.max_parents)
        graph.add_nodes_from(order)
        self.graph_ = nx.relabel_nodes(graph, names, copy=True)
        self.dags_ = [nx.relabel_nodes(g, names, copy=True) for g in self.dags_]

    # ------------------------------------------------------------------ sample
    def _sample(self, n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
        from dowhy import gcm

        return self._draw(n, seed, gcm.draw_samples)

    def _sample_class(self, n: int, seed: int, label: Any,
                      ) -> tuple[pd.DataFrame, pd.Series] | None:
        """Rows of class ``label`` by ancestral sampling with the label fixed, when the label
        is a root node of every SCM (then fixing it is conditioning on it); otherwise None:
        the base class keeps the sampled rows of that class (rejection), since fixing a label
        whose parents are features would break their dependence on it."""
        from dowhy import gcm

        if _TARGET_NODE not in self.nodes_ or not self.scms_ or any(
                scm.graph.in_degree(_TARGET_NODE) > 0 for scm in self.scms_):
            return None
        spec = self.target_spec_
        token = spec.tokens[spec.values.index(label)]

        def draw(scm: Any, m: int) -> pd.DataFrame:
            return gcm.interventional_samples(scm, {_TARGET_NODE: lambda _: token},
                                              num_samples_to_draw=m)

        return self._draw(n, seed, draw)

    def _draw(self, n: int, seed: int, draw: Any) -> tuple[pd.DataFrame, pd.Series]:
        """``n`` rows split evenly across the SCMs (``draw(scm, m)`` samples one), decoded."""
        from dowhy import gcm
        from threadpoolctl import threadpool_limits

        gcm.config.disable_progress_bars()
        k = max(1, len(self.scms_))
        counts = [n // k + (1 if i < n % k else 0) for i in range(k)]
        child_seeds = np.random.SeedSequence([seed, 17]).generate_state(k + 1)
        rng = np.random.default_rng(int(child_seeds[-1]))
        if self.nodes_ and self.scms_:
            parts = []
            with threadpool_limits(limits=1):
                for scm, m, s in zip(self.scms_, counts, child_seeds):
                    if m == 0:
                        continue
                    with seeded_global_numpy(int(s)):
                        parts.append(draw(scm, m)[self.nodes_])
            raw = pd.concat(parts, ignore_index=True)
            raw = raw.iloc[rng.permutation(len(raw))].reset_index(drop=True)
        else:
            raw = pd.DataFrame(index=pd.RangeIndex(n))
        X_out = {s.name: self._decode(s, raw, n, rng) for s in self.specs_}
        X_syn = pd.DataFrame(X_out, columns=self.columns_)
        y_syn = pd.Series(self._decode(self.target_spec_, raw, n, rng), name=self.target_name_)
        return X_syn, y_syn

    def _decode(self, spec: _Column, raw: pd.DataFrame, n: int, rng: np.random.Generator) -> Any:
        """Map one modelled column back to real values, re-injecting missingness."""
        if spec.kind == "constant":
            out = np.full(n, spec.constant, dtype=object)
        elif spec.kind == "numeric":
            z = raw[spec.node].to_numpy(dtype=float)
            if len(spec.quantiles):
                grid = np.linspace(0.0, 1.0, len(spec.quantiles))
                out = np.interp(norm.cdf(z), grid, spec.quantiles)
            else:
                vals = z * spec.std + spec.mean
                out = np.clip(vals, spec.lo, spec.hi) if self.clip else vals
        else:
            if spec.kind == "marginal":
                tokens = np.full(n, spec.tokens[0], dtype=object)
            else:
                tokens = raw[spec.node].astype(str).to_numpy(dtype=object)
            lookup = dict(zip(spec.tokens, spec.values))
            out = np.empty(n, dtype=object)
            for t, v in lookup.items():
                mask = tokens == t
                if not mask.any():
                    continue
                if t == _RARE:
                    picks = rng.choice(len(spec.rare_values), size=int(mask.sum()),
                                       p=spec.rare_probs)
                    rare = np.empty(len(spec.rare_values), dtype=object)
                    rare[:] = spec.rare_values
                    out[mask] = rare[picks]
                else:
                    out[mask] = [v] * int(mask.sum())
        if self.reinject_missing and spec.missing_rate > 0:
            out[rng.random(n) < spec.missing_rate] = np.nan
        return out
