"""The embedded PFN: a small transformer over table rows, fitted to a synthetic prior.

Each row becomes one token: its features are re-standardised on the context rows, given a
second, rank-based channel (robust to skew and outliers), zero-padded to ``max_features``,
rescaled so the signal magnitude does not depend on the feature count, and embedded by one
linear map. Context tokens also get a label embedding. Context rows attend to context rows;
query rows attend to context rows only, never to each other, so a query's prediction does
not depend on which other queries share its batch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class PFNConfig:
    """Architecture hyper-parameters (stored inside every checkpoint)."""

    max_features: int = 100
    max_classes: int = 10
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 6
    d_ff: int = 256
    clip: float = 6.0

    def to_dict(self) -> dict[str, int | float]:
        return asdict(self)


def mid_rank_sums(ref_sorted: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Twice the mid-rank of each of ``values`` ``(..., N)`` among the sorted reference values
    ``ref_sorted`` ``(..., Nc)`` of the same leading dims: how many are below plus how many
    are at or below it (integers; tied values share theirs). Divided by ``2 * Nc`` it is the
    empirical CDF at the value, ties at their midpoint."""
    return (torch.searchsorted(ref_sorted, values, side="left")
            + torch.searchsorted(ref_sorted, values, side="right"))


def encode_features(
    x_ctx: torch.Tensor,
    x_qry: torch.Tensor,
    n_features: torch.Tensor,
    max_features: int,
    clip: float,
    feature_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Map raw ``(B, N, F)`` rows to ``(B, N, 2 * max_features)`` model inputs.

    Channel 1: z-score on the context rows (idempotent for standardised input), clipped.
    Channel 2: mid-rank of the value among the context rows, scaled to unit variance.
    Constant and padded columns become exactly zero in both channels. ``feature_mask``
    ``(B, F)`` marks the feature slots when they are not the leading ``n_features`` ones.
    """
    b, n_ctx, f = x_ctx.shape
    mean = x_ctx.mean(dim=1, keepdim=True)
    std = x_ctx.std(dim=1, keepdim=True, unbiased=False)
    live = std > 1e-6
    safe = torch.where(live, std, torch.ones_like(std))
    x_all = torch.cat([x_ctx, x_qry], dim=1)
    z = ((x_all - mean) / safe).clamp(-clip, clip) * live

    srt = x_ctx.transpose(1, 2).contiguous().sort(dim=-1).values  # (B, F, Nc)
    vals = x_all.transpose(1, 2).contiguous()  # (B, F, N)
    rank = mid_rank_sums(srt, vals).to(x_all.dtype) / (2.0 * n_ctx)
    u = ((rank - 0.5) * math.sqrt(12.0)).transpose(1, 2) * live

    # Zero the padded columns, then rescale by sqrt(max_features / n_features).
    if feature_mask is None:
        col = torch.arange(f, device=x_all.device)
        feature_mask = col[None, :] < n_features[:, None]
    used = feature_mask.to(x_all.dtype)[:, None, :]
    scale = torch.sqrt(max_features / n_features.clamp(min=1).to(x_all.dtype))[:, None, None]
    z = z * used * scale
    u = u * used * scale
    if f < max_features:
        pad = (0, max_features - f)
        z = F.pad(z, pad)
        u = F.pad(u, pad)
    return torch.cat([z, u], dim=-1), live


class RowAttentionBlock(nn.Module):
    """Pre-norm transformer block: context self-attention, query-to-context attention."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))

    def forward(self, h: torch.Tensor, n_ctx: int) -> torch.Tensor:
        b, n, d = h.shape
        qkv = self.qkv(self.norm1(h)).view(b, n, 3, self.n_heads, d // self.n_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, N, Dh)
        k_c, v_c = k[:, :, :n_ctx], v[:, :, :n_ctx]
        att = F.scaled_dot_product_attention(q, k_c, v_c)  # every row attends to context only
        att = att.transpose(1, 2).reshape(b, n, d)
        h = h + self.proj(att)
        return h + self.ff(self.norm2(h))


class PFNTransformer(nn.Module):
    """Rows in, class logits for the query rows out; batched over tasks."""

    def __init__(self, config: PFNConfig | None = None) -> None:
        super().__init__()
        self.config = config or PFNConfig()
        c = self.config
        self.encoder = nn.Linear(2 * c.max_features, c.d_model)
        self.label_embedding = nn.Embedding(c.max_classes, c.d_model)
        self.blocks = nn.ModuleList(
            RowAttentionBlock(c.d_model, c.n_heads, c.d_ff) for _ in range(c.n_layers)
        )
        self.head = nn.Sequential(
            nn.LayerNorm(c.d_model),
            nn.Linear(c.d_model, c.d_ff),
            nn.GELU(),
            nn.Linear(c.d_ff, c.max_classes),
        )

    def forward(
        self,
        x_ctx: torch.Tensor,
        y_ctx: torch.Tensor,
        x_qry: torch.Tensor,
        n_classes: torch.Tensor | int,
        n_features: torch.Tensor | None = None,
        feature_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits ``(B, Nq, max_classes)``; classes ``>= n_classes`` of a task are ``-inf``.

        ``x_ctx`` ``(B, Nc, F)``, ``y_ctx`` ``(B, Nc)`` integer labels, ``x_qry`` ``(B, Nq, F)``.
        ``n_features`` ``(B,)`` counts the real columns: the leading ones, or those marked by
        ``feature_mask`` ``(B, F)`` (the rest is padding).
        """
        b, n_ctx, f = x_ctx.shape
        c = self.config
        if f > c.max_features:
            raise ValueError(f"at most {c.max_features} features, got {f}")
        dev = x_ctx.device
        if n_features is None:
            n_features = torch.full((b,), f, device=dev, dtype=torch.long)
        if not torch.is_tensor(n_classes):
            n_classes = torch.full((b,), int(n_classes), device=dev, dtype=torch.long)
        inputs, _ = encode_features(
            x_ctx, x_qry, n_features, c.max_features, c.clip, feature_mask
        )
        h = self.encoder(inputs)
        h_ctx = h[:, :n_ctx] + self.label_embedding(y_ctx)
        h = torch.cat([h_ctx, h[:, n_ctx:]], dim=1)
        for block in self.blocks:
            h = block(h, n_ctx)
        logits = self.head(h[:, n_ctx:])
        cls = torch.arange(c.max_classes, device=dev)
        mask = cls[None, None, :] >= n_classes.to(dev)[:, None, None]
        return logits.masked_fill(mask, float("-inf"))
