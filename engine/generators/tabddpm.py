"""``tabddpm``: TabDDPM (Kotelnikov et al., ICML 2023), class-conditional mixed-type diffusion.

* Numeric columns (integers included; the base class rounds them back) are mapped to normal
  scores by a ``QuantileTransformer`` fitted on the training rows, as in the paper, and
  diffused with Gaussian diffusion; categorical columns (strings, booleans, pandas
  categoricals) are one-hot blocks under multinomial diffusion in log space. One MLP denoiser
  with a sinusoidal timestep embedding sees both (``engine/generators/tabddpm_diffusion.py``).
* The class label is the **condition**, not a diffused column: its embedding is added to the
  time embedding. ``sample(n, seed)`` draws labels from the training label distribution with
  the seeded RNG and samples conditionally; ``sample_class(n, seed, label)`` draws rows of one
  class (the ``_sample_class`` hook, also used by the ``class_balance`` option).
* Missing values: imputed for training (numerics with their median's normal score,
  categoricals with the mode) and re-injected at the observed per-class rates.
* Deterministic for a seed: explicit torch generators, seeded weight initialisation, thread
  pools pinned by the base class. ``device: "cpu"`` (default) keeps the bit-identity contract;
  ``device: "auto"`` trains and samples on CUDA where torch sees a GPU (a Ray fit worker sees
  one only when it was given one), with rows that differ from CPU rows in the last bits.

Hand-written in torch rather than wrapping synthcity's ``ddpm`` plug-in: synthcity 0.2.12
pins ``torch<2.3``, ``numpy<2`` and ``networkx<3`` and pulls in some thirty heavy packages, none
installable beside this project's torch 2.13 / numpy 2 environment.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from engine.core.errors import CausalMixError
from engine.generators.base import Generator, register_generator
from engine.generators.tableaugment import TableCodec, label_codes

# option -> (type, lowest allowed value); all checked when the generator is built
_LIMITS: dict[str, tuple[type, float]] = {
    "timesteps": (int, 2), "layers": (int, 1), "width": (int, 1), "steps": (int, 1),
    "lr": (float, 0.0), "batch_size": (int, 1), "threads": (int, 1),
}


@register_generator("tabddpm")
class TabDDPMGenerator(Generator):
    """Gaussian + multinomial diffusion conditioned on the class (see the module docstring)."""

    DEFAULTS: dict[str, Any] = {
        "timesteps": 1000,
        "layers": 3,
        "width": 256,
        "steps": 3000,
        "lr": 2e-3,
        "batch_size": 256,
        "device": "cpu",
        "seed": 0,
        "threads": 1,
    }

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.DEFAULTS)
        if unknown:
            raise CausalMixError(f"tabddpm: unknown parameters {sorted(unknown)}")
        super().__init__(**{**self.DEFAULTS, **params})
        for key, (kind, low) in _LIMITS.items():
            self.params[key] = _checked(key, self.params[key], kind, low)
        if self.params["device"] not in ("cpu", "auto"):
            raise CausalMixError(f"tabddpm: device must be 'cpu' or 'auto', got "
                                 f"{self.params['device']!r}")
        if not isinstance(self.params["seed"], int) or isinstance(self.params["seed"], bool):
            raise CausalMixError(f"tabddpm: seed must be an integer, got {self.params['seed']!r}")

    def _device(self) -> Any:
        import torch

        auto = self.params["device"] == "auto" and torch.cuda.is_available()
        return torch.device("cuda" if auto else "cpu")

    # ------------------------------------------------------------------ fit
    def _fit(self, X: pd.DataFrame, y: pd.Series) -> None:
        from sklearn.preprocessing import QuantileTransformer

        from engine.generators.tabddpm_diffusion import DiffusionConfig, train

        p = self.params
        self.codec_ = TableCodec().fit(X)
        Z, miss = self.codec_.encode(X)
        codes = label_codes(y, self.classes_)
        if (codes < 0).any():
            raise CausalMixError("tabddpm: the class label has missing values")
        is_num = ~self.codec_.is_cat
        self.num_idx_ = np.flatnonzero(is_num)
        sizes = self.codec_.n_categories
        self.cat_idx_ = np.flatnonzero(self.codec_.is_cat & (sizes > 0))
        Zn = np.where(miss[:, self.num_idx_], np.nan, Z[:, self.num_idx_])
        Zn[:, np.isnan(Zn).all(axis=0)] = 0.0  # an all-missing column: constant, re-injected
        self.qt_ = QuantileTransformer(output_distribution="normal", subsample=10**9,
                                       n_quantiles=max(min(len(X) // 30, 1000), 10),
                                       random_state=p["seed"])
        if len(self.num_idx_):
            x_num = np.nan_to_num(self.qt_.fit_transform(Zn), nan=0.0)
        else:
            x_num = np.zeros((len(X), 0))
        x_cat = Z[:, self.cat_idx_].astype(np.int64)
        self.class_freq_ = np.bincount(codes, minlength=len(self.classes_)) / len(codes)
        self.class_missing_rate_ = [miss[codes == c].mean(axis=0) if (codes == c).any()
                                    else np.zeros(Z.shape[1]) for c in range(len(self.classes_))]
        self.config_ = DiffusionConfig(
            n_num=len(self.num_idx_), cat_sizes=tuple(int(sizes[j]) for j in self.cat_idx_),
            n_classes=len(self.classes_), timesteps=p["timesteps"], layers=p["layers"],
            width=p["width"], steps=p["steps"], lr=p["lr"], batch_size=p["batch_size"])
        self.model_ = train(self.config_, x_num, x_cat, codes, p["seed"], self._device())

    # ------------------------------------------------------------------ sample
    def _sample(self, n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
        rng = np.random.default_rng(seed)
        labels = rng.choice(len(self.classes_), size=n, p=self.class_freq_)
        return self._draw(labels, seed, rng)

    def _sample_class(self, n: int, seed: int, label: Any) -> tuple[pd.DataFrame, pd.Series]:
        """``n`` rows of class ``label`` (the base class's ``sample_class`` and
        ``class_balance`` use it)."""
        labels = np.full(n, self.classes_.tolist().index(label), dtype=np.int64)
        return self._draw(labels, seed, np.random.default_rng(seed))

    def _draw(self, labels: np.ndarray, seed: int,
              rng: np.random.Generator) -> tuple[pd.DataFrame, pd.Series]:
        from engine.generators.tabddpm_diffusion import sample

        x_num, x_cat = sample(self.model_, self.config_, labels, seed, self._device())
        Z = np.zeros((len(labels), len(self.codec_.columns_)))
        if len(self.num_idx_):
            Z[:, self.num_idx_] = self.qt_.inverse_transform(x_num)
        Z[:, self.cat_idx_] = x_cat
        miss = np.zeros(Z.shape, dtype=bool)
        for c, rate in enumerate(self.class_missing_rate_):
            rows = labels == c
            miss[rows] = rng.random((int(rows.sum()), Z.shape[1])) < rate[None, :]
        return self.codec_.decode(Z, miss), pd.Series(self.classes_[labels])


def _checked(key: str, value: Any, kind: type, low: float) -> Any:
    """``value`` as ``kind`` if it is one and above ``low`` (ints: at least), else one line."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        ok = ok and float(value).is_integer() and value >= low
    else:
        ok = ok and np.isfinite(value) and value > low
    if not ok:
        bound = f">= {low:g}" if kind is int else f"> {low:g}"
        raise CausalMixError(f"tabddpm: {key} must be {'an integer' if kind is int else 'a number'}"
                             f" {bound}, got {value!r}")
    return kind(value)
