"""Turn an edge-probability matrix into DAGs, always terminating.

``P[i, j]`` is the probability of ``i -> j``; ``P[i, j] + P[j, i]`` that of an adjacency.
Orientation is greedy: edges are added in decreasing order of confidence, and an edge whose
direction would close a cycle is added reversed instead. Reversing always succeeds (if ``j``
already reaches ``i``, then ``i`` cannot reach ``j`` in an acyclic graph), so the skeleton is
kept, the result is acyclic, and the work is bounded by ``O(E * (V + E))``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import networkx as nx
import numpy as np


def _check(P: np.ndarray) -> np.ndarray:
    p = np.nan_to_num(np.asarray(P, dtype=float), nan=0.0)
    if p.ndim != 2 or p.shape[0] != p.shape[1]:
        raise ValueError(f"edge probabilities must be a square matrix, got shape {p.shape}")
    p = np.clip(p, 0.0, 1.0)
    np.fill_diagonal(p, 0.0)
    return p


def _names(n: int, names: Sequence[Hashable] | None) -> list[Hashable]:
    if names is None:
        return list(range(n))
    names = list(names)
    if len(names) != n or len(set(names)) != n:
        raise ValueError("names must be unique and match the matrix size")
    return names


def orient_acyclic(
    edges: Sequence[tuple[int, int, float]],
    n: int,
    names: Sequence[Hashable] | None = None,
) -> nx.DiGraph:
    """Add ``(i, j, weight)`` edges in the given order, reversing any that would close a cycle.

    Duplicate or opposite edges of an already added pair are skipped.
    """
    labels = _names(n, names)
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    for i, j, w in edges:
        if i == j or g.has_edge(i, j) or g.has_edge(j, i):
            continue
        if nx.has_path(g, j, i):
            i, j = j, i
        g.add_edge(i, j, weight=float(w))
    return nx.relabel_nodes(g, dict(enumerate(labels)), copy=True)


def _limit_parents(
    g: nx.DiGraph, adjacency: dict[tuple[Hashable, Hashable], float], max_parents: int | None
) -> nx.DiGraph:
    """Keep only each node's ``max_parents`` most probable parents (removal keeps acyclicity)."""
    if max_parents is None or max_parents < 0:
        return g
    for node in list(g.nodes):
        parents = list(g.predecessors(node))
        if len(parents) <= max_parents:
            continue
        ranked = sorted(parents, key=lambda p: -adjacency[(p, node)])
        for p in ranked[max_parents:]:
            g.remove_edge(p, node)
    return g


def most_probable_dag(
    P: np.ndarray,
    names: Sequence[Hashable] | None = None,
    threshold: float = 0.5,
    max_parents: int | None = None,
) -> nx.DiGraph:
    """The DAG with every adjacency of probability >= ``threshold``, oriented by majority.

    Ties (``P[i, j] == P[j, i]``) point from the lower to the higher index; edges are added in
    decreasing order of directed probability so the least certain ones are the ones reversed.
    """
    p = _check(P)
    n = p.shape[0]
    edges: list[tuple[int, int, float]] = []
    adjacency: dict[tuple[Hashable, Hashable], float] = {}
    labels = _names(n, names)
    for i in range(n):
        for j in range(i + 1, n):
            a = p[i, j] + p[j, i]
            if a <= 0.0 or a < threshold:
                continue
            src, dst = (i, j) if p[i, j] >= p[j, i] else (j, i)
            edges.append((src, dst, float(p[src, dst])))
            adjacency[(labels[i], labels[j])] = adjacency[(labels[j], labels[i])] = float(a)
    edges.sort(key=lambda e: (-e[2], e[0], e[1]))
    return _limit_parents(orient_acyclic(edges, n, labels), adjacency, max_parents)


def sample_dags(
    P: np.ndarray,
    k: int,
    seed: int,
    names: Sequence[Hashable] | None = None,
    max_parents: int | None = None,
    include_most_probable: bool = True,
) -> list[nx.DiGraph]:
    """Draw ``k`` DAGs: each adjacency with its probability, each direction with its share.

    With ``include_most_probable`` the first DAG is :func:`most_probable_dag`. Sampled edges are
    added in decreasing order of directed probability (random tie-break), reversing cycle
    closers, so every draw terminates and is acyclic. The same seed gives the same DAGs.
    """
    p = _check(P)
    n = p.shape[0]
    labels = _names(n, names)
    rng = np.random.default_rng(seed)
    dags: list[nx.DiGraph] = []
    if include_most_probable and k > 0:
        dags.append(most_probable_dag(p, labels, max_parents=max_parents))
    iu, ju = np.triu_indices(n, 1)
    adj = p[iu, ju] + p[ju, iu]
    for _ in range(len(dags), max(0, k)):
        keep = rng.random(len(adj)) < np.minimum(adj, 1.0)
        forward_u = rng.random(len(adj))
        tie = rng.random(len(adj))
        edges: list[tuple[int, int, float, float]] = []
        adjacency: dict[tuple[Hashable, Hashable], float] = {}
        for e in np.flatnonzero(keep):
            i, j, a = int(iu[e]), int(ju[e]), float(adj[e])
            forward = forward_u[e] < p[i, j] / a
            src, dst = (i, j) if forward else (j, i)
            edges.append((src, dst, float(p[src, dst]), float(tie[e])))
            adjacency[(labels[i], labels[j])] = adjacency[(labels[j], labels[i])] = a
        edges.sort(key=lambda e: (-e[2], e[3]))
        g = orient_acyclic([(s, t, w) for s, t, w, _ in edges], n, labels)
        dags.append(_limit_parents(g, adjacency, max_parents))
    return dags
