"""Extra DoWhy ``gcm`` mechanisms used by the ``scm`` generator (imports DoWhy on import)."""

from __future__ import annotations

from typing import Any

import numpy as np
from dowhy import gcm
from dowhy.gcm.causal_mechanisms import InvertibleFunctionalCausalModel


class SmoothedEmpiricalDistribution(gcm.EmpiricalDistribution):
    """Variance-preserving smoothed bootstrap of a numeric root node.

    Draws a training value, adds Gaussian kernel noise with Silverman's bandwidth times
    ``bandwidth_scale`` and shrinks towards the mean so the variance is unchanged. Unlike plain
    resampling, it does not emit exact copies of training values. ``bandwidth_scale=0`` reduces
    to :class:`dowhy.gcm.EmpiricalDistribution`. Draws use numpy's global RNG, like DoWhy.
    """

    def __init__(self, bandwidth_scale: float = 1.0) -> None:
        super().__init__()
        self.bandwidth_scale = float(bandwidth_scale)
        self._mean = np.zeros(0)
        self._h = 0.0

    def fit(self, X: np.ndarray) -> None:
        super().fit(np.asarray(X, dtype=float))
        data = self.data
        n = max(len(data), 2)
        std = data.std(axis=0)
        self._mean = data.mean(axis=0)
        self._h = self.bandwidth_scale * 1.06 * n ** (-0.2)
        self._std = np.where(std > 0, std, 0.0)

    def draw_samples(self, num_samples: int) -> np.ndarray:
        x = super().draw_samples(num_samples)
        if self._h <= 0.0:
            return x
        noise = np.random.standard_normal(x.shape) * (self._h * self._std)
        return self._mean + (x - self._mean + noise) / np.sqrt(1.0 + self._h**2)

    def clone(self) -> SmoothedEmpiricalDistribution:
        return SmoothedEmpiricalDistribution(self.bandwidth_scale)

    def __str__(self) -> str:
        return "Smoothed Empirical Distribution"


class HeteroscedasticNoiseModel(InvertibleFunctionalCausalModel):
    """``Y = f(X) + s(X) * N``: a noise model that is not additive, for residuals whose spread
    depends on the parents.

    ``f`` is a regressor of ``Y``; ``log s`` a regressor of the log absolute residuals
    (rescaled so the standardised residuals have unit variance); ``N`` is drawn from the
    standardised training residuals (numpy's global RNG, like DoWhy). Both models have
    ``fit``/``predict``/``clone`` (DoWhy's ``SklearnRegressionModel``).
    """

    def __init__(self, mean_model: Any, scale_model: Any) -> None:
        self.mean_model = mean_model
        self.scale_model = scale_model
        self._c = 1.0
        self._noise = np.zeros(0)

    def fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        X, y = _as_2d(X), np.asarray(Y, dtype=float).ravel()
        self.mean_model.fit(X, y)
        r = y - _flat(self.mean_model.predict(X))
        floor = 1e-3 * (float(np.std(r)) + 1e-12)
        self.scale_model.fit(X, np.log(np.abs(r) + floor))
        self._c = 1.0
        e = r / self.scale(X)
        self._c = float(np.std(e)) or 1.0
        self._noise = e / self._c

    def scale(self, X: np.ndarray) -> np.ndarray:
        """The noise scale ``s(X)`` per row."""
        log_s = _flat(self.scale_model.predict(_as_2d(X)))
        return np.exp(np.clip(log_s, -30.0, 30.0)) * self._c

    def draw_noise_samples(self, num_samples: int) -> np.ndarray:
        return np.random.choice(self._noise, size=num_samples).reshape(-1, 1)

    def evaluate(self, parent_samples: np.ndarray, noise_samples: np.ndarray) -> np.ndarray:
        X = _as_2d(parent_samples)
        noise = np.asarray(noise_samples, dtype=float).reshape(-1)
        return (_flat(self.mean_model.predict(X)) + self.scale(X) * noise).reshape(-1, 1)

    def estimate_noise(self, target_samples: np.ndarray, parent_samples: np.ndarray) -> np.ndarray:
        X = _as_2d(parent_samples)
        y = np.asarray(target_samples, dtype=float).reshape(-1)
        return ((y - _flat(self.mean_model.predict(X))) / self.scale(X)).reshape(-1, 1)

    def clone(self) -> HeteroscedasticNoiseModel:
        return HeteroscedasticNoiseModel(self.mean_model.clone(), self.scale_model.clone())

    def __str__(self) -> str:
        return "Heteroscedastic noise model"


def _as_2d(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    return X.reshape(-1, 1) if X.ndim == 1 else X


def _flat(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=float).reshape(-1)
