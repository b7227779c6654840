"""``ctgan``: the conditional tabular GAN of Xu et al. (2019), from the SDV ``ctgan`` package.

Optional extra ``ctgan`` (``pip install 'causalmix-sweep[ctgan]'``); the package is imported
inside ``fit``, so the plug-in registers without it and fails with a one-line
``MissingExtraError`` only when used.

* The class label is added as a discrete column and sampled jointly with the features; a
  ``class_balance`` other than ``as_train`` draws each class with CTGAN's conditional sampling
  (the label fixed in the condition vector), keeping the rows generated with that label.
* Numeric columns stay continuous; string, boolean and categorical columns are discrete.
  Missing numerics are imputed with the median for training and re-injected afterwards at the
  observed per-class rates; missing categoricals become a level of their own.
* ``batch_size`` is rounded down to a multiple of ``pac`` (at least ``pac``) and capped by the
  number of training rows (rounded the same way, when the table is large enough).
* Always runs on the CPU (``enable_gpu=False`` or ``cuda=False``, whichever the installed
  version takes), with ``threads`` torch threads (default 1). The fitted model is pickled in
  CPU form and restored on the CPU: ``ctgan``'s own unpickling moves a model to CUDA whenever
  a GPU is visible, which made a pickled copy (a Ray worker) sample different rows.
* Deterministic for a seed: torch and numpy are seeded around ``fit`` (with ``seed``) and
  around ``sample`` (with the sampling seed), and the global random states are restored;
  thread pools are pinned (:mod:`engine.generators.determinism`) and ``ctgan``'s
  multi-process data transform runs in-process, so rows do not depend on the core count.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pandas as pd

from engine.core.errors import CausalMixError, MissingExtraError
from engine.generators.base import Generator, register_generator

_LABEL = "__label__"
_NA = "__missing__"


@register_generator("ctgan")
class CTGANGenerator(Generator):
    """CTGAN with the label sampled jointly (see the module docstring for parameters)."""

    DEFAULTS: dict[str, Any] = {
        "epochs": 300,
        "batch_size": 500,
        "pac": 10,
        "embedding_dim": 128,
        "generator_dim": (256, 256),
        "discriminator_dim": (256, 256),
        "generator_lr": 2e-4,
        "discriminator_lr": 2e-4,
        "discriminator_steps": 1,
        "log_frequency": True,
        "seed": 0,
        "threads": 1,
    }

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.DEFAULTS)
        if unknown:
            raise CausalMixError(f"ctgan: unknown parameters {sorted(unknown)}")
        super().__init__(**{**self.DEFAULTS, **params})
        if int(self.params["pac"]) < 1 or int(self.params["epochs"]) < 1:
            raise CausalMixError("ctgan: pac and epochs must be >= 1")

    def effective_batch_size(self, n_rows: int) -> int:
        """``batch_size`` as used: a multiple of ``pac``, no larger than needed."""
        pac = int(self.params["pac"])
        bs = min(int(self.params["batch_size"]), max(n_rows, pac))
        return max(pac, bs - bs % pac)

    def _fit(self, X: pd.DataFrame, y: pd.Series) -> None:
        try:
            from ctgan import CTGAN
        except ImportError as err:
            raise MissingExtraError("the ctgan generator", "ctgan", "ctgan") from err
        import torch

        p = self.params
        frame, self.discrete_, self.levels_ = _to_training_frame(X)
        frame[_LABEL] = [str(v) for v in y.tolist()]
        self.label_map_ = {str(v): v for v in self.classes_.tolist()}
        codes = frame[_LABEL].to_numpy()
        self.missing_rate_ = {
            lab: X[codes == lab].isna().mean(axis=0).to_numpy() for lab in self.label_map_
        }
        kwargs: dict[str, Any] = {
            "epochs": int(p["epochs"]),
            "batch_size": self.effective_batch_size(len(frame)),
            "pac": int(p["pac"]),
            "embedding_dim": int(p["embedding_dim"]),
            "generator_dim": tuple(p["generator_dim"]),
            "discriminator_dim": tuple(p["discriminator_dim"]),
            "generator_lr": float(p["generator_lr"]),
            "discriminator_lr": float(p["discriminator_lr"]),
            "discriminator_steps": int(p["discriminator_steps"]),
            "log_frequency": bool(p["log_frequency"]),
            "verbose": False,
        }
        accepted = inspect.signature(CTGAN.__init__).parameters
        if "enable_gpu" in accepted:
            kwargs["enable_gpu"] = False
        elif "cuda" in accepted:
            kwargs["cuda"] = False
        with _seeded(int(p["seed"])):
            model = CTGAN(**kwargs)
            if hasattr(model, "set_random_state"):
                model.set_random_state(int(p["seed"]))
            model.fit(frame, discrete_columns=[*self.discrete_, _LABEL])
        if hasattr(model, "set_device"):
            model.set_device(torch.device("cpu"))
        _drop_random_state(model)
        self.model_ = model

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if state.get("model_") is not None:
            state["model_"] = _CPUModel.of(state["model_"])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state.get("model_"), _CPUModel):
            state = {**state, "model_": state["model_"].restore()}
        self.__dict__.update(state)

    def _sample(self, n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
        return self._draw(n, seed)

    def _sample_class(self, n: int, seed: int, label: Any) -> tuple[pd.DataFrame, pd.Series]:
        """CTGAN's conditional sampling (the label column fixed in the condition vector),
        keeping the rows whose generated label is ``label`` (the condition makes it likely,
        not certain)."""
        return self._rejection(lambda m, s: self._draw(m, s, str(label)), n, seed, label, 1.0)

    def _draw(self, n: int, seed: int, condition: str | None = None,
              ) -> tuple[pd.DataFrame, pd.Series]:
        """``n`` rows, conditioned on the label ``condition`` (its string form) where given."""
        import torch

        if hasattr(self.model_, "set_device"):
            self.model_.set_device(torch.device("cpu"))
        with _seeded(seed):
            if hasattr(self.model_, "set_random_state"):
                self.model_.set_random_state(int(seed))
            if condition is None:
                raw = self.model_.sample(n)
            else:
                raw = self.model_.sample(n, condition_column=_LABEL, condition_value=condition)
            _drop_random_state(self.model_)
        rng = np.random.default_rng(seed)
        labels = raw[_LABEL].astype(str).to_numpy()
        X = raw.drop(columns=[_LABEL]).reset_index(drop=True)
        for c in self.discrete_:
            lv = self.levels_[c]
            X[c] = pd.Series([lv.get(str(v), np.nan) for v in X[c].tolist()], dtype=object)
        miss = np.zeros(X.shape, dtype=bool)
        for lab, rate in self.missing_rate_.items():
            rows = labels == lab
            miss[rows] = rng.random((int(rows.sum()), X.shape[1])) < rate[None, :]
        for j, c in enumerate(self.columns_):
            if c not in self.discrete_:
                X[c] = np.where(miss[:, j], np.nan, pd.to_numeric(X[c], errors="coerce"))
        y = pd.Series([self.label_map_[v] for v in labels], dtype=object)
        return X, y


def _to_training_frame(
    X: pd.DataFrame,
) -> tuple[pd.DataFrame, list[str], dict[str, dict[str, Any]]]:
    """Continuous columns as floats (median-imputed), discrete ones as strings.

    Returns the frame, the discrete column names and, per discrete column, the map from the
    string form back to the original value.
    """
    out: dict[str, Any] = {}
    discrete: list[str] = []
    levels: dict[str, dict[str, Any]] = {}
    for c in X.columns:
        s = X[c]
        if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
            v = pd.to_numeric(s, errors="coerce").astype(np.float64)
            med = float(v.median()) if v.notna().any() else 0.0
            out[c] = v.fillna(med).to_numpy()
        else:
            discrete.append(c)
            vals = s.astype(object).tolist()
            levels[c] = {str(v): v for v in vals if not pd.isna(v)}
            out[c] = np.array([_NA if pd.isna(v) else str(v) for v in vals], dtype=object)
    return pd.DataFrame(out, columns=list(X.columns)), discrete, levels


def _drop_random_state(model: Any) -> None:
    """Forget the model's private random generators (torch generators may not pickle)."""
    if hasattr(model, "random_states"):
        model.random_states = None


