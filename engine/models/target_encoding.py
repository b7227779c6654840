"""Category columns as class shares of their level among the context rows (target statistics).

Shared by the PFN at prediction and fine-tuning time (``engine/models/pfn.py``) and by the
torch prior (``engine/models/prior_torch.py``), so that pretraining tasks see declared
category columns exactly as a real table's reach the model.
"""

from __future__ import annotations

import numpy as np
import torch

SMOOTHING = 2.0  # prior pseudo-rows of target_encode (an m-estimate; chosen before measuring)
CROSS_FOLDS = 5  # folds of the context rows with encode_fit="cross_fit" (sklearn's default cv)


def encoded_class(y_ctx: torch.Tensor, n_classes: int) -> int:
    """The class whose share ``target_encode`` gives: class 1 when binary, otherwise the most
    frequent class among the context rows (the best-estimated shares; a rare class's shares
    are near-constant and noisy)."""
    if n_classes <= 2 or len(y_ctx) == 0:
        return 1 if n_classes == 2 else 0
    return int(torch.bincount(y_ctx, minlength=n_classes).argmax())


def code_like_columns(x_ctx: torch.Tensor, max_levels: int) -> np.ndarray:
    """Columns whose context values take 2..``max_levels`` distinct values on an equally
    spaced grid (integer codes after standardisation), as a bool mask."""
    out = np.zeros(x_ctx.shape[1], dtype=bool)
    for j in range(x_ctx.shape[1]):
        levels = torch.unique(x_ctx[:, j])
        if not 2 <= len(levels) <= max_levels:
            continue
        steps = torch.diff(levels)
        unit = steps.min()
        ratio = steps / unit
        out[j] = bool(unit > 0 and torch.all((ratio - ratio.round()).abs() < 1e-3))
    return out


def target_encode(x_ctx: torch.Tensor, y_ctx: torch.Tensor, x_qry: torch.Tensor,
                  columns: list[int], cls: int, smoothing: float = SMOOTHING, folds: int = 0,
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Each of ``columns`` (category codes) replaced by the share of class ``cls`` among the
    context rows of the same level, shrunk toward the context's share by ``smoothing``
    pseudo-rows: (hits + m * prior) / (count + m). Query levels absent from the context get
    the prior. Arbitrary codes become ordered, informative values that a model pretrained on
    numeric mechanisms can use (target statistics, as gradient boosting libraries use for
    categories). With ``folds`` k > 1 a context row's share comes from the rows outside its
    fold (a fixed partition), so its own label never enters its value and the context shows
    the column as predictive as it is for a query row (cross-fitting, as sklearn's
    ``TargetEncoder.fit_transform`` does; written in torch here because it runs per episode,
    inside the differentiable fine-tuning forward)."""
    if not columns:
        return x_ctx, x_qry
    hit = (y_ctx == cls).to(x_ctx.dtype)
    prior = hit.mean() if len(hit) else hit.new_tensor(0.0)
    n = x_ctx.shape[0]
    fold = _context_folds(n, folds, x_ctx.device) if folds > 1 and n >= 2 * folds else None
    x_ctx, x_qry = x_ctx.clone(), x_qry.clone()
    for j in columns:
        levels, inv = torch.unique(x_ctx[:, j], return_inverse=True)
        count = torch.bincount(inv, minlength=len(levels)).to(x_ctx.dtype)
        hits = torch.bincount(inv, weights=hit, minlength=len(levels)).to(x_ctx.dtype)
        rate = (hits + smoothing * prior) / (count + smoothing)
        x_ctx[:, j] = rate[inv] if fold is None else _out_of_fold(
            inv, hit, fold, folds, count, hits, smoothing)
        same = x_qry[:, j, None] == levels[None, :]
        x_qry[:, j] = torch.where(same.any(dim=1), (same.to(rate.dtype) * rate).sum(dim=1), prior)
    return x_ctx, x_qry


def _context_folds(n: int, folds: int, device: torch.device) -> torch.Tensor:
    """A fixed partition of ``n`` context rows into ``folds`` (a function of ``n`` only)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(20241207))
    return (torch.argsort(perm) % folds).to(device)


def _out_of_fold(inv: torch.Tensor, hit: torch.Tensor, fold: torch.Tensor, folds: int,
                 count: torch.Tensor, hits: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Per context row: the smoothed share of its level among the rows of the other folds,
    shrunk toward the other folds' overall share."""
    n_levels = len(count)
    cell = fold * n_levels + inv
    in_count = torch.bincount(cell, minlength=folds * n_levels).to(count.dtype)
    in_hits = torch.bincount(cell, weights=hit, minlength=folds * n_levels).to(count.dtype)
    out_count = (count.repeat(folds) - in_count).view(folds, n_levels)
    out_hits = (hits.repeat(folds) - in_hits).view(folds, n_levels)
    prior = (out_hits.sum(1) / out_count.sum(1).clamp_min(1))[:, None]
    rate = (out_hits + smoothing * prior) / (out_count + smoothing)
    return rate.flatten()[cell]
