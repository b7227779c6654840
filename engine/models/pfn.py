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

from engine.core.errors import CausalMixError
from engine.models.architecture import PFNConfig, PFNTransformer
from engine.models.base import InContextClassifier, register_model

BUNDLED_CHECKPOINT = "pfn_small.pt"
TRANSFORMS = ("none", "mixed")  # what the passes of the ensemble see (see forward_episode)
CATEGORICALS = ("target", "codes")  # how category columns enter (see forward_episode)
# The allowed values of the options that take one of a few (checked here and at validate time).
CHOICES = {"slots": ("leading", "spread"), "transforms": TRANSFORMS, "categoricals": CATEGORICALS}
SMOOTHING = 2.0  # prior pseudo-rows of target_encode (an m-estimate; chosen before measuring)


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
        categoricals: str = "target",
    ) -> None:
        super().__init__(device)
        self.max_classes = net.config.max_classes
        self.max_features = net.config.max_features
        self.net = net.to(self.device).eval()
        self.meta = meta or {}
        self.n_ensemble = max(1, int(n_ensemble))
        chosen = {"slots": slots, "transforms": transforms, "categoricals": categoricals}
        for key, value in chosen.items():
            if value not in CHOICES[key]:
                raise CausalMixError(f"pfn: {key} must be one of {CHOICES[key]}, got {value!r}")
        self.slots, self.transforms, self.categoricals = slots, transforms, categoricals

    @property
    def module(self) -> nn.Module:
        return self.net

    def forward_episode(
        self, X_ctx: torch.Tensor, y_ctx: torch.Tensor, X_qry: torch.Tensor, n_classes: int,
        categorical: np.ndarray | None = None,
    ) -> torch.Tensor:
        """Logits ``(n_query, n_classes)``; differentiable in the module's parameters.

        It averages the log-probabilities of ``n_ensemble`` passes, each with a fixed
        pseudo-random permutation of the feature columns and of the class labels (the row
        encoder is not permutation invariant); in training mode too, so that fine-tuning
        improves the predictor that is used (a single pass when ``n_ensemble`` is 1). With
        ``slots="spread"`` the passes after the first put the features at random encoder slots
        among ``max_features`` instead of permuting them within the leading slots. With
        ``transforms="mixed"`` every second pass sees normal scores of the features
        (``rank_gauss``) instead of the features as given. With ``categoricals="target"`` the
        ``categorical`` columns enter as smoothed class shares of their level among the context
        rows (``target_encode``; which class: ``encoded_class``), in every pass.
        """
        if n_classes > self.max_classes:
            raise CausalMixError(f"EmbeddedPFN handles at most {self.max_classes} classes")
        x_ctx = X_ctx.to(self.device, torch.float32)
        y = y_ctx.to(self.device, torch.long)
        x_qry = X_qry.to(self.device, torch.float32)
        cat = self._category_columns(categorical, x_ctx.shape[1])
        x_ctx, x_qry = target_encode(x_ctx, y, x_qry, cat, encoded_class(y, n_classes))
        if self.n_ensemble == 1:
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

    def _category_columns(self, categorical: np.ndarray | None, n_feat: int) -> list[int]:
        """Indices of the columns to target-encode (none with ``categoricals="codes"``)."""
        if categorical is None or self.categoricals == "codes":
            return []
        mask = np.asarray(categorical, dtype=bool)
        if mask.shape != (n_feat,):
            raise CausalMixError(f"categorical mask has {mask.size} entries for {n_feat} columns")
        return np.flatnonzero(mask).tolist()

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


def encoded_class(y_ctx: torch.Tensor, n_classes: int) -> int:
    """The class whose share ``target_encode`` gives: class 1 when binary, otherwise the most
    frequent class among the context rows (the best-estimated shares; a rare class's shares
    are near-constant and noisy)."""
    if n_classes <= 2 or len(y_ctx) == 0:
        return 1 if n_classes == 2 else 0
    return int(torch.bincount(y_ctx, minlength=n_classes).argmax())


def target_encode(x_ctx: torch.Tensor, y_ctx: torch.Tensor, x_qry: torch.Tensor,
                  columns: list[int], cls: int, smoothing: float = SMOOTHING,
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Each of ``columns`` (category codes) replaced by the share of class ``cls`` among the
    context rows of the same level, shrunk toward the context's share by ``smoothing``
    pseudo-rows: (hits + m * prior) / (count + m). Query levels absent from the context get
    the prior. Arbitrary codes become ordered, informative values that a model pretrained on
    numeric mechanisms can use (target statistics, as gradient boosting libraries use for
    categories)."""
    if not columns:
        return x_ctx, x_qry
    hit = (y_ctx == cls).to(x_ctx.dtype)
    prior = hit.mean() if len(hit) else hit.new_tensor(0.0)
    x_ctx, x_qry = x_ctx.clone(), x_qry.clone()
    for j in columns:
        levels, inv = torch.unique(x_ctx[:, j], return_inverse=True)
        count = torch.bincount(inv, minlength=len(levels)).to(x_ctx.dtype)
        hits = torch.bincount(inv, weights=hit, minlength=len(levels)).to(x_ctx.dtype)
        rate = (hits + smoothing * prior) / (count + smoothing)
        x_ctx[:, j] = rate[inv]
        same = x_qry[:, j, None] == levels[None, :]
        x_qry[:, j] = torch.where(same.any(dim=1), (same.to(rate.dtype) * rate).sum(dim=1), prior)
    return x_ctx, x_qry


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
    categoricals: str = "target",
    **options: Any,
) -> InContextClassifier:
    """The embedded PFN: bundled weights by default, ``checkpoint`` to load another file,
    or ``random_init=True`` for untrained weights (seeded; ``options`` override the
    architecture, e.g. ``d_model=32``). ``n_ensemble`` permuted passes are averaged at
    prediction time (1 = a single pass); ``slots`` says where they put the features
    ("leading": permuted within the leading slots; "spread": at random encoder slots);
    ``categoricals`` how category columns enter ("target": class rates of their level among
    the context rows; "codes": the codes as numbers, as before version 2)."""
    if random_init:
        try:
            config = PFNConfig(**options)
        except TypeError as exc:
            raise CausalMixError(f"pfn: unknown architecture option ({exc})") from None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = PFNTransformer(config)
        return EmbeddedPFN(net, device, {"random_init": True}, n_ensemble, slots, transforms,
                           categoricals)
    if options:
        raise CausalMixError(f"pfn: unknown option(s) {sorted(options)}")
    config, state, meta = load_weights(checkpoint or bundled_checkpoint_path())
    net = PFNTransformer(config)
    net.load_state_dict(state)
    return EmbeddedPFN(net, device, meta, n_ensemble, slots, transforms, categoricals)


# Options a sweep file may give (architecture fields only apply with ``random_init``).
build_pfn.OPTIONS = ("checkpoint", "random_init", "seed", "n_ensemble", "slots", "transforms",  # type: ignore[attr-defined]
                     "categoricals", *PFNConfig.__dataclass_fields__)
build_pfn.CHOICES = CHOICES  # type: ignore[attr-defined]
# Bumped when the same options and weights predict or fine-tune differently (part of the trial
# cache key): 2 = category columns target-encoded by default; fine-tuning trains the ensemble.
build_pfn.VERSION = 2  # type: ignore[attr-defined]
