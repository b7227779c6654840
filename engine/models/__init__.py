"""In-context classifier backends (the embedded PFN, Mitra, ...); one module per backend."""

from __future__ import annotations

from typing import Any

from engine.models.base import MODELS, InContextClassifier, register_model


def _load_all() -> None:
    import engine.models as pkg
    from engine.core.plugins import import_submodules

    import_submodules(pkg, skip=("base", "prior", "pretrain", "architecture"))


def load_model(name: str, device: str = "cpu", **options: Any) -> InContextClassifier:
    """Build the model registered as ``name`` (weights loaded, ready for ``fit``)."""
    _load_all()
    return MODELS.get(name)(device=device, **options)


def model_names() -> list[str]:
    _load_all()
    return MODELS.names()


__all__ = ["InContextClassifier", "load_model", "model_names", "register_model"]
