"""The in-context classifier interface every model backend implements.

Features arrive already preprocessed (float32, no missing values, standardised on the
training rows; see ``engine.data.preprocess``). Labels are integer codes ``0..K-1``. Which
columns hold category codes is told once per table (``set_categorical``); a model may encode
them its own way (the embedded PFN does) or treat them as numbers.
``fit`` only stores the context; ``predict_proba`` runs the transformer with that context.
Fine-tuning uses ``forward_episode`` (differentiable) and the torch ``module``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from engine.core.errors import DataError
from engine.core.registry import Registry


class InContextClassifier(ABC):
    """A prior-fitted classifier: context rows in, class probabilities for query rows out."""

    max_classes: int = 10
    max_features: int = 100
    max_context: int = 4096

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self._X_ctx: torch.Tensor | None = None
        self._y_ctx: torch.Tensor | None = None
        self.n_classes_: int = 0
        self.categorical: np.ndarray | None = None

    # ------------------------------------------------------------------ to implement
    @property
    @abstractmethod
    def module(self) -> nn.Module:
        """The torch module whose parameters fine-tuning updates."""

    @abstractmethod
    def forward_episode(
        self, X_ctx: torch.Tensor, y_ctx: torch.Tensor, X_qry: torch.Tensor, n_classes: int,
        categorical: np.ndarray | None = None,
    ) -> torch.Tensor:
        """Logits ``(n_query, n_classes)`` for query rows given labelled context rows;
        ``categorical`` (bool per column, or None) marks the columns of category codes."""

    # ------------------------------------------------------------------ shared behaviour
    def check_table(self, n_rows: int, n_features: int, n_classes: int) -> None:
        """Refuse, in one line, a table beyond this model's limits."""
        name = type(self).__name__
        if n_classes > self.max_classes:
            raise DataError(f"{name} handles at most {self.max_classes} classes, got {n_classes}")
        if n_features > self.max_features:
            raise DataError(
                f"{name} handles at most {self.max_features} features, got {n_features} "
                "(set preprocessing.max_features to reduce wider tables)"
            )
        if n_rows > self.max_context:
            raise DataError(f"{name} handles at most {self.max_context} context rows, got {n_rows}")

    def set_categorical(self, mask: np.ndarray | list[bool] | None) -> None:
        """Mark the feature columns that hold category codes (None: all numeric); kept for
        every later ``fit``/``predict_proba`` until set again."""
        self.categorical = None if mask is None else np.asarray(mask, dtype=bool)

    def fit(
        self, X: np.ndarray, y: np.ndarray, n_classes: int | None = None
    ) -> InContextClassifier:
        """Store the context rows (no gradient step happens here)."""
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.int64)
        k = int(n_classes if n_classes is not None else (y.max() + 1 if len(y) else 0))
        self.check_table(len(X), X.shape[1], k)
        if self.categorical is not None and len(self.categorical) != X.shape[1]:
            raise DataError(f"{len(self.categorical)} columns marked categorical or not, "
                            f"but the table has {X.shape[1]}")
        self.n_classes_ = k
        self._X_ctx = torch.as_tensor(X, device=self.device)
        self._y_ctx = torch.as_tensor(y, device=self.device)
        return self

    @torch.no_grad()
    def predict_proba(self, X: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` for ``X`` given the stored context."""
        if self._X_ctx is None or self._y_ctx is None:
            raise RuntimeError("predict_proba() called before fit()")
        was_training = self.module.training
        self.module.eval()
        X_t = torch.as_tensor(np.asarray(X, dtype=np.float32), device=self.device)
        out = []
        for start in range(0, len(X_t), batch_size):
            logits = self.forward_episode(
                self._X_ctx, self._y_ctx, X_t[start : start + batch_size], self.n_classes_,
                self.categorical,
            )
            out.append(torch.softmax(logits.float(), dim=-1).cpu())
        self.module.train(was_training)
        if not out:
            return np.zeros((0, self.n_classes_), dtype=np.float64)
        return torch.cat(out).numpy().astype(np.float64)

    def to(self, device: str | torch.device) -> InContextClassifier:
        self.device = torch.device(device)
        self.module.to(self.device)
        if self._X_ctx is not None and self._y_ctx is not None:
            self._X_ctx = self._X_ctx.to(self.device)
            self._y_ctx = self._y_ctx.to(self.device)
        return self

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.module.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)


ModelFactory = Callable[..., InContextClassifier]
MODELS: Registry[ModelFactory] = Registry("model")


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Register a factory ``f(device=..., **options) -> InContextClassifier`` as ``name``."""
    return MODELS.register(name)
