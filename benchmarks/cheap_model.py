"""A benchmark-only model plug-in: ``bench-constant``, one learnable logit per class.

It costs next to nothing to load, score and fine-tune, so a sweep that uses it measures the
driver's own work (planning, Tune scheduling, result tables), not the model. It registers only
when imported: ``CAUSALMIX_PLUGINS=benchmarks.cheap_model`` (``engine.core.plugins``) makes every
process, Ray workers included, import it. Never used by the engine's own sweeps.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from engine.models.base import InContextClassifier, register_model

NAME = "bench-constant"


class ConstantLogits(InContextClassifier):
    """Predicts the same learnable class logits for every query row (differentiable)."""

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        self.logits = nn.ParameterList([nn.Parameter(torch.zeros(self.max_classes))])
        self.logits.to(self.device)

    @property
    def module(self) -> nn.Module:
        return self.logits

    def forward_episode(self, X_ctx: torch.Tensor, y_ctx: torch.Tensor, X_qry: torch.Tensor,
                        n_classes: int, categorical: np.ndarray | None = None) -> torch.Tensor:
        row = self.logits[0][:n_classes]
        jitter = 1e-3 * X_qry.to(self.device, torch.float32)[:, :1]  # ranks rows for ROC-AUC
        return row.unsqueeze(0) + jitter


@register_model(NAME)
def bench_constant(device: str = "cpu") -> ConstantLogits:
    """The ``bench-constant`` model (no weights to load)."""
    return ConstantLogits(device=device)
