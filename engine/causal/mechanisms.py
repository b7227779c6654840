"""Extra DoWhy ``gcm`` mechanisms used by the ``scm`` generator (imports DoWhy on import)."""

from __future__ import annotations

import numpy as np
from dowhy import gcm


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
