"""The fine-tuning settings of a sweep (``finetune:`` in the sweep file): a plain typed config that
the spec validates and the plan copies into every trial job; the training loop that reads it is
``finetune``."""

from __future__ import annotations

from dataclasses import dataclass

SELECT_BY = ("roc_auc", "log_loss", "f1_macro", "pr_auc", "balanced_accuracy")
"""Validation metrics that may select the kept step (see ``engine.trials.finetune``)."""


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int = 100
    # 1e-4 since the recipe round of docs/model_card.md ("Fine-tuning recipe"); 3e-5 before.
    lr: float = 1e-4
    weight_decay: float = 0.01
    patience: int = 5
    eval_every: int = 10
    episode_rows: int = 256
    query_fraction: float = 0.3
    grad_clip: float = 1.0
    # Penalty l2sp * ||theta - theta_pretrained||^2 on the loss (L2-SP; 0 = off).
    l2sp: float = 0.0
    # Randomly permute feature columns and class labels in every episode (the prediction-time
    # ensemble of the embedded PFN uses permuted passes too).
    permute: bool = False
    # Validation metric that selects the kept step: "roc_auc" (log loss breaks ties),
    # "log_loss" (smoother on small validation sets), or for imbalanced tasks "f1_macro",
    # "pr_auc" (the minority class's average precision) or "balanced_accuracy" (log loss
    # breaks their ties too).
    select_by: str = "roc_auc"  # one of SELECT_BY
    # A later step replaces the kept one only when its validation score is better by more than
    # min_delta (log loss: lower by more than min_delta); 0 = any improvement (Keras'
    # EarlyStopping min_delta). Evaluations that do not clear it count toward the patience.
    min_delta: float = 0.0
    # WiSE-FT (Wortsman et al., 2022): keep (1 - wise) * pretrained + wise * selected weights;
    # 1 = the selected weights. No effect when the zero-shot step is kept.
    wise: float = 1.0


# Fields added after trials were first keyed, with the value that means "off": left out of the
# cache key at that value, so trials that never set them keep their keys.
NEUTRAL = {"min_delta": 0.0, "wise": 1.0}


def key_fields(cfg: FinetuneConfig) -> dict:
    """The config as it enters trial keys: every field but the NEUTRAL ones at their neutral
    value."""
    from dataclasses import asdict

    return {k: v for k, v in asdict(cfg).items() if not (k in NEUTRAL and v == NEUTRAL[k])}
