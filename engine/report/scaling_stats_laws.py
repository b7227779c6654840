"""Scaling laws of improvement against synthetic scale, fitted on dataset-fold level data.

Per method x mix ratio (and, for methods with several mix ratios, averaged over the mixes:
``mix_ratio`` NaN), on the seed-averaged value of every dataset-fold at every positive scale:

* saturating ``y = y_inf − (y_inf − y0) · exp(−s / tau)`` and power law ``y = a + b · s^k``,
  least squares with ``scipy.optimize.curve_fit``; parameter CIs by the dataset-fold bootstrap;
* ``y = intercept + slope · log2(s)`` by OLS: the "slope = 0" test (cluster-bootstrap CI and
  p-value, and ``scipy.stats.linregress``'s p for reference);
* AIC of each law. Formulas and rules in docs/report.md ("Scaling statistics").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from engine.report.scaling_stats_core import (
    BOOT_SEED,
    IMPROVEMENT,
    N_BOOT,
    UNIT_KEYS,
    _method_order,
    bootstrap_counts,
    grid_values,
    percentile_ci,
    scale_methods,
    unit_matrix,
)
from engine.report.scaling_stats_fit import (
    FORMULAS,
    LAW_FUNCTIONS,
    LOG_LINEAR,
    PARAMETERS,
    POWER,
    SATURATING,
    boot_law,
    fit_law,
)

LAW_COLUMNS = ["method", "mix_ratio", "score", "law", "formula", "parameter", "estimate",
               "ci_low", "ci_high", "n_units", "n_points", "n_scales", "converged", "rss", "aic",
               "delta_aic", "best_aic", "n_boot", "n_failed", "p_value", "p_linregress"]


def curve_groups(values: pd.DataFrame) -> list[tuple[str, float, pd.DataFrame]]:
    """(method, mix ratio, dataset-folds x positive scales) for each curve to fit; methods
    with several mix ratios also get the mean over mixes (mix ratio NaN)."""
    values = values[values["synthetic_scale"] > 0]
    groups = []
    for method in scale_methods(values):
        part = values[values["method"] == method]
        for mix in sorted(part["mix_ratio"].unique()):
            groups.append((method, float(mix),
                           unit_matrix(part[part["mix_ratio"] == mix], ["synthetic_scale"])))
        if part["mix_ratio"].nunique() > 1:
            pooled = part.groupby(UNIT_KEYS + ["synthetic_scale"], as_index=False)["value"].mean()
            groups.append((method, float("nan"), unit_matrix(pooled, ["synthetic_scale"])))
    return groups


def slope_test(wide: pd.DataFrame, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> dict:
    """OLS of every dataset-fold point on log2(scale): slope, intercept, cluster-bootstrap CIs
    (dataset-folds resampled), bootstrap p = min(1, 2 · min(P*(slope ≤ 0), P*(slope ≥ 0))) and
    ``scipy.stats.linregress``'s p (points taken as independent)."""
    y = wide.to_numpy(dtype=float)
    x = np.broadcast_to(np.log2(wide.columns.to_numpy(dtype=float)), y.shape)
    ok = np.isfinite(y)
    nan = float("nan")
    out = dict(slope=nan, intercept=nan, slope_ci=(nan, nan), intercept_ci=(nan, nan),
               p_value=nan, p_linregress=nan, n_failed=n_boot)
    if len(np.unique(x[ok])) < 2:
        return out
    fit = stats.linregress(x[ok], y[ok])
    xz, yz = np.where(ok, x, 0.0), np.where(ok, y, 0.0)
    parts = np.stack([ok.sum(1), xz.sum(1), yz.sum(1), (xz**2).sum(1), (xz * yz).sum(1)], 1)
    n, sx, sy, sxx, sxy = (bootstrap_counts(len(y), n_boot, seed) @ parts).T
    with np.errstate(all="ignore"):
        denom = n * sxx - sx**2
        slopes = np.where(denom > 1e-12 * np.maximum(n * sxx, 1e-300),
                          (n * sxy - sx * sy) / denom, np.nan)
        intercepts = (sy - slopes * sx) / n
    finite = slopes[np.isfinite(slopes)]
    p = min(1.0, 2 * min(np.mean(finite <= 0), np.mean(finite >= 0))) if len(finite) else nan
    out.update(slope=float(fit.slope), intercept=float(fit.intercept),
               slope_ci=percentile_ci(slopes), intercept_ci=percentile_ci(intercepts),
               p_value=float(p), p_linregress=float(fit.pvalue),
               n_failed=int(n_boot - len(finite)))
    return out


