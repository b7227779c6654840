"""The two scaling laws and their least-squares fits (point estimate and bootstrap refits).

Both laws have one nonlinear parameter (``tau``, ``k``) and two linear ones. The weighted least
squares problem over per-scale means (weights = points per scale, the same objective as fitting
every dataset-fold point) is solved by variable projection: for a value of the nonlinear
parameter the linear ones are solved in closed form, and the residual sum of squares is minimised
over a grid spanning the accepted range, then by golden-section search between the grid
neighbours; vectorised over all bootstrap resamples at once. The point estimate is then refined
with ``scipy.optimize.curve_fit`` from that solution. A fit fails when the minimum lies on the
border of the accepted range (no interior optimum: e.g. no saturation within reach of the data).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import curve_fit

SATURATING, POWER, LOG_LINEAR = "saturating", "power", "log2_linear"
FORMULAS = {SATURATING: "y = y_inf - (y_inf - y0) * exp(-s / tau)",
            POWER: "y = a + b * s^k", LOG_LINEAR: "y = intercept + slope * log2(s)"}
PARAMETERS = {SATURATING: ("y0", "y_inf", "tau"), POWER: ("a", "b", "k"),
              LOG_LINEAR: ("intercept", "slope")}
TAU_RANGE = (0.2, 10.0)
"""Accepted tau: [0.2 x smallest, 10 x largest positive scale of the curve]; outside, the data
cannot tell tau apart (saturated before the first scale, or no bend within the data)."""
K_MAX = 5.0
"""Accepted power-law exponent: |k| <= K_MAX."""
N_GRID = 80
GOLDEN_STEPS = 40
GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


def saturating(s: np.ndarray, y0: float, y_inf: float, tau: float) -> np.ndarray:
    """``y_inf − (y_inf − y0) · exp(−s / tau)``: ``y0`` at scale 0, ``y_inf`` at saturation."""
    return y_inf - (y_inf - y0) * np.exp(-np.asarray(s, dtype=float) / tau)


def power_law(s: np.ndarray, a: float, b: float, k: float) -> np.ndarray:
    """``a + b · s^k`` (positive scales)."""
    return a + b * np.power(np.asarray(s, dtype=float), k)


LAW_FUNCTIONS = {SATURATING: saturating, POWER: power_law}


def _saturating_log(s: np.ndarray, y0: float, y_inf: float, log_tau: float) -> np.ndarray:
    return saturating(s, y0, y_inf, np.exp(log_tau))


def _grid(law: str, s: np.ndarray) -> np.ndarray:
    """The nonlinear parameter's grid: log tau, or k, over the accepted range."""
    if law == SATURATING:
        return np.linspace(np.log(TAU_RANGE[0] * s.min()), np.log(TAU_RANGE[1] * s.max()), N_GRID)
    return np.linspace(-K_MAX, K_MAX, N_GRID)  # even N_GRID: k = 0 (singular) is not on it


def _solve(law: str, theta: np.ndarray, s: np.ndarray, y: np.ndarray,
           w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For ``theta`` (B x G) and data ``y``, ``w`` (B x J): the weighted RSS and the linear
    coefficients of the bases u (y_inf or a) and v (y0 or b), each B x G."""
    t = theta[..., None]
    if law == SATURATING:
        v = np.exp(-s / np.exp(t))
        u = 1.0 - v
    else:
        v = np.power(s, t)
        u = np.ones_like(v)
    y, w = y[:, None, :], w[:, None, :]
    with np.errstate(all="ignore"):
        suu, suv, svv = (w * u * u).sum(-1), (w * u * v).sum(-1), (w * v * v).sum(-1)
        suy, svy = (w * u * y).sum(-1), (w * v * y).sum(-1)
        det = suu * svv - suv**2
        cu, cv = (svv * suy - suv * svy) / det, (suu * svy - suv * suy) / det
        rss = (w * (y - cu[..., None] * u - cv[..., None] * v) ** 2).sum(-1)
    good = np.isfinite(rss) & (det > 1e-12 * suu * svv)
    return np.where(good, rss, np.inf), cu, cv


def profile_fit(law: str, s: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Least-squares parameters (B x 3, in ``PARAMETERS`` order; NaN rows failed) for B
    data sets of per-scale means ``y`` with weights ``w`` (B x J; weight 0 = no data)."""
    y = np.where(w > 0, y, 0.0)
    grid = _grid(law, s)
    rss, _, _ = _solve(law, np.broadcast_to(grid, (len(y), len(grid))), s, y, w)
    best = np.argmin(rss, axis=1)
    rows = np.arange(len(y))
    ok = (best > 0) & (best < len(grid) - 1) & np.isfinite(rss[rows, best])
    ok &= (w > 0).sum(axis=1) >= 3
    lo, hi = grid[np.clip(best - 1, 0, None)], grid[np.clip(best + 1, None, len(grid) - 1)]
    for _ in range(GOLDEN_STEPS):
        c, d = hi - GOLDEN * (hi - lo), lo + GOLDEN * (hi - lo)
        fc = _solve(law, c[:, None], s, y, w)[0][:, 0]
        fd = _solve(law, d[:, None], s, y, w)[0][:, 0]
        hi, lo = np.where(fc < fd, d, hi), np.where(fc < fd, lo, c)
    theta = (lo + hi) / 2
    _, cu, cv = _solve(law, theta[:, None], s, y, w)
    cu, cv = cu[:, 0], cv[:, 0]
    params = (np.stack([cv, cu, np.exp(theta)], 1) if law == SATURATING
              else np.stack([cu, cv, theta], 1))
    params[~ok | ~np.all(np.isfinite(params), axis=1)] = np.nan
    return params


def accepted(law: str, params: np.ndarray, s: np.ndarray) -> bool:
    """Finite and inside the accepted range (``TAU_RANGE``, ``K_MAX``)."""
    if not np.all(np.isfinite(params)):
        return False
    if law == SATURATING:
        return bool(TAU_RANGE[0] * s.min() < params[2] < TAU_RANGE[1] * s.max())
    return bool(abs(params[2]) < K_MAX)


def fit_law(law: str, s: np.ndarray, y: np.ndarray, n: np.ndarray) -> np.ndarray | None:
    """Point estimate for per-scale means ``y`` with ``n`` points each: the profile solution
    refined by ``curve_fit`` (kept when it stays in range); None when the fit fails."""
    s, y, w = (np.asarray(a, dtype=float) for a in (s, y, n))
    start = profile_fit(law, s, y[None, :], w[None, :])[0]
    if not np.all(np.isfinite(start)):
        return None
    func, p0 = ((_saturating_log, [start[0], start[1], np.log(start[2])]) if law == SATURATING
                else (power_law, list(start)))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            params, _ = curve_fit(func, s, y, p0=p0, sigma=1 / np.sqrt(w), maxfev=2000)
        except (RuntimeError, ValueError):
            return start
    if law == SATURATING:
        params = np.array([params[0], params[1], np.exp(params[2])])
    return params if accepted(law, params, s) else start


def boot_law(law: str, s: np.ndarray, sums: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Bootstrap refits (B x 3, NaN rows failed) from per-resample sums and counts per scale."""
    with np.errstate(all="ignore"):
        means = np.where(n > 0, sums / np.where(n > 0, n, 1.0), 0.0)
    return profile_fit(law, np.asarray(s, dtype=float), means, n)
