"""Causal structure learning for the ``scm`` generator: discovery (PC, FCI) and DAG sampling."""

from __future__ import annotations

from engine.causal.dag_sampling import most_probable_dag, orient_acyclic, sample_dags
from engine.causal.discovery import (
    DiscoveryResult,
    default_depth,
    discover_edge_probabilities,
    edge_probabilities_from_marks,
)

__all__ = [
    "DiscoveryResult",
    "default_depth",
    "discover_edge_probabilities",
    "edge_probabilities_from_marks",
    "most_probable_dag",
    "orient_acyclic",
    "sample_dags",
]
