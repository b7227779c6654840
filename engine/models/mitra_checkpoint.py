"""Random-initialised Mitra checkpoints for offline tests and smoke runs (no hub needed)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from engine.models.mitra import MitraConfig, new_tab2d, write_checkpoint

#: the published classifier's architecture (about 72M parameters)
FULL = {"dim": 512, "n_layers": 12, "n_heads": 4}
#: a tiny variant that runs a fine-tuning step in well under a second on one CPU
SMALL = {"dim": 32, "n_layers": 2, "n_heads": 4}


def make_random_mitra_checkpoint(out_dir: str | os.PathLike, n_classes: int = 10,
                                 small: bool = True, seed: int = 0) -> Path:
    """Write a seeded random ``Tab2D`` (``n_classes`` outputs) to ``out_dir`` in the layout
    ``model: {name: mitra, checkpoint: out_dir}`` reads; returns ``out_dir``."""
    config = MitraConfig(dim_output=int(n_classes), **(SMALL if small else FULL))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = new_tab2d(config)
    return write_checkpoint(net, config, out_dir)
