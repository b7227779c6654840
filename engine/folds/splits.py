"""Fold plan: stratified outer test fold, then a seeded stratified subsample of real rows.

For (dataset, fold, seed): rows are assigned to ``outer_folds`` stratified folds; fold ``k`` is
the test fold (capped at ``max_test_rows`` by a stratified subsample). From the remaining rows,
``n_train`` are drawn (stratified); ``val_fraction`` of them are validation, the rest are the
training rows: the context of the model and the only rows a generator ever sees.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from engine.core.errors import DataError


@dataclass(frozen=True)
class FoldSplit:
    """Row positions (into the dataset) of one fold's train, validation and test rows."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


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


def make_fold(y: np.ndarray, fold: int, n_folds: int, seed: int, n_train: int,
              val_fraction: float, max_test_rows: int, dataset: str = "") -> FoldSplit:
    """Split label codes ``y`` into train/validation/test row positions for one fold."""
    y = np.asarray(y)
    if not 0 <= fold < n_folds:
        raise DataError(f"{dataset}: fold {fold} outside 0..{n_folds - 1}")
    ids = outer_fold_ids(y, n_folds, seed)
    rng = np.random.default_rng(derive_seed("inner", seed, fold))
    test = np.flatnonzero(ids == fold)
    rest = np.flatnonzero(ids != fold)
    if len(test) == 0 or len(rest) < 4:
        raise DataError(f"{dataset}: too few rows ({len(y)}) for {n_folds} outer folds")
    return draw_scarce(y, rest, test, rng, n_train, val_fraction, max_test_rows,
                       f"{dataset} fold {fold}")


def draw_scarce(y: np.ndarray, rest: np.ndarray, test: np.ndarray, rng: np.random.Generator,
                n_train: int, val_fraction: float, max_test_rows: int, label: str) -> FoldSplit:
    """Cap ``test`` at ``max_test_rows`` and draw ``n_train`` rows of ``rest`` (stratified),
    ``val_fraction`` of them validation; shared by every split protocol."""
    test = np.sort(stratified_take(y, test, max_test_rows, rng))
    drawn = stratified_take(y, rest, n_train, rng)
    n_val = max(1, int(round(val_fraction * len(drawn))))
    val = stratified_take(y, drawn, n_val, rng)
    train = np.setdiff1d(drawn, val)
    if len(np.unique(y[train])) < 2:
        raise DataError(f"{label}: the training rows hold a single class")
    return FoldSplit(train=np.sort(train), val=np.sort(val), test=test)
