"""The embedded PFN backend (``load_model("pfn")``), with its bundled pretrained weights.

The weights ship as package data (``engine/models/checkpoints/pfn_small.pt``); they were
produced by ``causalmix pretrain engine/models/pretrain_default.yaml`` (see
``docs/model_card.md``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.errors import CausalMixError
from engine.models.architecture import PFNConfig, PFNTransformer
from engine.models.base import InContextClassifier, register_model

BUNDLED_CHECKPOINT = "pfn_small.pt"


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
        self, net: PFNTransformer, device: str | torch.device = "cpu", meta: dict | None = None
    ) -> None:
        super().__init__(device)
        self.max_classes = net.config.max_classes
        self.max_features = net.config.max_features
        self.net = net.to(self.device).eval()
        self.meta = meta or {}

    @property
    def module(self) -> nn.Module:
        return self.net

    def forward_episode(
        self, X_ctx: torch.Tensor, y_ctx: torch.Tensor, X_qry: torch.Tensor, n_classes: int
    ) -> torch.Tensor:
        """Logits ``(n_query, n_classes)``; differentiable in the module's parameters."""
        if n_classes > self.max_classes:
            raise CausalMixError(f"EmbeddedPFN handles at most {self.max_classes} classes")
        logits = self.net(
            X_ctx.to(self.device, torch.float32)[None],
            y_ctx.to(self.device, torch.long)[None],
            X_qry.to(self.device, torch.float32)[None],
            int(n_classes),
        )
        return logits[0, :, :n_classes]


@register_model("pfn")
def build_pfn(
    device: str = "cpu",
    checkpoint: str | None = None,
    random_init: bool = False,
    seed: int = 0,
    **options: Any,
) -> InContextClassifier:
    """The embedded PFN: bundled weights by default, ``checkpoint`` to load another file,
    or ``random_init=True`` for untrained weights (seeded; ``options`` override the
    architecture, e.g. ``d_model=32``)."""
    if random_init:
        try:
            config = PFNConfig(**options)
        except TypeError as exc:
            raise CausalMixError(f"pfn: unknown architecture option ({exc})") from None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = PFNTransformer(config)
        return EmbeddedPFN(net, device, {"random_init": True})
    if options:
        raise CausalMixError(f"pfn: unknown option(s) {sorted(options)}")
    config, state, meta = load_weights(checkpoint or bundled_checkpoint_path())
    net = PFNTransformer(config)
    net.load_state_dict(state)
    return EmbeddedPFN(net, device, meta)
