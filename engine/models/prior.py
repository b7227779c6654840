"""Synthetic classification tasks from random structural causal models (the PFN's prior).

One task: a random DAG laid out in layers (every node may draw parents from any earlier
layer), each node computed by a random mechanism -- a small MLP unit with one of several
activations, a sum of decision stumps (tree-like), or a discretisation into categories --
plus noise. Features are sampled graph nodes (some warped to skewed/heavy-tailed values,
some turned into integer category codes, some given missing values); the target is another
node cut into 2-10 imbalanced classes. Missing values are imputed with the context-row median
and every feature is standardised with the context-row mean/std, as the engine's
preprocessor does at inference time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

_ACTIVATIONS = (
    np.tanh,
    lambda x: np.maximum(x, 0.0),
    np.sin,
    lambda x: x * x,
    np.abs,
    lambda x: x,
    lambda x: 1.0 / (1.0 + np.exp(-4.0 * x)),
    lambda x: np.sign(x) * np.sqrt(np.abs(x)),
)


@dataclass
class PriorConfig:
    """Ranges of the synthetic tasks."""

    min_features: int = 2
    max_features: int = 100
    n_query: int = 128
    max_classes: int = 10
    binary_prob: float = 0.5
    categorical_prob: float = 0.4
    missing_prob: float = 0.3
    warp_prob: float = 0.4
    noise_feature_prob: float = 0.3
    # Torch sampler only: chance that a task's features sit at random slots, not leading ones.
    random_slot_prob: float = 0.0
    # Torch sampler only: chance that a task declares its categorical features, which then
    # enter target-encoded as the PFN encodes a table's declared category columns.
    target_encode_prob: float = 0.0
    # Torch sampler only: chance that a non-root node's mechanism is a random axis-aligned
    # tree of depth 2-4 on its parents (interactions of thresholds, as a fitted tree makes).
    tree_prob: float = 0.0

    def to_dict(self) -> dict[str, int | float]:
        return asdict(self)


@dataclass
class TaskBatch:
    """``B`` tasks sharing context/query sizes; features zero-padded to ``max_features``."""

    x: torch.Tensor  # (B, n_ctx + n_query, max_features) float32
    y: torch.Tensor  # (B, n_ctx + n_query) int64
    n_features: torch.Tensor  # (B,) int64
    n_classes: torch.Tensor  # (B,) int64
    n_ctx: int
    # (B, max_features) bool: slots that hold a feature; None = the leading n_features slots.
    feature_mask: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> TaskBatch:
        mask = None if self.feature_mask is None else self.feature_mask.to(device)
        return TaskBatch(
            self.x.to(device),
            self.y.to(device),
            self.n_features.to(device),
            self.n_classes.to(device),
            self.n_ctx,
            mask,
        )


def _standardise_cols(a: np.ndarray) -> np.ndarray:
    sd = a.std(axis=0)
    return (a - a.mean(axis=0)) / np.where(sd > 1e-8, sd, 1.0)


def _root_noise(rng: np.random.Generator, n: int, w: int) -> np.ndarray:
    kind = rng.integers(0, 4, size=w)
    out = np.empty((n, w))
    for j, k in enumerate(kind):
        if k == 0:
            out[:, j] = rng.standard_normal(n)
        elif k == 1:
            out[:, j] = rng.uniform(-1.7, 1.7, n)
        elif k == 2:
            out[:, j] = rng.laplace(0.0, 0.7, n)
        else:  # two-component mixture
            out[:, j] = rng.standard_normal(n) * 0.5 + rng.choice([-1.5, 1.5], n)
    return out


def _layer(rng: np.random.Generator, prev: np.ndarray, w: int) -> np.ndarray:
    """Compute ``w`` new nodes from the earlier nodes ``prev`` (N, P)."""
    n, p = prev.shape
    # Sparse parent sets: each node has 1..4 parents, biased to the most recent nodes.
    n_par = rng.integers(1, min(4, p) + 1, size=w)
    weights = np.zeros((p, w))
    recent = np.linspace(0.3, 1.0, p) ** 2
    recent /= recent.sum()
    for j in range(w):
        par = rng.choice(p, size=n_par[j], replace=False, p=recent)
        weights[par, j] = rng.standard_normal(n_par[j]) / np.sqrt(n_par[j])
    pre = prev @ weights + rng.normal(0, 0.3, size=w)
    out = np.empty((n, w))
    kinds = rng.choice(3, size=w, p=[0.7, 0.2, 0.1])  # mlp unit, tree, discretised
    act = rng.integers(0, len(_ACTIVATIONS), size=w)
    for j in range(w):
        if kinds[j] == 0:
            out[:, j] = _ACTIVATIONS[act[j]](pre[:, j] * rng.uniform(0.5, 2.0))
        elif kinds[j] == 1:  # sum of decision stumps on the parents
            par = np.flatnonzero(weights[:, j])
            n_stump = rng.integers(2, 8)
            cols = rng.choice(par, size=n_stump)
            thr = prev[rng.integers(0, n, size=n_stump), cols]
            out[:, j] = (prev[:, cols] > thr) @ rng.standard_normal(n_stump)
        else:  # nearest-prototype category, each category a random value
            k = rng.integers(2, 7)
            cuts = np.sort(rng.choice(pre[:, j], size=k - 1, replace=False))
            out[:, j] = rng.standard_normal(k)[np.searchsorted(cuts, pre[:, j])]
    out = _standardise_cols(out)
    return out + rng.standard_normal((n, w)) * np.exp(rng.uniform(np.log(0.01), np.log(0.8), w))


def _classes(rng: np.random.Generator, nodes: np.ndarray, target: int, k: int) -> np.ndarray:
    """Cut a node (or an argmax over several nodes) into ``k`` imbalanced classes."""
    if k > 2 and rng.random() < 0.3:
        pick = rng.choice(nodes.shape[1], size=min(nodes.shape[1], 4), replace=False)
        scores = nodes[:, pick] @ rng.standard_normal((len(pick), k))
        scores += rng.normal(0, 0.5, size=k)
        return scores.argmax(axis=1)
    v = nodes[:, target]
    props = np.maximum(rng.dirichlet(np.full(k, rng.uniform(0.7, 6.0))), 0.03)
    qs = np.cumsum(props / props.sum())[:-1]
    cuts = np.quantile(v, qs)
    labels = np.searchsorted(cuts, v, side="right")
    if rng.random() < 0.3:  # non-monotone: scramble which interval maps to which class
        labels = rng.permutation(k)[labels]
    return labels


def _warp(rng: np.random.Generator, v: np.ndarray) -> np.ndarray:
    kind = rng.integers(0, 4)
    v = v / (v.std() + 1e-8)
    if kind == 0:
        return np.exp(v * rng.uniform(0.5, 2.0))
    if kind == 1:
        return v**3
    if kind == 2:
        return np.sign(v) * np.abs(v) ** rng.uniform(1.5, 3.0) * 10
    return np.round(np.exp(v) * rng.uniform(1, 20))  # count-like


def _categorical(rng: np.random.Generator, v: np.ndarray) -> np.ndarray:
    k = int(rng.integers(2, 11))
    cuts = np.quantile(v, np.sort(rng.uniform(0, 1, size=k - 1)))
    return rng.permutation(k)[np.searchsorted(cuts, v)].astype(np.float64)


def sample_task(
    rng: np.random.Generator,
    cfg: PriorConfig,
    n_rows: int,
    n_ctx: int,
    n_features: int,
    n_classes: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """One task: ``X (n_rows, n_features)`` preprocessed, labels, and its class count."""
    n_noise = 0
    if rng.random() < cfg.noise_feature_prob and n_features > 2:
        n_noise = int(rng.integers(1, max(2, n_features // 3) + 1))
    n_graph = n_features - n_noise
    n_layers = int(rng.integers(2, 6))
    width = max(2, int(np.ceil((n_graph + 1) * rng.uniform(1.0, 2.0) / n_layers)) + 1)
    layers = [_root_noise(rng, n_rows, width)]
    for _ in range(n_layers - 1):
        layers.append(_layer(rng, np.concatenate(layers, axis=1), width))
    nodes = np.concatenate(layers, axis=1)
    n_nodes = nodes.shape[1]
    target = int(rng.integers(width, n_nodes))  # a non-root node
    others = np.delete(np.arange(n_nodes), target)
    feat_nodes = rng.choice(others, size=min(n_graph, len(others)), replace=False)
    x = nodes[:, feat_nodes]
    if n_noise or x.shape[1] < n_features:
        x = np.concatenate([x, rng.standard_normal((n_rows, n_features - x.shape[1]))], axis=1)
    y = _classes(rng, nodes, target, n_classes)

    # Observed-feature effects: measurement noise, warps, categorical codes, missing values.
    x = x + rng.standard_normal(x.shape) * rng.uniform(0.0, 0.3)
    if rng.random() < cfg.warp_prob:
        for j in np.flatnonzero(rng.random(n_features) < rng.uniform(0.1, 0.6)):
            x[:, j] = _warp(rng, x[:, j])
    if rng.random() < cfg.categorical_prob:
        for j in np.flatnonzero(rng.random(n_features) < rng.uniform(0.1, 1.0)):
            x[:, j] = _categorical(rng, x[:, j])
    if rng.random() < cfg.missing_prob:
        rates = rng.uniform(0.0, 0.5, n_features) * (rng.random(n_features) < 0.5)
        x[rng.random(x.shape) < rates] = np.nan
    perm = rng.permutation(n_features)
    x = x[:, perm]

    # Classes must all appear among the context rows: merge absent ones into present ones.
    present = np.unique(y[:n_ctx])
    remap = np.full(max(n_classes, int(y.max()) + 1), -1)
    remap[present] = rng.permutation(len(present))
    missing = remap[y] < 0
    if missing.any():
        y[missing] = present[rng.integers(0, len(present), size=int(missing.sum()))]
    y = remap[y]
    return preprocess_like_engine(x, n_ctx), y.astype(np.int64), len(present)


def preprocess_like_engine(x: np.ndarray, n_ctx: int) -> np.ndarray:
    """Median-impute and standardise with statistics of the first ``n_ctx`` (context) rows."""
    ctx = x[:n_ctx]
    with np.errstate(all="ignore"):
        med = np.nanmedian(np.where(np.isnan(ctx).all(axis=0), 0.0, ctx), axis=0)
    med = np.nan_to_num(med)
    x = np.where(np.isnan(x), med, x)
    mean = x[:n_ctx].mean(axis=0)
    sd = x[:n_ctx].std(axis=0)
    return ((x - mean) / np.where(sd > 1e-8, sd, 1.0)).astype(np.float32)


def sample_batch(
    rng: np.random.Generator,
    cfg: PriorConfig,
    batch_size: int,
    n_ctx: int,
    n_query: int | None = None,
) -> TaskBatch:
    """``batch_size`` tasks with ``n_ctx`` context and ``n_query`` query rows each."""
    n_query = cfg.n_query if n_query is None else n_query
    n_rows = n_ctx + n_query
    xs = np.zeros((batch_size, n_rows, cfg.max_features), dtype=np.float32)
    ys = np.zeros((batch_size, n_rows), dtype=np.int64)
    nf = np.zeros(batch_size, dtype=np.int64)
    nc = np.zeros(batch_size, dtype=np.int64)
    lo, hi = np.log(cfg.min_features), np.log(cfg.max_features + 1)
    for i in range(batch_size):
        f = int(np.clip(np.exp(rng.uniform(lo, hi)), cfg.min_features, cfg.max_features))
        k = 2 if rng.random() < cfg.binary_prob else int(rng.integers(3, cfg.max_classes + 1))
        with np.errstate(over="ignore", invalid="ignore"):
            x, y, k_used = sample_task(rng, cfg, n_rows, n_ctx, f, k)
        xs[i, :, :f] = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        ys[i] = y
        nf[i] = f
        nc[i] = k_used
    return TaskBatch(
        torch.from_numpy(xs),
        torch.from_numpy(ys),
        torch.from_numpy(nf),
        torch.from_numpy(nc),
        n_ctx,
    )


def sample_context_size(rng: np.random.Generator, lo: int, hi: int) -> int:
    """Log-uniform context size in ``[lo, hi]``."""
    return int(np.clip(np.exp(rng.uniform(np.log(lo), np.log(hi + 1))), lo, hi))