def _boot_law(law: str, wide: pd.DataFrame, n_boot: int, seed: int) -> tuple[np.ndarray, int]:
    """Bootstrap parameter draws (``n_boot x 3``, NaN rows failed) and the number failed."""
    y = wide.to_numpy(dtype=float)
    ok = np.isfinite(y)
    counts = bootstrap_counts(len(y), n_boot, seed)
    draws = boot_law(law, wide.columns.to_numpy(dtype=float), counts @ np.where(ok, y, 0.0),
                     counts @ ok.astype(float))
    return draws, int(np.isnan(draws[:, 0]).sum())


def _law_fit(law: str, wide: pd.DataFrame) -> tuple[np.ndarray | None, float]:
    """Point estimate of ``law`` and the residual sum of squares over all points."""
    s = wide.columns.to_numpy(dtype=float)
    y = wide.to_numpy(dtype=float)
    ok = np.isfinite(y)
    n_j = ok.sum(0)
    keep = n_j > 0
    means = np.where(ok, y, 0.0).sum(0)[keep] / n_j[keep]
    params = fit_law(law, s[keep], means, n_j[keep])
    if params is None:
        return None, float("nan")
    resid = y - LAW_FUNCTIONS[law](s, *params)[None, :]
    return params, float(np.nansum(resid**2))


def aic(rss: float, n_points: int, n_params: int) -> float:
    """Gaussian least-squares AIC: ``n · ln(RSS / n) + 2 (n_params + 1)`` (+1: the variance)."""
    if not np.isfinite(rss) or n_points == 0:
        return float("nan")
    with np.errstate(divide="ignore"):
        return float(n_points * np.log(rss / n_points) + 2 * (n_params + 1))


def curve_rows(wide: pd.DataFrame, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> list[dict]:
    """Rows of ``scaling_laws`` for one curve (all laws and parameters)."""
    y = wide.to_numpy(dtype=float)
    base = dict(n_units=int(np.isfinite(y).any(1).sum()), n_points=int(np.isfinite(y).sum()),
                n_scales=int(np.isfinite(y).any(0).sum()), n_boot=n_boot)
    rows = []
    for law in (SATURATING, POWER):
        params, rss = _law_fit(law, wide)
        draws, failed = _boot_law(law, wide, n_boot, seed)
        low, high = percentile_ci(draws)
        estimate = params if params is not None else np.full(3, np.nan)
        for j, name in enumerate(PARAMETERS[law]):
            rows.append(dict(base, law=law, parameter=name, estimate=float(estimate[j]),
                             ci_low=float(low[j]), ci_high=float(high[j]),
                             converged=params is not None, rss=rss,
                             aic=aic(rss, base["n_points"], 3), n_failed=failed))
    test = slope_test(wide, n_boot, seed)
    fitted = np.isfinite(test["slope"])
    resid = y - (test["intercept"] + test["slope"] * np.log2(wide.columns.to_numpy(float)))
    rss = float(np.nansum(resid**2)) if fitted else float("nan")
    for name in PARAMETERS[LOG_LINEAR]:
        low, high = test[f"{name}_ci"]
        rows.append(dict(base, law=LOG_LINEAR, parameter=name, estimate=test[name],
                         ci_low=float(low), ci_high=float(high), converged=bool(fitted), rss=rss,
                         aic=aic(rss, base["n_points"], 2), n_failed=test["n_failed"],
                         p_value=test["p_value"] if name == "slope" else np.nan,
                         p_linregress=test["p_linregress"] if name == "slope" else np.nan))
    return rows


def scaling_laws(results: pd.DataFrame, column: str = IMPROVEMENT, n_boot: int = N_BOOT,
                 seed: int = BOOT_SEED) -> pd.DataFrame:
    """Every curve's laws (long format: one row per law parameter); ``delta_aic`` = AIC − the
    curve's smallest AIC, ``best_aic`` marks the law with the smallest AIC."""
    rows = []
    for method, mix, wide in curve_groups(grid_values(results, column)):
        for row in curve_rows(wide, n_boot, seed):
            rows.append(dict(row, method=method, mix_ratio=mix, formula=FORMULAS[row["law"]]))
    table = pd.DataFrame(rows, columns=LAW_COLUMNS)
    if table.empty:
        return table
    table["score"] = column
    keys = table[["method", "mix_ratio"]].fillna({"mix_ratio": -1.0}).astype(str).agg("|".join, 1)
    best = table.groupby(keys)["aic"].transform("min")
    table["delta_aic"] = table["aic"] - best
    table["best_aic"] = np.isclose(table["aic"], best) & np.isfinite(table["aic"])
    return _method_order(table, ["mix_ratio"]).reset_index(drop=True)[LAW_COLUMNS]
