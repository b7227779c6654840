"""The embedded PFN backend (``load_model("pfn")``), with its bundled pretrained weights.

The weights ship as package data (``engine/models/checkpoints/pfn_small.pt``); they were
produced by ``causalmix pretrain engine/models/pretrain_default.yaml`` (see
``docs/model_card.md``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.errors import CausalMixError
from engine.models.architecture import PFNConfig, PFNTransformer
from engine.models.base import InContextClassifier, register_model

BUNDLED_CHECKPOINT = "pfn_small.pt"
TRANSFORMS = ("none", "mixed")  # what the passes of the ensemble see (see forward_episode)


def bundled_checkpoint_path() -> Path:
    """Filesystem path of the checkpoint shipped with the package."""
    ref = resources.files("engine.models").joinpath("checkpoints", BUNDLED_CHECKPOINT)
    return Path(str(ref))


def load_weights(path: str | Path) -> tuple[PFNConfig, dict[str, torch.Tensor], dict]:
    """Read a shippable PFN file: architecture config, weights, metadata."""
    path = Path(path)
    if not path.is_file():
        raise CausalMixError(f"PFN checkpoint not found: {path}")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or "state_dict" not in blob or "arch" not in blob:
        raise CausalMixError(f"{path} is not a PFN checkpoint (no 'arch'/'state_dict')")
    return PFNConfig(**blob["arch"]), blob["state_dict"], blob.get("meta", {})


class EmbeddedPFN(InContextClassifier):
    """The project's own small prior-fitted transformer (rows as tokens)."""

    def __init__(
        self,
        net: PFNTransformer,
        device: str | torch.device = "cpu",
        meta: dict | None = None,
        n_ensemble: int = 4,
        slots: str = "leading",
        transforms: str = "none",
    ) -> None:
        super().__init__(device)
        self.max_classes = net.config.max_classes
        self.max_features = net.config.max_features
        self.net = net.to(self.device).eval()
        self.meta = meta or {}
        self.n_ensemble = max(1, int(n_ensemble))
        if slots not in ("leading", "spread"):
            raise CausalMixError(f"pfn: slots must be 'leading' or 'spread', got {slots!r}")
        self.slots = slots
        if transforms not in TRANSFORMS:
            raise CausalMixError(f"pfn: transforms must be one of {TRANSFORMS}, got {transforms!r}")
        self.transforms = transforms

    @property
    def module(self) -> nn.Module:
        return self.net

    def forward_episode(
        self, X_ctx: torch.Tensor, y_ctx: torch.Tensor, X_qry: torch.Tensor, n_classes: int
    ) -> torch.Tensor:
        """Logits ``(n_query, n_classes)``; differentiable in the module's parameters.

        In training mode this is one pass. Otherwise it averages the log-probabilities of
        ``n_ensemble`` passes, each with a fixed pseudo-random permutation of the feature
        columns and of the class labels (the row encoder is not permutation invariant). With
        ``slots="spread"`` the passes after the first put the features at random encoder slots
        among ``max_features`` instead of permuting them within the leading slots. With
        ``transforms="mixed"`` every second pass sees normal scores of the features
        (``rank_gauss``) instead of the features as given.
        """
        if n_classes > self.max_classes:
            raise CausalMixError(f"EmbeddedPFN handles at most {self.max_classes} classes")
        x_ctx = X_ctx.to(self.device, torch.float32)
        y = y_ctx.to(self.device, torch.long)
        x_qry = X_qry.to(self.device, torch.float32)
        if self.n_ensemble == 1 or self.net.training:
            return self._single_pass(x_ctx, y, x_qry, n_classes)
        members = self._members(x_ctx.shape[1], n_classes)
        width = self.max_features if self.slots == "spread" else x_ctx.shape[1]
        views = [(x_ctx, x_qry)]
        if self.transforms == "mixed":
            views.append(rank_gauss(x_ctx, x_qry))
        xc, xq, masks, ys = [], [], [], []
        for i, (slots, c_perm) in enumerate(members):  # all passes run as one batch of tasks
            v_ctx, v_qry = views[i % len(views)]
            xc.append(self._place(v_ctx, slots, width))
            xq.append(self._place(v_qry, slots, width))
            mask = torch.zeros(width, dtype=torch.bool, device=self.device)
            mask[slots] = True
            masks.append(mask)
            ys.append(c_perm[y])
        n_feat = torch.full((len(members),), x_ctx.shape[1], device=self.device)
        logits = self.net(torch.stack(xc), torch.stack(ys), torch.stack(xq), int(n_classes),
                          n_feat, torch.stack(masks))[:, :, :n_classes]
        total = sum(
            torch.log_softmax(logits[i][:, c_perm], dim=-1) for i, (_, c_perm) in enumerate(members)
        )
        return total / self.n_ensemble

    def _members(self, n_feat: int, n_classes: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per pass: the encoder slot of each feature and the class renaming (fixed seed)."""
        gen = torch.Generator().manual_seed(20240531)
        out = [(torch.arange(n_feat), torch.arange(n_classes))]
        for _ in range(1, self.n_ensemble):
            f_perm = torch.randperm(n_feat, generator=gen)
            c_perm = torch.randperm(n_classes, generator=gen)
            if self.slots == "spread":
                slots = torch.randperm(self.max_features, generator=gen)[:n_feat]
            else:  # column k of the pass is feature f_perm[k]: feature j sits at slot k
                slots = torch.argsort(f_perm)
            out.append((slots, c_perm))
        return [(a.to(self.device), b.to(self.device)) for a, b in out]

    def _place(self, x: torch.Tensor, slots: torch.Tensor, width: int) -> torch.Tensor:
        out = x.new_zeros(x.shape[0], width)
        out[:, slots] = x
        return out

    def predict_proba(self, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """As the base class, in batches of 4,096 query rows: queries never attend to each
        other, so larger batches only save re-encoding the context."""
        return super().predict_proba(X, batch_size=batch_size)

    def _single_pass(
        self, x_ctx: torch.Tensor, y_ctx: torch.Tensor, x_qry: torch.Tensor, n_classes: int
    ) -> torch.Tensor:
        logits = self.net(x_ctx[None], y_ctx[None], x_qry[None], int(n_classes))
        return logits[0, :, :n_classes]


def rank_gauss(x_ctx: torch.Tensor, x_qry: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each column through the context rows' empirical CDF (tied values share their mid rank)
    to normal scores, standardised over the context; a view that skewed, heavy-tailed and
    heaped columns cannot distort. Query values beyond the context's range get its extremes;
    a column constant over the context is 0 everywhere."""
    n = x_ctx.shape[0]
    ref = torch.sort(x_ctx, dim=0).values.T.contiguous()

    def scores(x: torch.Tensor) -> torch.Tensor:
        xt = x.T.contiguous()
        below = torch.searchsorted(ref, xt, side="left")
        upto = torch.searchsorted(ref, xt, side="right")
        u = ((below + upto).to(torch.float32) / (2 * n)).clamp(0.5 / n, 1 - 0.5 / n)
        return torch.special.ndtri(u).T

    z_ctx, z_qry = scores(x_ctx), scores(x_qry)
    mean, sd = z_ctx.mean(dim=0), z_ctx.std(dim=0, unbiased=False)
    keep = sd > 1e-6
    scale = torch.where(keep, 1.0 / sd.clamp_min(1e-6), torch.zeros_like(sd))
    return (z_ctx - mean) * scale, (z_qry - mean) * scale


@register_model("pfn")
def build_pfn(
    device: str = "cpu",
    checkpoint: str | None = None,
    random_init: bool = False,
    seed: int = 0,
    n_ensemble: int = 4,
    slots: str = "leading",
    transforms: str = "none",
    **options: Any,
) -> InContextClassifier:
    """The embedded PFN: bundled weights by default, ``checkpoint`` to load another file,
    or ``random_init=True`` for untrained weights (seeded; ``options`` override the
    architecture, e.g. ``d_model=32``). ``n_ensemble`` permuted passes are averaged at
    prediction time (1 = a single pass); ``slots`` says where they put the features
    ("leading": permuted within the leading slots; "spread": at random encoder slots)."""
    if random_init:
        try:
            config = PFNConfig(**options)
        except TypeError as exc:
            raise CausalMixError(f"pfn: unknown architecture option ({exc})") from None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = PFNTransformer(config)
        return EmbeddedPFN(net, device, {"random_init": True}, n_ensemble, slots, transforms)
    if options:
        raise CausalMixError(f"pfn: unknown option(s) {sorted(options)}")
    config, state, meta = load_weights(checkpoint or bundled_checkpoint_path())
    net = PFNTransformer(config)
    net.load_state_dict(state)
    return EmbeddedPFN(net, device, meta, n_ensemble, slots, transforms)


# Options a sweep file may give (architecture fields only apply with ``random_init``).
build_pfn.OPTIONS = ("checkpoint", "random_init", "seed", "n_ensemble", "slots", "transforms",  # type: ignore[attr-defined]
                     *PFNConfig.__dataclass_fields__)
