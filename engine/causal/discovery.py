"""Constraint-based causal discovery (causal-learn's PC and FCI) combined into edge probabilities.

``discover_edge_probabilities`` runs each requested algorithm on the full matrix and, optionally,
on bootstrap resamples of its rows, and averages the edge marks of every successful run into a
matrix ``P`` with ``P[i, j]`` = probability of the directed edge ``i -> j``
(``P[i, j] + P[j, i]`` is the probability that ``i`` and ``j`` are adjacent).

Edge marks (causal-learn convention, ``graph[i, j]`` is the mark at ``i`` on the edge ``i - j``:
-1 tail, 1 arrow, 2 circle) become direction probabilities as follows:

* ``i -> j`` and the partial forms ``i -o j`` / ``i o-> j`` (an arrow at ``j`` only, or a tail at
  ``i`` with a circle at ``j``): all mass on ``i -> j``;
* undirected ``i - j``, ``i o-o j`` and bidirected ``i <-> j``: half on each direction. A
  bidirected edge means a hidden common cause; a synthetic-data SCM over the observed columns
  still needs an edge there to reproduce the dependence, so it is kept with either direction.

Robustness: missing values are mean-imputed, constant columns are left out of the tests, and
duplicate or (near-)collinear columns (|correlation| >= ``collinear_threshold``, default 0.99)
are dropped before testing: the copy gets its original as its single parent,
``P[original, copy] = 1``. Near-deterministic pairs make Fisher-z partial correlations unstable
and break faithfulness (PC then drops strong edges), so they are modelled as parent and child
instead of being tested. A tiny seeded jitter keeps correlation
matrices invertible, and a run that still fails is retried with more jitter and then skipped.
If every run fails the result has no edges; discovery never raises on bad data.

Depth (the largest conditioning set): ``depth=None`` picks :func:`default_depth`, unlimited for
tables of at most 15 tested columns and 3 beyond (PC's and FCI's cost grows combinatorially with
the depth on wide tables). With Fisher-z the depth is also capped at ``n_rows - 5`` so the test
keeps positive degrees of freedom.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

TAIL, ARROW, CIRCLE = -1, 1, 2
ALGORITHMS = ("pc", "fci")
INDEP_TESTS = ("fisherz", "chisq", "gsq", "kci", "rcit", "rcit_mixed", "auto")
_DISCRETE_TESTS = ("chisq", "gsq")
RCIT_FEATURES = 25  # random Fourier features of the RCIT kernel test (causal-learn: 100)
AUTO_SLOW_TEST_MAX_COLUMNS = 20  # "auto" uses RCIT / G-square up to this many tested columns


@dataclass
class DiscoveryResult:
    """Edge probabilities over the columns of the input matrix, with run bookkeeping."""

    probabilities: np.ndarray
    n_runs: int = 0
    n_failed: int = 0
    depth: int = -1
    constant_columns: list[int] = field(default_factory=list)
    duplicates: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    indep_test: str = ""


def default_depth(n_columns: int) -> int:
    """Default PC/FCI depth: unlimited (-1) up to 15 tested columns, 3 for wider tables."""
    return -1 if n_columns <= 15 else 3


@contextlib.contextmanager
def seeded_global_numpy(seed: int) -> Iterator[None]:
    """Seed numpy's global RNG for the block, then restore its previous state."""
    state = np.random.get_state()
    np.random.seed(int(seed) % (2**32))
    try:
        yield
    finally:
        np.random.set_state(state)


def _direction_probability(mark_i: int, mark_j: int) -> float:
    """Probability of ``i -> j`` for an edge with mark ``mark_i`` at i and ``mark_j`` at j."""
    arrow_i, arrow_j = mark_i == ARROW, mark_j == ARROW
    if arrow_j and not arrow_i:
        return 1.0
    if arrow_i and not arrow_j:
        return 0.0
    if arrow_i and arrow_j:
        return 0.5
    if mark_i == TAIL and mark_j == CIRCLE:
        return 1.0
    if mark_i == CIRCLE and mark_j == TAIL:
        return 0.0
    return 0.5


