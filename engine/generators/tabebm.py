"""``tabebm``: TabEBM (Margeloiu et al., NeurIPS 2024) over the project's in-context classifier.

TabEBM turns a pretrained in-context classifier into one energy-based model per class,
without training anything:

1. **Surrogate task per class.** For class ``c``, the context holds the class-``c`` rows
   (numerics standardised, categoricals as integer codes, missing values imputed) labelled 1,
   and ``n_negatives`` negative rows labelled 0, placed at corners of a hypercube around the
   data: ``mean_j + s_j * distance * std_j`` with random signs ``s_j = +-1`` (seeded; all
   ``2**d`` corners when there are fewer than ``n_negatives``).
2. **Class energy.** ``E_c(x) = -f_1(x)``, the negated logit of "class ``c``" that the
   in-context classifier assigns to ``x`` given that context (``energy="logit"``), or
   ``-logsumexp(f(x))`` as in the paper (``energy="logsumexp"``, the default: its samples
   stayed closer to the real rows in our fidelity checks).
3. **SGLD sampling.** Starting points are real class-``c`` rows plus Gaussian noise
   ``start_noise`` (``init="real"``) or uniform draws in the class's bounding box
   (``init="uniform"``); each of ``steps`` updates is
   ``x <- x - step_size * grad E_c(x) + noise * N(0, I)``.
4. **Decoding.** Numerics are mapped back to their scale and clipped to the observed range,
   categorical codes are snapped to the nearest valid code, and missing values are
   re-injected at the observed per-class rates. Class counts are proportional to the real
   class frequencies (or as the ``class_balance`` option sets them: each class has its own
   energy, so a class is drawn directly).

The classifier is ``engine.models.load_model(model, device="cpu", **model_options)`` (the
embedded PFN by default, which works offline); an ``InContextClassifier`` instance is also
accepted. The loaded model is not pickled with the generator: a Ray worker reloads it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from engine.core.errors import CausalMixError
from engine.generators.base import Generator, register_generator
from engine.generators.tableaugment import (
    TableCodec,
    label_codes,
    one_class_counts,
    proportional_counts,
)


@register_generator("tabebm")
class TabEBMGenerator(Generator):
    """Training-free class-conditional energy-based sampler on an in-context classifier."""

    DEFAULTS: dict[str, Any] = {
        "model": "pfn",
        "model_options": {},
        "model_seed": 0,
        "n_negatives": 32,
        "distance": 5.0,
        "energy": "logsumexp",
        "steps": 100,
        "step_size": 0.1,
        "noise": 0.01,
        "init": "real",
        "start_noise": 0.01,
        "max_context": 1000,
        "batch_size": 1024,
        "clip": True,
        "missing": "reinject",
        "seed": 0,
        "threads": 1,
    }

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.DEFAULTS)
        if unknown:
            raise CausalMixError(f"tabebm: unknown parameters {sorted(unknown)}")
        super().__init__(**{**self.DEFAULTS, **params})
        p = self.params
        if p["energy"] not in ("logit", "logsumexp"):
            raise CausalMixError("tabebm: energy must be 'logit' or 'logsumexp'")
        if p["init"] not in ("real", "uniform"):
            raise CausalMixError("tabebm: init must be 'real' or 'uniform'")
        if p["missing"] not in ("reinject", "none"):
            raise CausalMixError("tabebm: missing must be 'reinject' or 'none'")
        if int(p["steps"]) < 0 or int(p["n_negatives"]) < 1:
            raise CausalMixError("tabebm: steps must be >= 0 and n_negatives >= 1")
        self._model_cache: Any = None

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if isinstance(self.params["model"], str):
            state["_model_cache"] = None  # reloaded where it is needed
        return state

    def _model(self) -> Any:
        if self._model_cache is not None:
            return self._model_cache
        spec = self.params["model"]
        if isinstance(spec, str):
            from engine.models import load_model

            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(self.params["model_seed"]))
                model = load_model(spec, device="cpu", **dict(self.params["model_options"]))
        else:
            model = spec
        model.module.eval()
        for prm in model.module.parameters():
            prm.requires_grad_(False)
        self._model_cache = model
        return model

    # ------------------------------------------------------------------ fit
    def _fit(self, X: pd.DataFrame, y: pd.Series) -> None:
        p = self.params
        rng = np.random.default_rng(int(p["seed"]))
        self.codec_ = TableCodec().fit(X)
        Z, miss = self.codec_.encode(X)
        codes = label_codes(y, self.classes_)
        d = Z.shape[1]
        if d == 0:
            raise CausalMixError("tabebm: needs at least one feature column")
        center, spread = Z.mean(axis=0), Z.std(axis=0)
        spread = np.where(spread > 1e-12, spread, 1.0)
        model = self._model()
        n_neg = int(p["n_negatives"])
        max_rows = max(int(p["max_context"]) - n_neg, 1)
        self.class_freq_ = np.bincount(codes[codes >= 0], minlength=len(self.classes_))
        self.contexts_: list[tuple[np.ndarray, np.ndarray]] = []
        self.class_rows_: list[np.ndarray] = []
        self.class_missing_rate_: list[np.ndarray] = []
        for c in range(len(self.classes_)):
            Zc = Z[codes == c]
            self.class_missing_rate_.append(miss[codes == c].mean(axis=0))
            self.class_rows_.append(Zc)
            if len(Zc) > max_rows:
                Zc = Zc[np.sort(rng.choice(len(Zc), size=max_rows, replace=False))]
            signs = _corners(d, n_neg, rng)
            neg = center + signs * float(p["distance"]) * spread
            X_ctx = np.vstack([Zc, neg]).astype(np.float32)
            y_ctx = np.r_[np.ones(len(Zc)), np.zeros(len(neg))].astype(np.int64)
            model.check_table(len(X_ctx), d, 2)
            self.contexts_.append((X_ctx, y_ctx))
        self.lo_ = np.array([col.lo for col in self.codec_.columns_])
        self.hi_ = np.array([col.hi for col in self.codec_.columns_])

    # ------------------------------------------------------------------ sample
    def _sample(self, n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
        return self._sample_counts(proportional_counts(n, self.class_freq_), seed)

    def _sample_class(self, n: int, seed: int, label: Any) -> tuple[pd.DataFrame, pd.Series]:
        return self._sample_counts(one_class_counts(n, self.classes_, label), seed)

    def _sample_counts(self, counts: np.ndarray, seed: int) -> tuple[pd.DataFrame, pd.Series]:
        """``counts[c]`` rows of each class ``c`` (SGLD on its energy), shuffled (seeded)."""
        p = self.params
        rng = np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(int(seed))
        model = self._model()
        Zs, Ms, ys = [], [], []
        for c, m in enumerate(counts):
            if m == 0:
                continue
            Zc = self.class_rows_[c]
            if p["init"] == "real":
                x0 = Zc[rng.integers(0, len(Zc), size=m)]
                x0 = x0 + float(p["start_noise"]) * rng.standard_normal(x0.shape)
            else:
                x0 = rng.uniform(Zc.min(axis=0), Zc.max(axis=0), size=(m, Zc.shape[1]))
            X_ctx, y_ctx = (torch.as_tensor(a) for a in self.contexts_[c])
            out = [
                self._sgld(model, X_ctx, y_ctx, x0[s : s + int(p["batch_size"])], gen)
                for s in range(0, m, int(p["batch_size"]))
            ]
            Zs.append(np.vstack(out))
            if p["missing"] == "reinject":
                Ms.append(rng.random((m, Zc.shape[1])) < self.class_missing_rate_[c][None, :])
            else:
                Ms.append(np.zeros((m, Zc.shape[1]), dtype=bool))
            ys.append(np.full(m, c))
        Z, M, yc = np.vstack(Zs), np.vstack(Ms), np.concatenate(ys)
        if p["clip"]:
            Z = np.clip(Z, self.lo_, self.hi_)
        order = rng.permutation(len(yc))
        X_syn = self.codec_.decode(Z[order], M[order])
        return X_syn, pd.Series(self.classes_[yc[order]])

    def _sgld(
        self,
        model: Any,
        X_ctx: torch.Tensor,
        y_ctx: torch.Tensor,
        x0: np.ndarray,
        gen: torch.Generator,
    ) -> np.ndarray:
        p = self.params
        step, noise = float(p["step_size"]), float(p["noise"])
        x = torch.as_tensor(x0, dtype=torch.float32).clone()
        with torch.enable_grad():
            for _ in range(int(p["steps"])):
                x.requires_grad_(True)
                logits = model.forward_episode(X_ctx, y_ctx, x, 2).float()
                if p["energy"] == "logit":
                    energy = -logits[:, 1]
                else:
                    energy = -torch.logsumexp(logits, dim=-1)
                (grad,) = torch.autograd.grad(energy.sum(), x)
                eps = torch.randn(x.shape, generator=gen, dtype=x.dtype)
                x = (x.detach() - step * grad + noise * eps).detach()
        return x.detach().numpy().astype(np.float64)


def _corners(d: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` distinct sign vectors in ``{-1, +1}^d`` (all of them when ``2**d <= k``)."""
    if d < 20 and 2**d <= k:
        idx = np.arange(2**d)
    else:
        seen: set[int] = set()
        rows = []
        while len(rows) < k:
            s = rng.integers(0, 2, size=d)
            key = hash(s.tobytes())
            if key not in seen:
                seen.add(key)
                rows.append(s)
        return np.where(np.array(rows) > 0, 1.0, -1.0)
    bits = (idx[:, None] >> np.arange(d)[None, :]) & 1
    return np.where(bits > 0, 1.0, -1.0)
