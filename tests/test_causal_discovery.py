"""Causal discovery (PC/FCI edge probabilities) and always-terminating DAG orientation."""

from __future__ import annotations

import itertools
import time

import networkx as nx
import numpy as np
import pytest

from engine.causal import (
    default_depth,
    discover_edge_probabilities,
    edge_probabilities_from_marks,
    most_probable_dag,
    orient_acyclic,
    sample_dags,
)
from engine.causal.discovery import AUTO_SLOW_TEST_MAX_COLUMNS, resolve_test

# A fixed 10-node DAG: (parent, child, weight).
TRUE_EDGES = [
    (0, 2, 0.9), (1, 2, -0.8), (2, 3, 0.9), (3, 4, 0.8), (1, 5, 0.9), (5, 6, -0.9),
    (4, 7, 0.8), (6, 7, 0.7), (0, 8, 0.8), (7, 9, 0.9), (8, 9, -0.8),
]


def linear_gaussian(n: int, seed: int = 0, d: int = 10) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros((n, d))
    for j in range(d):
        x[:, j] = rng.normal(size=n)
        for p, c, w in TRUE_EDGES:
            if c == j:
                x[:, j] += w * x[:, p]
    return x


def skeleton_f1(graph: nx.DiGraph, edges: list[tuple[int, int, float]]) -> float:
    true = {frozenset((p, c)) for p, c, _ in edges}
    est = {frozenset(e) for e in graph.edges}
    tp = len(true & est)
    return 2 * tp / (len(true) + len(est)) if (true or est) else 1.0


# ---------------------------------------------------------------- marks -> probabilities
def test_marks_to_probabilities():
    g = np.zeros((5, 5), dtype=int)
    g[0, 1], g[1, 0] = -1, 1  # 0 -> 1
    g[1, 2], g[2, 1] = -1, -1  # 1 - 2
    g[2, 3], g[3, 2] = 1, 1  # 2 <-> 3
    g[3, 4], g[4, 3] = 2, 1  # 3 o-> 4
    p = edge_probabilities_from_marks(g)
    assert p[0, 1] == 1.0 and p[1, 0] == 0.0
    assert p[1, 2] == p[2, 1] == 0.5
    assert p[2, 3] == p[3, 2] == 0.5
    assert p[3, 4] == 1.0 and p[4, 3] == 0.0
    assert p[0, 4] == p[4, 0] == 0.0
    assert np.all(p + p.T <= 1.0)


def test_default_depth():
    assert default_depth(15) == -1
    assert default_depth(16) == 3


# ---------------------------------------------------------------- discovery
@pytest.mark.parametrize("algorithms", [("pc",), ("fci",), ("pc", "fci")])
def test_skeleton_recovery_linear_gaussian(algorithms):
    x = linear_gaussian(2000)
    res = discover_edge_probabilities(x, algorithms=algorithms, seed=0)
    assert res.n_failed == 0
    assert skeleton_f1(most_probable_dag(res.probabilities), TRUE_EDGES) >= 0.8


def test_probabilities_are_valid_and_graded_with_bootstrap():
    x = linear_gaussian(300, seed=1)
    res = discover_edge_probabilities(x, bootstrap=3, seed=3)
    p = res.probabilities
    assert res.n_runs == 8
    assert p.shape == (10, 10)
    assert np.all((p >= 0) & (p <= 1)) and np.all(np.diag(p) == 0)
    assert np.all(p + p.T <= 1.0 + 1e-12)
    again = discover_edge_probabilities(x, bootstrap=3, seed=3).probabilities
    np.testing.assert_array_equal(p, again)


def test_degenerate_columns_never_crash():
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    b = a + rng.normal(size=200)
    x = np.column_stack([a, b, a.copy(), 3 * b - 1, np.ones(200), b + a, rng.normal(size=200)])
    x[rng.random(x.shape) < 0.05] = np.nan
    res = discover_edge_probabilities(x, seed=0)
    assert 4 in res.constant_columns
    assert np.all(np.isfinite(res.probabilities))
    # exact copies / affine copies of a column are dropped and hang off their original
    y = np.column_stack([a, b, a.copy(), 2 * b + 1, rng.normal(size=200)])
    res = discover_edge_probabilities(y, seed=0)
    assert res.duplicates == {2: 0, 3: 1}
    assert res.probabilities[0, 2] == 1.0 and res.probabilities[1, 3] == 1.0