def edge_probabilities_from_marks(graph: np.ndarray) -> np.ndarray:
    """Turn one causal-learn endpoint matrix into a directed edge-probability matrix."""
    g = np.asarray(graph)
    d = g.shape[0]
    out = np.zeros((d, d))
    for i in range(d):
        for j in range(i + 1, d):
            mi, mj = int(g[i, j]), int(g[j, i])
            if mi == 0 and mj == 0:
                continue
            p = _direction_probability(mi, mj)
            out[i, j], out[j, i] = p, 1.0 - p
    return out


def _impute(data: np.ndarray) -> np.ndarray:
    x = np.array(data, dtype=float, copy=True)
    if np.isnan(x).any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nanmean(x, axis=0)
        means = np.where(np.isfinite(means), means, 0.0)
        rows, cols = np.where(np.isnan(x))
        x[rows, cols] = means[cols]
    x[~np.isfinite(x)] = 0.0
    return x


def _find_duplicates(x: np.ndarray, cols: list[int], threshold: float) -> dict[int, int]:
    """Map each column whose |correlation| with an earlier kept one is >= ``threshold`` to it."""
    if len(cols) < 2:
        return {}
    z = x[:, cols]
    z = (z - z.mean(axis=0)) / z.std(axis=0)
    corr = np.abs(z.T @ z) / len(z)
    dup: dict[int, int] = {}
    for b in range(1, len(cols)):
        for a in range(b):
            if cols[a] in dup:
                continue
            if corr[a, b] >= threshold:
                dup[cols[b]] = cols[a]
                break
    return dup


def _discretise(x: np.ndarray, discrete: np.ndarray, n_bins: int) -> np.ndarray:
    """Integer codes per column; continuous columns become ``n_bins`` quantile bins."""
    out = np.empty(x.shape, dtype=np.int64)
    for c in range(x.shape[1]):
        col = x[:, c]
        if discrete[c] or len(np.unique(col)) <= n_bins:
            out[:, c] = np.unique(col, return_inverse=True)[1]
        else:
            edges = np.unique(np.quantile(col, np.linspace(0, 1, n_bins + 1)[1:-1]))
            out[:, c] = np.searchsorted(edges, col, side="right")
    return out


def resolve_test(indep_test: str, discrete: np.ndarray, label: int | None = None,
                 mixed_test: str = "fisherz") -> str:
    """``auto``: Fisher-z unless one of the slower, more powerful tests fits the table and
    there are at most ``AUTO_SLOW_TEST_MAX_COLUMNS`` tested columns: G-square when every
    column is discrete, the RCIT kernel test (it finds non-monotone dependence that Fisher-z
    misses) when every column except the class label ``label`` is continuous, ``mixed_test``
    when continuous and categorical features meet (Fisher-z unless the caller asks for
    ``rcit_mixed``). A kernel on category codes measures distances between arbitrary codes;
    on real mixed tables RCIT lowered TSTR at 10-30x the fit time, and G-square on wide
    discrete tables cost 10-30x Fisher-z's fit time (docs/generators.md)."""
    if indep_test != "auto":
        return indep_test
    discrete = np.asarray(discrete, dtype=bool)
    if len(discrete) > AUTO_SLOW_TEST_MAX_COLUMNS:
        return "fisherz"
    if len(discrete) and bool(np.all(discrete)):
        return "gsq"
    features = discrete
    if label is not None and 0 <= label < len(discrete):
        features = np.delete(discrete, label)
    return mixed_test if bool(np.any(features)) else "rcit"


def _pc_depth_kwargs(depth: int) -> dict[str, int | None]:
    from causallearn.search.ConstraintBased.PC import pc

    params = inspect.signature(pc).parameters
    if "max_k" in params:
        return {"max_k": None if depth < 0 else depth}
    if "depth" in params:
        return {"depth": depth}
    return {}


