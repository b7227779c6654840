"""Saturating fits of improvement against synthetic scale (power law as a fallback)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.optimize import curve_fit

TAU_RANGE = 10.0
"""Largest accepted time constant, as a multiple of the largest observed scale."""
POWER_RANGE = 3.0
"""Bound on the power-law exponent's magnitude."""
FIT_COLUMNS = ["method", "mix_ratio", "model", "converged", "n_points", "a", "tau", "b",
               "c", "p", "d", "r2", "scale_90"]


def saturating(s: np.ndarray, a: float, tau: float, b: float) -> np.ndarray:
    """``a * (1 - exp(-s / tau)) + b``: level ``b`` at scale 0, gain ``a`` at saturation."""
    return a * (1.0 - np.exp(-np.asarray(s, dtype=float) / tau)) + b


def power_law(s: np.ndarray, c: float, p: float, d: float) -> np.ndarray:
    """``c * s**p + d`` (scales must be positive)."""
    return c * np.power(np.asarray(s, dtype=float), p) + d


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - pred) ** 2)) / total if total > 0 else float("nan")


def fit_curve(scales: np.ndarray, values: np.ndarray) -> dict[str, object]:
    """Fit the saturating model, falling back to the power law when it fails to converge.

    Needs at least 3 distinct finite points (4 for the power law, which is fitted on positive
    scales only). The saturating fit is rejected when ``tau`` reaches ``TAU_RANGE`` times the
    largest scale (no saturation within reach of the data). ``scale_90`` is the scale at which
    90 % of the change ``a`` is reached: ``tau * ln 10`` (NaN for a flat curve and for the
    power law, which does not saturate).
    """
    s = np.asarray(scales, dtype=float)
    y = np.asarray(values, dtype=float)
    keep = np.isfinite(s) & np.isfinite(y)
    s, y = s[keep], y[keep]
    out: dict[str, object] = {c: float("nan") for c in FIT_COLUMNS[4:]}
    out.update(model="none", converged=False, n_points=int(len(s)))
    if len(np.unique(s)) < 3:
        return out
    span = float(s.max() - s.min()) or 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            start = [float(y[np.argmax(s)] - y[np.argmin(s)]), float(np.median(s)),
                     float(y[np.argmin(s)])]
            tau_max = TAU_RANGE * float(s.max())
            bounds = ([-np.inf, span * 1e-4, -np.inf], [np.inf, tau_max, np.inf])
            params, cov = curve_fit(saturating, s, y, p0=start, bounds=bounds, maxfev=20000)
            a, tau, b = (float(v) for v in params)
            inside = tau < 0.99 * tau_max  # at the bound the data show no saturation
            if np.all(np.isfinite(params)) and np.all(np.isfinite(np.diag(cov))) and inside:
                scale_90 = float(tau * np.log(10.0)) if abs(a) > 1e-12 else float("nan")
                out.update(model="saturating", converged=True, a=a, tau=tau, b=b,
                           r2=_r2(y, saturating(s, *params)), scale_90=scale_90)
                return out
        except (RuntimeError, ValueError):
            pass
        positive = s > 0
        if len(np.unique(s[positive])) >= 4:
            try:
                params, _ = curve_fit(power_law, s[positive], y[positive],
                                      p0=[1.0, 0.5, float(y.min())], maxfev=20000,
                                      bounds=([-np.inf, -POWER_RANGE, -np.inf],
                                              [np.inf, POWER_RANGE, np.inf]))
                if np.all(np.isfinite(params)):
                    c, p, d = (float(v) for v in params)
                    out.update(model="power_law", converged=True, c=c, p=p, d=d,
                               r2=_r2(y[positive], power_law(s[positive], *params)))
            except (RuntimeError, ValueError):
                pass
    return out


def predict(row: pd.Series, scales: np.ndarray) -> np.ndarray:
    """Evaluate a fitted row of :func:`fit_table` at ``scales``."""
    if row["model"] == "saturating":
        return saturating(scales, row["a"], row["tau"], row["b"])
    if row["model"] == "power_law":
        return power_law(scales, row["c"], row["p"], row["d"])
    return np.full(len(np.asarray(scales)), np.nan)


def fit_table(curves: pd.DataFrame) -> pd.DataFrame:
    """Fit the median-improvement curve of every method x mix ratio (from ``scaling_table``)."""
    rows = []
    for (method, ratio), group in curves[curves["n"] > 0].groupby(["method", "mix_ratio"]):
        fit = fit_curve(group["synthetic_scale"].to_numpy(), group["median"].to_numpy())
        rows.append(dict(method=method, mix_ratio=float(ratio), **fit))
    return pd.DataFrame(rows, columns=FIT_COLUMNS)
