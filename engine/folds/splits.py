"""Fold plan: stratified outer test fold, then a seeded stratified subsample of real rows.

For (dataset, fold, seed): rows are assigned to ``outer_folds`` stratified folds; fold ``k`` is
the test fold (capped at ``max_test_rows`` by a stratified subsample). From the remaining rows,
``n_train`` are drawn (stratified); ``val_fraction`` of them are validation, the rest are the
training rows: the context of the model and the only rows a generator ever sees.

With an imbalance (``minority_share``), the ``n_train`` rows are drawn so that the dataset's
smallest class (ties: the smaller label) makes up exactly ``round(share x n_train)`` of them,
the rest stratified over the other classes; validation is split off afterwards (so it shares
the imbalance) and the test rows are the same as without it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from engine.core.errors import DataError


class ImbalanceError(DataError):
    """The rows outside a test fold cannot give the asked minority share."""


@dataclass(frozen=True)
class FoldSplit:
    """Row positions (into the dataset) of one fold's train, validation and test rows."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    ood_test: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    """Out-of-domain test rows under a shift (``engine.folds.shift``); empty without one."""


def derive_seed(*parts: object) -> int:
    """A stable 32-bit seed from any parts (independent of Python's hash randomisation)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def stratified_take(y: np.ndarray, idx: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Pick ``n`` of ``idx`` keeping class shares (largest remainder; every class >= 1 if room)."""
    if n >= len(idx):
        return rng.permutation(idx)
    classes, counts = np.unique(y[idx], return_counts=True)
    quota = counts / counts.sum() * n
    take = np.floor(quota).astype(int)
    if n >= len(classes):
        take = np.maximum(take, 1)
    take = np.minimum(take, counts)
    while take.sum() > n:
        take[np.argmax(take)] -= 1
    order = np.argsort(-(quota - np.floor(quota)))
    i = 0
    while take.sum() < n:
        c = order[i % len(order)]
        if take[c] < counts[c]:
            take[c] += 1
        i += 1
    chosen = [rng.permutation(idx[y[idx] == c])[:t] for c, t in zip(classes, take)]
    return rng.permutation(np.concatenate(chosen))


def outer_fold_ids(y: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Stratified fold id of every row (each class spread evenly over the folds)."""
    rng = np.random.default_rng(derive_seed("outer", seed))
    ids = np.empty(len(y), dtype=np.int64)
    for c in np.unique(y):
        pos = rng.permutation(np.flatnonzero(y == c))
        offset = int(rng.integers(n_folds))
        ids[pos] = (np.arange(len(pos)) + offset) % n_folds
    return ids


def imbalance_minority(y: np.ndarray) -> int:
    """The class an imbalance shrinks: the smallest class of the table (ties: smaller code)."""
    classes, counts = np.unique(y, return_counts=True)
    return int(classes[np.argmin(counts)])


def imbalanced_take(y: np.ndarray, idx: np.ndarray, n: int, share: float,
                    rng: np.random.Generator, label: str) -> np.ndarray:
    """``n`` of ``idx`` of which exactly ``round(share x n)`` are of the table's smallest class,
    the others stratified over the remaining classes."""
    minority = imbalance_minority(y)
    n_min = int(round(share * n))
    pool_min = idx[y[idx] == minority]
    pool_rest = idx[y[idx] != minority]
    if len(pool_min) < n_min or len(pool_rest) < n - n_min:
        have, need = ((len(pool_min), n_min) if len(pool_min) < n_min
                      else (len(pool_rest), n - n_min))
        which = "minority-class" if len(pool_min) < n_min else "other-class"
        raise ImbalanceError(f"{label}: minority_share {share:g} x n_train {n} needs {need} "
                             f"{which} rows but only {have} remain outside the test fold")
    chosen = rng.permutation(pool_min)[:n_min]
    others = stratified_take(y, pool_rest, n - n_min, rng)
    return rng.permutation(np.concatenate([chosen, others]))


def make_fold(y: np.ndarray, fold: int, n_folds: int, seed: int, n_train: int,
              val_fraction: float, max_test_rows: int, dataset: str = "",
              minority_share: float | None = None,
              in_domain: np.ndarray | None = None) -> FoldSplit:
    """Split label codes ``y`` into train/validation/test row positions for one fold; with
    ``in_domain`` (a row mask) every row comes from the in-domain pool."""
    y = np.asarray(y)
    if not 0 <= fold < n_folds:
        raise DataError(f"{dataset}: fold {fold} outside 0..{n_folds - 1}")
    ids = outer_fold_ids(y, n_folds, seed)
    rng = np.random.default_rng(derive_seed("inner", seed, fold))
    keep = np.ones(len(y), dtype=bool) if in_domain is None else in_domain
    test = np.flatnonzero((ids == fold) & keep)
    rest = np.flatnonzero((ids != fold) & keep)
    if len(test) == 0 or len(rest) < 4:
        raise DataError(f"{dataset}: too few rows ({len(y)}) for {n_folds} outer folds")
    return draw_scarce(y, rest, test, rng, n_train, val_fraction, max_test_rows,
                       f"{dataset} fold {fold}", minority_share)


def draw_scarce(y: np.ndarray, rest: np.ndarray, test: np.ndarray, rng: np.random.Generator,
                n_train: int, val_fraction: float, max_test_rows: int, label: str,
                minority_share: float | None = None) -> FoldSplit:
    """Cap ``test`` at ``max_test_rows`` and draw ``n_train`` rows of ``rest`` (stratified, or
    at ``minority_share``), ``val_fraction`` of them validation; shared by every split
    protocol. The test rows never depend on ``minority_share``."""
    test = np.sort(stratified_take(y, test, max_test_rows, rng))
    if minority_share is None:
        drawn = stratified_take(y, rest, n_train, rng)
    else:
        drawn = imbalanced_take(y, rest, n_train, minority_share, rng, label)
    n_val = max(1, int(round(val_fraction * len(drawn))))
    val = stratified_take(y, drawn, n_val, rng)
    train = np.setdiff1d(drawn, val)
    if len(np.unique(y[train])) < 2:
        raise DataError(f"{label}: the training rows hold a single class")
    return FoldSplit(train=np.sort(train), val=np.sort(val), test=test)
