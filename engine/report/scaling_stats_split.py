"""Split-half replication of the scaling claims over two disjoint halves of the datasets.

The sorted dataset names are shuffled with ``numpy.random.default_rng(SPLIT_SEED)``; half A is
the first ``ceil(n / 2)``, half B the rest. Each claim is computed on the full data and on each
half with the same code (and bootstrap seed) as the full tables; rules in docs/report.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.report.load import CONFIG_KEYS
from engine.report.reference import REFERENCE_METHOD, ordered_methods
from engine.report.scaling_stats_core import (
    BOOT_SEED,
    DECIMALS,
    IMPROVEMENT,
    LEVEL,
    N_BOOT,
    grid_values,
)
from engine.report.scaling_stats_laws import curve_groups, slope_test
from engine.report.scaling_stats_tables import best_mix_table, scaling_summary

SPLIT_SEED = 1729
"""Seed of the dataset split (a constant, fixed before any result was seen)."""
KEYS = ["claim", *CONFIG_KEYS]
FIELDS = ["estimate", "ci_low", "ci_high", "sign", "excludes_zero", "choice", "win_share",
          "n_units"]


def split_datasets(datasets: object, seed: int = SPLIT_SEED) -> tuple[list[str], list[str]]:
    """Two disjoint halves (each sorted) of the unique dataset names."""
    names = sorted({str(d) for d in datasets})  # type: ignore[attr-defined]
    order = np.random.default_rng(seed).permutation(len(names))
    shuffled = [names[i] for i in order]
    half = (len(names) + 1) // 2
    return sorted(shuffled[:half]), sorted(shuffled[half:])


def _sign(value: float) -> float:
    return float(np.sign(np.round(value, DECIMALS))) if np.isfinite(value) else float("nan")


def claims(results: pd.DataFrame, column: str = IMPROVEMENT, n_boot: int = N_BOOT,
           seed: int = BOOT_SEED) -> pd.DataFrame:
    """The claims on ``results``: ``diff_vs_finetune`` per grid point, ``slope`` per curve
    (``synthetic_scale`` NaN) and ``best_mix`` pooled over datasets (scale NaN)."""
    rows = []
    summary = scaling_summary(results, column, n_boot, seed)
    for r in summary[summary["method"] != REFERENCE_METHOD].itertuples():
        if np.isfinite(r.diff_vs_finetune):
            rows.append(dict(claim="diff_vs_finetune", method=r.method,
                             synthetic_scale=r.synthetic_scale, mix_ratio=r.mix_ratio,
                             estimate=r.diff_vs_finetune, ci_low=r.diff_ci_low,
                             ci_high=r.diff_ci_high, n_units=r.n_paired))
    for method, mix, wide in curve_groups(grid_values(results, column)):
        test = slope_test(wide, n_boot, seed)
        rows.append(dict(claim="slope", method=method, synthetic_scale=np.nan, mix_ratio=mix,
                         estimate=test["slope"], ci_low=test["slope_ci"][0],
                         ci_high=test["slope_ci"][1], n_units=len(wide)))
    best = best_mix_table(results, column, n_boot, seed)
    for r in best[best["dataset"] == "(all)"].itertuples() if len(best) else []:
        rows.append(dict(claim="best_mix", method=r.method, synthetic_scale=np.nan,
                         mix_ratio=np.nan, estimate=r.mean, ci_low=r.ci_low, ci_high=r.ci_high,
                         choice=r.best_mix_ratio, win_share=r.win_share, n_units=r.n_folds))
    table = pd.DataFrame(rows, columns=KEYS + FIELDS)
    sign_claim = table["claim"] != "best_mix"
    table["sign"] = [_sign(v) if s else np.nan for v, s in zip(table["estimate"], sign_claim)]
    table["excludes_zero"] = sign_claim & ((table["ci_low"] > 0) | (table["ci_high"] < 0))
    return table


def split_half_table(results: pd.DataFrame, column: str = IMPROVEMENT, n_boot: int = N_BOOT,
                     seed: int = BOOT_SEED, split_seed: int = SPLIT_SEED) -> pd.DataFrame:
    """Each claim on the full data (``*_full``) and on halves A and B (``*_a``, ``*_b``), with
    ``replicates`` (same sign, or same best mix, in both halves) and
    ``replicates_significant`` (also significant in both halves)."""
    half_a, half_b = split_datasets(grid_values(results, column)["dataset"], split_seed)
    if not half_a or not half_b:
        return pd.DataFrame(columns=KEYS + ["replicates", "replicates_significant"])
    table = claims(results, column, n_boot, seed)[KEYS + ["estimate", "choice"]]
    table = table.rename(columns={"estimate": "estimate_full", "choice": "choice_full"})
    for name, half in (("a", half_a), ("b", half_b)):
        part = claims(results[results["dataset"].astype(str).isin(half)], column, n_boot, seed)
        table = table.merge(part.rename(columns={f: f"{f}_{name}" for f in FIELDS}), on=KEYS,
                            how="outer")
    is_mix = table["claim"] == "best_mix"
    same = np.where(is_mix, table["choice_a"] == table["choice_b"],
                    table["sign_a"] == table["sign_b"])
    strong = np.where(is_mix, (table["win_share_a"] >= LEVEL) & (table["win_share_b"] >= LEVEL),
                      table["excludes_zero_a"].eq(True) & table["excludes_zero_b"].eq(True))
    table["replicates"] = same.astype(bool)
    table["replicates_significant"] = (same & strong).astype(bool)
    table["score"] = column
    table["datasets_a"], table["datasets_b"] = ";".join(half_a), ";".join(half_b)
    claim_order = {"diff_vs_finetune": 0, "slope": 1, "best_mix": 2}
    method_order = {m: i for i, m in enumerate(ordered_methods(table["method"]))}
    table = table.assign(_c=table["claim"].map(claim_order), _m=table["method"].map(method_order))
    table = table.sort_values(["_c", "_m", "mix_ratio", "synthetic_scale"])
    return table.drop(columns=["_c", "_m"]).reset_index(drop=True)
