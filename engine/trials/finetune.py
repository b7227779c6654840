"""Episodic fine-tuning of an in-context classifier with validation-based early stopping.

Each step draws an episode from the pool: ``episode_rows`` rows, ``mix_ratio`` of them synthetic,
split at random into support (context) and query rows; the loss is cross-entropy on the query.
Every ``eval_every`` steps (and at step 0, the zero-shot model) the model is scored on the
validation rows with the real training rows as context; the best-validation weights are kept and
training stops after ``patience`` evaluations without improvement. Test scores are recorded at
each evaluation for analysis only and never used for selection.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from engine.models.base import InContextClassifier
from engine.spec.finetune_config import FinetuneConfig
from engine.trials.metrics import minority_class, scores


@dataclass(frozen=True)
class EvalSplit:
    """Labelled rows scored with a fixed labelled context."""

    X_ctx: np.ndarray
    y_ctx: np.ndarray
    X: np.ndarray
    y: np.ndarray


@dataclass
class Evaluation:
    """Scores at one evaluation step."""

    step: int
    train_loss: float
    val: dict[str, float]
    test: dict[str, float]
    ood: dict[str, float] | None = None  # out-of-domain test rows under a shift (analysis only)


@dataclass
class FinetuneResult:
    best_step: int
    steps_run: int
    evaluations: list[Evaluation] = field(default_factory=list)
    train_losses: list[float] = field(default_factory=list)

    # Scores of the weights kept when they are not those of an evaluated step (WiSE-FT).
    final: Evaluation | None = None

    @property
    def best(self) -> Evaluation:
        return next(e for e in self.evaluations if e.step == self.best_step)

    @property
    def kept(self) -> Evaluation:
        """Scores of the weights the model holds on return."""
        return self.final if self.final is not None else self.best


class FinetuneLogger(Protocol):
    """One hook called at each evaluation (e.g. forwarding to ``ray.tune.report``)."""

    def on_evaluation(self, evaluation: Evaluation, is_best: bool) -> None: ...


def permute_episode(rng: np.random.Generator, Xs: np.ndarray, ys: np.ndarray, Xq: np.ndarray,
                    yq: np.ndarray, n_classes: int, categorical: np.ndarray | None = None,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """The same random column order and class renaming for support and query (and the
    column order for the categorical mask)."""
    cols = rng.permutation(Xs.shape[1])
    names = rng.permutation(n_classes)
    mask = None if categorical is None else categorical[cols]
    return Xs[:, cols], names[ys], Xq[:, cols], names[yq], mask


class EpisodeSampler:
    """Draws support/query episodes mixing real and synthetic rows at a fixed ratio."""

    def __init__(self, X_real: np.ndarray, y_real: np.ndarray, X_syn: np.ndarray | None,
                 y_syn: np.ndarray | None, mix_ratio: float, episode_rows: int,
                 query_fraction: float, seed: int) -> None:
        self.X_real, self.y_real = X_real, y_real
        n_syn_avail = 0 if X_syn is None else len(X_syn)
        self.X_syn = X_syn if X_syn is not None else np.zeros((0, X_real.shape[1]), np.float32)
        self.y_syn = y_syn if y_syn is not None else np.zeros(0, np.int64)
        m = float(mix_ratio) if n_syn_avail > 0 else 0.0
        rows = episode_rows
        if m < 1:
            rows = min(rows, int(len(X_real) / (1 - m)))
        if m > 0:
            rows = min(rows, int(n_syn_avail / m))
        self.n_syn = int(round(m * rows))
        self.n_real = rows - self.n_syn
        if self.n_real + self.n_syn < 2:
            raise ValueError("episodes need at least 2 rows")
        self.n_query = min(max(1, int(round(query_fraction * rows))), rows - 1)
        self.rng = np.random.default_rng(seed)

    def draw(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        r = self.rng.choice(len(self.X_real), self.n_real, replace=False)
        s = self.rng.choice(len(self.X_syn), self.n_syn, replace=False)
        X = np.concatenate([self.X_real[r], self.X_syn[s]])
        y = np.concatenate([self.y_real[r], self.y_syn[s]])
        order = self.rng.permutation(len(X))
        X, y = X[order], y[order]
        q = self.n_query
        return X[q:], y[q:], X[:q], y[:q]


def evaluate(model: InContextClassifier, split: EvalSplit, n_classes: int) -> dict[str, float]:
    """Every metric on ``split``'s rows with its context; the minority class is the context's
    (the training rows')."""
    model.fit(split.X_ctx, split.y_ctx, n_classes=n_classes)
    return scores(split.y, model.predict_proba(split.X), minority_class(split.y_ctx))


def finetune(model: InContextClassifier, sampler: EpisodeSampler, val: EvalSplit,
             test: EvalSplit, n_classes: int, cfg: FinetuneConfig, seed: int,
             logger: FinetuneLogger | None = None,
             initial: Evaluation | None = None, ood: EvalSplit | None = None) -> FinetuneResult:
    """Fine-tune ``model`` in place; on return it holds the best-validation weights.

    ``initial`` is the zero-shot evaluation when it is already known (shared baseline);
    ``ood`` (out-of-domain test rows) is scored at every evaluation, never for selection."""
    torch.manual_seed(seed)
    module = model.module
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    result = FinetuneResult(best_step=0, steps_run=0)

    def score(step: int, loss: float) -> Evaluation:
        return Evaluation(step, loss, evaluate(model, val, n_classes),
                          evaluate(model, test, n_classes),
                          evaluate(model, ood, n_classes) if ood is not None else None)

    def record(step: int, loss: float, known: Evaluation | None = None) -> bool:
        ev = known or score(step, loss)
        result.evaluations.append(ev)
        best = result.best if result.evaluations[:-1] else None
        improved = best is None or _better(ev.val, best.val, cfg.select_by, cfg.min_delta)
        if logger is not None:
            logger.on_evaluation(ev, improved)
        return improved

    record(0, float("nan"), initial)
    best_state = copy.deepcopy(module.state_dict())
    pretrained = copy.deepcopy(best_state) if cfg.wise < 1 else None
    anchor = [p.detach().clone() for p in params] if cfg.l2sp > 0 else None
    perm_rng = np.random.default_rng([seed, 7])
    stale = 0
    window: list[float] = []
    for step in range(1, cfg.steps + 1):
        value = _episode_step(model, sampler, opt, params, anchor, perm_rng, n_classes, cfg)
        result.train_losses.append(value)
        window.append(value)
        result.steps_run = step
        if step % cfg.eval_every == 0 or step == cfg.steps:
            if record(step, float(np.mean(window))):
                result.best_step = step
                best_state = copy.deepcopy(module.state_dict())
                stale = 0
            else:
                stale += 1
            window = []
            if stale >= cfg.patience:
                break
    wise = pretrained is not None and result.best_step > 0
    if wise:
        best_state = interpolate(pretrained, best_state, cfg.wise)
    module.load_state_dict(best_state)
    module.eval()
    if wise:
        result.final = score(result.best.step, result.best.train_loss)
    return result


def interpolate(start: dict[str, torch.Tensor], end: dict[str, torch.Tensor], a: float,
                ) -> dict[str, torch.Tensor]:
    """(1 - a) * start + a * end for floating tensors; other entries from ``end``."""
    return {n: torch.lerp(start[n], t, a) if t.is_floating_point() else t
            for n, t in end.items()}


def _episode_step(model: InContextClassifier, sampler: EpisodeSampler,
                  opt: torch.optim.Optimizer, params: list[torch.Tensor],
                  anchor: list[torch.Tensor] | None, perm_rng: np.random.Generator,
                  n_classes: int, cfg: FinetuneConfig) -> float:
    """One gradient step on one episode; returns the episode's query loss."""
    model.module.train()
    device = model.device
    Xs, ys, Xq, yq = sampler.draw()
    categorical = model.categorical
    if cfg.permute:
        Xs, ys, Xq, yq, categorical = permute_episode(perm_rng, Xs, ys, Xq, yq, n_classes,
                                                      categorical)
    logits = model.forward_episode(
        torch.as_tensor(Xs, device=device), torch.as_tensor(ys, device=device),
        torch.as_tensor(Xq, device=device), n_classes, categorical,
    )
    loss = F.cross_entropy(logits.float(), torch.as_tensor(yq, device=device))
    total = loss
    if anchor is not None:
        total = loss + cfg.l2sp * sum(((p - a) ** 2).sum() for p, a in zip(params, anchor))
    opt.zero_grad(set_to_none=True)
    total.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
    opt.step()
    return float(loss.detach())


def _better(new: dict[str, float], old: dict[str, float], by: str = "roc_auc",
            min_delta: float = 0.0) -> bool:
    """Validation ``by`` better by more than ``min_delta`` (a score where higher is better;
    equal with no margin: lower log loss), or for ``by="log_loss"`` lower by more than it."""
    if by == "log_loss":
        a, b = new["log_loss"], old["log_loss"]
        return not math.isnan(a) and (math.isnan(b) or a < b - max(min_delta, 1e-12))
    a, b = new[by], old[by]
    if math.isnan(a):
        return False
    if math.isnan(b) or a > b + max(min_delta, 1e-12):
        return True
    if min_delta > 0:
        return False
    return abs(a - b) <= 1e-12 and new["log_loss"] < old["log_loss"] - 1e-12