@pytest.mark.parametrize("shape", [(3, 4), (6, 1), (1, 3), (4, 30)])
def test_tiny_inputs(shape):
    x = np.random.default_rng(0).normal(size=shape)
    res = discover_edge_probabilities(x, seed=0)
    assert res.probabilities.shape == (shape[1], shape[1])
    assert np.all(np.isfinite(res.probabilities))


def test_all_constant_and_all_nan():
    x = np.ones((50, 4))
    x[:, 3] = np.nan
    res = discover_edge_probabilities(x)
    assert not res.probabilities.any()


@pytest.mark.parametrize("test", ["chisq", "gsq"])
def test_discrete_tests(test):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, 1000)
    b = (a + (rng.random(1000) < 0.2)) % 3
    c = rng.normal(size=1000) + b
    res = discover_edge_probabilities(np.column_stack([a, b, c]), algorithms=["pc"],
                                      indep_test=test, discrete_columns=[True, True, False])
    p = res.probabilities
    assert p[0, 1] + p[1, 0] == 1.0 and p[1, 2] + p[2, 1] == 1.0
    assert p[0, 2] + p[2, 0] == 0.0


def test_bad_arguments():
    x = np.zeros((10, 2))
    with pytest.raises(ValueError):
        discover_edge_probabilities(x, algorithms=["ges"])
    with pytest.raises(ValueError):
        discover_edge_probabilities(x, indep_test="pearson")
    with pytest.raises(ValueError):
        discover_edge_probabilities(x, alpha=1.5)


# ---------------------------------------------------------------- orientation
def adversarial_matrices() -> list[np.ndarray]:
    n = 12
    half = np.full((n, n), 0.5)
    np.fill_diagonal(half, 0)
    cycle = np.zeros((n, n))
    for i in range(n):
        cycle[i, (i + 1) % n] = 1.0
    rng = np.random.default_rng(0)
    rand = rng.random((n, n))
    tourn = np.triu(np.ones((n, n)), 1).T  # every edge points from high to low index...
    tourn[0, n - 1] = 1.0  # ...except one that closes many cycles
    tourn[n - 1, 0] = 0.0
    return [half, cycle, rand, tourn, np.zeros((n, n)), np.ones((n, n))]


@pytest.mark.parametrize("k", range(6))
def test_orientation_always_acyclic_and_terminates(k):
    p = adversarial_matrices()[k]
    start = time.perf_counter()
    g = most_probable_dag(p)
    assert nx.is_directed_acyclic_graph(g) and g.number_of_nodes() == len(p)
    dags = sample_dags(p, 10, seed=k)
    assert all(nx.is_directed_acyclic_graph(d) for d in dags)
    assert time.perf_counter() - start < 5.0
    if k in (0, 1, 3, 5):  # every adjacency of probability >= 0.5 is kept, just oriented
        adj = {frozenset((i, j)) for i, j in itertools.combinations(range(len(p)), 2)
               if p[i, j] + p[j, i] >= 0.5}
        assert {frozenset(e) for e in g.edges} == adj


def test_orient_acyclic_reverses_cycle_closers():
    g = orient_acyclic([(0, 1, 1.0), (1, 2, 1.0), (2, 0, 0.9)], 3, names=["a", "b", "c"])
    assert set(g.edges) == {("a", "b"), ("b", "c"), ("a", "c")}


def test_most_probable_orientation_follows_majority():
    p = np.zeros((3, 3))
    p[0, 1], p[1, 0] = 0.8, 0.2
    p[2, 1], p[1, 2] = 0.6, 0.1
    p[0, 2], p[2, 0] = 0.2, 0.1  # adjacency 0.3 < 0.5: left out
    g = most_probable_dag(p, names=["x", "y", "z"])
    assert set(g.edges) == {("x", "y"), ("z", "y")}


def test_sample_dags_seeded_and_max_parents():
    p = np.random.default_rng(1).random((8, 8)) * 0.5
    a = sample_dags(p, 5, seed=7, max_parents=2)
    b = sample_dags(p, 5, seed=7, max_parents=2)
    c = sample_dags(p, 5, seed=8, max_parents=2)
    assert [sorted(g.edges) for g in a] == [sorted(g.edges) for g in b]
    assert [sorted(g.edges) for g in a[1:]] != [sorted(g.edges) for g in c[1:]]
    assert all(max(dict(g.in_degree()).values()) <= 2 for g in a)
    assert sorted(a[0].edges) == sorted(most_probable_dag(p, max_parents=2).edges)