class _CPUModel:
    """A fitted ``ctgan`` model in pickled form, restored on the CPU.

    ``ctgan``'s ``__setstate__`` moves a model to CUDA when a GPU is visible; this wrapper
    keeps the model's own CPU state dict and rebuilds the object without calling it.
    """

    def __init__(self, cls: type, state: dict[str, Any]) -> None:
        self.cls, self.state = cls, state

    @classmethod
    def of(cls, model: Any) -> _CPUModel:
        state = model.__getstate__() if hasattr(model, "__getstate__") else model.__dict__
        state = dict(state or {})
        for key in ("_numpy_random_state", "_torch_random_state"):
            state.pop(key, None)  # reseeded at every sample()
        state["random_states"] = None
        return cls(type(model), state)

    def restore(self) -> Any:
        import torch

        model = object.__new__(self.cls)
        model.__dict__.update(self.state)
        if hasattr(model, "set_device"):
            model.set_device(torch.device("cpu"))
        return model


class _seeded:
    """Seed torch and numpy for a block; restore the previous global states afterwards."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __enter__(self) -> None:
        import random

        import torch

        self._np_state = np.random.get_state()
        self._py_state = random.getstate()
        self._torch_state = torch.random.get_rng_state()
        torch.manual_seed(self.seed)
        np.random.seed(self.seed % 2**32)
        random.seed(self.seed)

    def __exit__(self, *exc: object) -> None:
        import random

        import torch

        np.random.set_state(self._np_state)
        random.setstate(self._py_state)
        torch.random.set_rng_state(self._torch_state)
