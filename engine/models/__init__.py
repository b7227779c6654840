"""In-context classifier backends (the embedded PFN, Mitra, ...); one module per backend."""

from engine.models.base import InContextClassifier, load_model, model_names, register_model

__all__ = ["InContextClassifier", "load_model", "model_names", "register_model"]