def test_bad_matrix():
    with pytest.raises(ValueError):
        most_probable_dag(np.zeros((2, 3)))
    with pytest.raises(ValueError):
        sample_dags(np.zeros((2, 2)), 2, seed=0, names=["a", "a"])


def test_auto_test_gsquare_discrete_kernel_small_continuous_fisherz_otherwise():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 3, 800)
    b = (a + (rng.random(800) < 0.2)) % 3
    c = (b + (rng.random(800) < 0.2)) % 3
    disc = discover_edge_probabilities(np.column_stack([a, b, c]), algorithms=["pc"],
                                       indep_test="auto", discrete_columns=[True] * 3)
    assert disc.indep_test == "gsq"
    p = disc.probabilities
    assert p[0, 1] + p[1, 0] == 1.0 and p[1, 2] + p[2, 1] == 1.0 and p[0, 2] + p[2, 0] == 0.0
    labelled = discover_edge_probabilities(np.column_stack([a, rng.normal(size=800) + b]),
                                           algorithms=["pc"], indep_test="auto",
                                           discrete_columns=[True, False], label_column=0)
    assert labelled.indep_test == "rcit"  # continuous features, a discrete class label
    mixed = discover_edge_probabilities(np.column_stack([a, rng.normal(size=800) + b]),
                                        algorithms=["pc"], indep_test="auto",
                                        discrete_columns=[True, False])
    assert mixed.indep_test == "fisherz"  # a categorical feature: no kernel on its codes
    assert resolve_test("auto", np.array([False, True, False]), label=1) == "rcit"
    assert resolve_test("auto", np.array([True, True, False]), label=1) == "fisherz"
    assert resolve_test("auto", np.zeros(AUTO_SLOW_TEST_MAX_COLUMNS, dtype=bool)) == "rcit"
    assert resolve_test("auto", np.zeros(AUTO_SLOW_TEST_MAX_COLUMNS + 1, dtype=bool)) == "fisherz"
    assert resolve_test("auto", np.ones(AUTO_SLOW_TEST_MAX_COLUMNS, dtype=bool)) == "gsq"
    assert resolve_test("auto", np.ones(AUTO_SLOW_TEST_MAX_COLUMNS + 1, dtype=bool)) == "fisherz"


def test_rcit_finds_a_non_monotone_edge():
    rng = np.random.default_rng(0)
    a = rng.normal(size=800)
    b = a**2 + 0.3 * rng.normal(size=800)  # uncorrelated with a: invisible to Fisher-z
    x = np.column_stack([a, b, rng.normal(size=800)])
    rc = discover_edge_probabilities(x, algorithms=["pc"], indep_test="rcit").probabilities
    assert rc[0, 1] + rc[1, 0] == 1.0
    assert rc[0, 2] + rc[2, 0] == 0.0
    again = discover_edge_probabilities(x, algorithms=["pc"], indep_test="rcit").probabilities
    assert np.array_equal(rc, again)


def test_fast_fisherz_matches_causal_learn():
    from causallearn.search.ConstraintBased.PC import pc
    from causallearn.utils.cit import FisherZ

    from engine.causal.fast_fisherz import FAST_FISHERZ, FastFisherZ

    rng = np.random.default_rng(3)
    z = rng.normal(size=(500, 3))
    x = np.column_stack([z, z @ rng.normal(size=(3, 5)) + rng.normal(size=(500, 5))])
    slow, fast = FisherZ(x), FastFisherZ(x)
    for i, j, cond in [(0, 1, []), (3, 4, [0]), (5, 2, [0, 1]), (6, 7, [0, 1, 2]), (7, 6, (2, 1))]:
        assert abs(fast(i, j, cond) - slow(i, j, cond)) < 1e-12
    a = pc(x, 0.05, "fisherz", show_progress=False).G.graph
    b = pc(x, 0.05, FAST_FISHERZ, show_progress=False).G.graph
    assert np.array_equal(a, b)