def _run_once(x: np.ndarray, algorithm: str, alpha: float, test: str, depth: int,
              discrete: np.ndarray | None = None) -> np.ndarray:
    """One PC or FCI run; returns the causal-learn endpoint matrix (``discrete`` flags the
    category-code columns for ``rcit_mixed``)."""
    sink = io.StringIO()
    extra: dict[str, object] = {"num_f": RCIT_FEATURES} if test == "rcit" else {}
    if test == "rcit_mixed":
        import engine.causal.mixed_rcit  # noqa: F401 - registers the test with causal-learn

        extra = {"num_f": RCIT_FEATURES,
                 "discrete": None if discrete is None else [bool(d) for d in discrete]}
    if test == "fisherz":  # the same test, cheaper per call (engine/causal/fast_fisherz.py)
        from engine.causal.fast_fisherz import FAST_FISHERZ

        test = FAST_FISHERZ
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink):
        warnings.simplefilter("ignore")
        if algorithm == "pc":
            from causallearn.search.ConstraintBased.PC import pc

            cg = pc(x, alpha, test, stable=True, show_progress=False, verbose=False,
                    **_pc_depth_kwargs(depth), **extra)
            return np.asarray(cg.G.graph)
        from causallearn.search.ConstraintBased.FCI import fci

        g, _ = fci(x, test, alpha, depth=depth, max_path_length=-1 if depth < 0 else depth,
                   show_progress=False, verbose=False, **extra)
        return np.asarray(g.graph)


def discover_edge_probabilities(
    data: np.ndarray,
    *,
    algorithms: Sequence[str] = ALGORITHMS,
    alpha: float = 0.05,
    indep_test: str = "fisherz",
    depth: int | None = None,
    bootstrap: int = 0,
    seed: int = 0,
    discrete_columns: Sequence[bool] | None = None,
    max_rows: int | None = None,
    jitter: float = 1e-6,
    n_bins: int = 5,
    collinear_threshold: float = 0.99,
    label_column: int | None = None,
) -> DiscoveryResult:
    """Run PC/FCI on ``data`` (rows x columns, numeric) and average their edge marks.

    ``bootstrap`` adds that many runs per algorithm on rows resampled with replacement (graded
    probabilities); ``max_rows`` subsamples large tables first; ``discrete_columns`` flags
    columns that hold category codes (used to bin the others for ``chisq``/``gsq``);
    ``collinear_threshold`` is the |correlation| from which a column counts as a copy;
    ``indep_test="auto"`` picks the test per table (:func:`resolve_test`; ``label_column`` is
    the class label's column, which may be discrete in a table that gets the kernel test).
    """
    start = time.perf_counter()
    algos = _checked_algorithms(algorithms, indep_test, alpha)

    x = _impute(np.atleast_2d(np.asarray(data, dtype=float)))
    n, d = x.shape
    discrete = (np.zeros(d, dtype=bool) if discrete_columns is None
                else np.asarray(discrete_columns, dtype=bool))
    rng = np.random.default_rng(seed)
    if max_rows is not None and n > max_rows:
        x = x[np.sort(rng.choice(n, size=max_rows, replace=False))]
        n = max_rows

    constant = [c for c in range(d) if np.ptp(x[:, c]) == 0.0]
    varying = [c for c in range(d) if c not in constant]
    duplicates = _find_duplicates(x, varying, min(collinear_threshold, 1.0 - 1e-9))
    active = [c for c in varying if c not in duplicates]

    label = active.index(label_column) if label_column in active else None
    indep_test = resolve_test(indep_test, discrete[active], label)
    result_test = indep_test
    eff_depth = default_depth(len(active)) if depth is None else int(depth)
    if indep_test == "fisherz" and len(active) - 2 > n - 5:
        eff_depth = max(0, n - 5) if eff_depth < 0 else min(eff_depth, max(0, n - 5))

    probs = np.zeros((d, d))
    result = DiscoveryResult(probs, depth=eff_depth, constant_columns=constant,
                             duplicates=duplicates, indep_test=result_test)
    for copy, original in duplicates.items():
        probs[original, copy] = 1.0

    if len(active) >= 2 and n >= 5:
        row_sets = [np.arange(n)] + [rng.integers(0, n, size=n) for _ in range(max(0, bootstrap))]
        run_seeds = rng.integers(0, 2**31 - 1, size=(len(row_sets), len(algos)))
        mean = _mean_marks(x[:, active], discrete[active], row_sets, run_seeds, algos, result,
                           alpha=alpha, indep_test=indep_test, jitter=jitter, n_bins=n_bins)
        if mean is not None:
            probs[np.ix_(active, active)] = mean
    result.seconds = time.perf_counter() - start
    return result


def _checked_algorithms(algorithms: Sequence[str], indep_test: str, alpha: float) -> list[str]:
    """The lower-cased algorithm names, after refusing unknown names, tests and alphas."""
    algos = [a.lower() for a in algorithms]
    bad = [a for a in algos if a not in ALGORITHMS]
    if bad or not algos:
        raise ValueError(f"unknown discovery algorithm(s) {bad or algos}; known: {ALGORITHMS}")
    if indep_test not in INDEP_TESTS:
        raise ValueError(f"unknown independence test '{indep_test}'; known: {INDEP_TESTS}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    return algos


def _mean_marks(x: np.ndarray, discrete: np.ndarray, row_sets: list[np.ndarray],
                run_seeds: np.ndarray, algos: list[str], result: DiscoveryResult, *,
                alpha: float, indep_test: str, jitter: float, n_bins: int) -> np.ndarray | None:
    """Edge probabilities averaged over every (row set, algorithm) run that succeeded (None
    if none did); counts runs and failures on ``result``."""
    acc = np.zeros((x.shape[1], x.shape[1]))
    ok = 0
    for r, rows in enumerate(row_sets):
        sub = x[rows]
        for a, algo in enumerate(algos):
            result.n_runs += 1
            marks = _run_with_retries(sub, discrete, algo, alpha, indep_test, result.depth,
                                      jitter, n_bins, int(run_seeds[r, a]), result.errors)
            if marks is None:
                result.n_failed += 1
                continue
            acc += edge_probabilities_from_marks(marks)
            ok += 1
    return acc / ok if ok else None


def _run_with_retries(
    sub: np.ndarray,
    discrete: np.ndarray,
    algo: str,
    alpha: float,
    test: str,
    depth: int,
    jitter: float,
    n_bins: int,
    seed: int,
    errors: list[str],
) -> np.ndarray | None:
    """Run one algorithm, retrying with growing jitter; ``None`` when every attempt fails."""
    rng = np.random.default_rng(seed)
    if test in _DISCRETE_TESTS:
        prepared = [_discretise(sub, discrete, n_bins)]
    elif test == "rcit_mixed":  # exact codes: it one-hot encodes them (no jitter needed)
        prepared = [sub]
    else:
        std = sub.std(axis=0)
        std[std == 0] = 1.0
        z = (sub - sub.mean(axis=0)) / std
        noise = rng.standard_normal(z.shape)
        prepared = [z + scale * noise for scale in (jitter, jitter * 1e3, 1e-2)]
    for attempt in prepared:
        try:
            with seeded_global_numpy(seed):
                marks = _run_once(attempt, algo, alpha, test, depth, discrete)
            if marks.shape == (sub.shape[1], sub.shape[1]):
                return marks
            errors.append(f"{algo}: unexpected graph shape {marks.shape}")
        except Exception as exc:  # noqa: BLE001 - discovery must never crash the fit
            errors.append(f"{algo}: {type(exc).__name__}: {exc}")
    return None
