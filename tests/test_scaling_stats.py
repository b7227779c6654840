"""Scaling statistics checked against direct numpy/scipy computations on hand-made tables."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.optimize import curve_fit

from engine.report.export import Outputs
from engine.report.scaling_stats import write_scaling_stats
from engine.report.scaling_stats_core import BOOT_SEED, grid_values
from engine.report.scaling_stats_fit import power_law, saturating
from engine.report.scaling_stats_laws import scaling_laws, slope_test
from engine.report.scaling_stats_split import SPLIT_SEED, split_datasets, split_half_table
from engine.report.scaling_stats_tables import best_mix_table, per_dataset_table, scaling_summary
from tests.test_report_rows import frame, trial

SCALES = [0.5, 1.0, 2.0, 4.0]
MIXES = [0.25, 0.75]


def row(method, dataset, fold, value, scale=0.0, mix=0.0, seed=0, step=10):
    r = trial(method, dataset, fold, 0.9, scale=scale, mix=mix, seed=seed)
    r["normalized_improvement_pct"], r["best_step"] = value, step
    return r


def table(gain=None, n_datasets=3, n_folds=2, seed=0, noise=1.0):
    """finetune + causalmixft (SCALES x MIXES) + scm (SCALES, mix 1); ``gain(scale, mix, d)``."""
    rng = np.random.default_rng(seed)
    gain = gain or (lambda s, m, d: np.log2(s) + m)
    rows = []
    for d in range(n_datasets):
        for f in range(n_folds):
            rows.append(row("finetune", f"d{d}", f, rng.normal(), step=int(rng.integers(0, 2))))
            for s in SCALES:
                for m in MIXES:
                    rows.append(row("causalmixft", f"d{d}", f, gain(s, m, d) + noise *
                                    rng.normal(), s, m, step=int(rng.integers(0, 2)) * 10))
                rows.append(row("scm", f"d{d}", f, 0.5 * np.log2(s) + noise * rng.normal(),
                                s, 1.0))
    return frame(rows)


def units(t, method, scale, mix):
    """Seed-averaged values per (dataset, fold), sorted, for one grid point."""
    part = t[(t["method"] == method) & (t["synthetic_scale"] == scale) & (t["mix_ratio"] == mix)]
    return part.groupby(["dataset", "fold"])["normalized_improvement_pct"].mean()


def direct_ci(values, n_units, n_boot=1000):
    """Percentile 95 % interval of the nanmean over resampled rows of ``values``."""
    idx = np.random.default_rng(BOOT_SEED).integers(0, n_units, size=(n_boot, n_units))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanpercentile(np.nanmean(values[idx], axis=1), [2.5, 97.5])


def test_grid_values_average_seeds_and_drop_failures_and_search():
    rows = [row("causalmixft", "d", 0, 1.0, 1.0, 0.5, seed=0, step=0),
            row("causalmixft", "d", 0, 3.0, 1.0, 0.5, seed=1, step=20),
            row("causalmixft", "d", 0, np.nan, 1.0, 0.5, seed=2)]
    rows[2]["status"] = "error"
    searched = row("causalmixft", "d", 0, 50.0, 1.0, 0.5, seed=3)
    searched["search"] = "causalmixft/d/fold0"
    values = grid_values(frame(rows + [searched]))
    assert len(values) == 1
    v = values.iloc[0]
    assert (v["value"], v["n_trials"], v["n_step0"]) == (2.0, 2, 1)


def test_summary_matches_direct_computation():
    t = table()
    t = t.drop(index=t.index[(t["method"] == "scm") & (t["dataset"] == "d1")
                             & (t["fold"] == 0)][:1])  # one missing unit
    extra = row("causalmixft", "d0", 0, 7.0, 2.0, 0.25, seed=1, step=0)  # a second seed
    t = pd.concat([t, frame([extra])], ignore_index=True)
    summary = scaling_summary(t)
    all_units = t.groupby(["dataset", "fold"]).size().index
    ref = units(t, "finetune", 0.0, 0.0).reindex(all_units).to_numpy()
    for method, scale, mix in [("causalmixft", 2.0, 0.25), ("causalmixft", 0.5, 0.75),
                               ("scm", 0.5, 1.0), ("finetune", 0.0, 0.0)]:
        got = summary[(summary["method"] == method) & (summary["synthetic_scale"] == scale)
                      & (summary["mix_ratio"] == mix)].iloc[0]
        y = units(t, method, scale, mix).reindex(all_units).to_numpy()
        finite = y[np.isfinite(y)]
        assert got["n"] == len(finite)
        assert got["mean"] == pytest.approx(finite.mean())
        assert got["median"] == pytest.approx(np.median(finite))
        assert [got["ci_low"], got["ci_high"]] == pytest.approx(direct_ci(y, len(y)))
        trials = t[(t["method"] == method) & (t["synthetic_scale"] == scale)
                   & (t["mix_ratio"] == mix)]
        assert got["n_trials"] == len(trials)
        assert got["share_step0"] == pytest.approx((trials["best_step"] == 0).mean())
        if method == "finetune":
            assert np.isnan(got["diff_vs_finetune"])
            continue
        diff = y - ref
        assert got["n_paired"] == np.isfinite(diff).sum()
        assert got["diff_vs_finetune"] == pytest.approx(np.nanmean(diff))
        assert [got["diff_ci_low"], got["diff_ci_high"]] == pytest.approx(
            direct_ci(diff, len(diff)))
    assert got["ci_low"] <= got["mean"] <= got["ci_high"]


def test_per_dataset_means_over_folds():
    t = table(n_folds=3)
    per = per_dataset_table(t)
    assert set(per["method"]) == {"causalmixft", "scm"}  # finetune has no scale grid
    ok = t[t["method"] != "finetune"]
    expected = ok.groupby(["method", "dataset", "synthetic_scale", "mix_ratio"])[
        "normalized_improvement_pct"].agg(["mean", "size"])
    got = per.set_index(["method", "dataset", "synthetic_scale", "mix_ratio"])
    assert np.allclose(got.loc[expected.index, "mean"], expected["mean"])
    assert (got.loc[expected.index, "n_folds"] == expected["size"]).all()


def test_best_mix_per_dataset_and_pooled():
    t = table(gain=lambda s, m, d: (m if d % 2 else -m) * 3, n_datasets=4, n_folds=3)
    best = best_mix_table(t, n_boot=200)
    assert list(best["dataset"]) == ["d0", "d1", "d2", "d3", "(all)"]
    cm = t[t["method"] == "causalmixft"]
    for dataset in ["d0", "d1", "(all)"]:
        part = cm if dataset == "(all)" else cm[cm["dataset"] == dataset]
        per_unit = part.groupby(["dataset", "fold", "mix_ratio"])[
            "normalized_improvement_pct"].mean().unstack("mix_ratio")
        y = per_unit.to_numpy()
        means = y.mean(axis=0)
        got = best[best["dataset"] == dataset].iloc[0]
        assert got["best_mix_ratio"] == MIXES[int(np.argmax(means))]
        assert [got["mean_mix_0.25"], got["mean_mix_0.75"]] == pytest.approx(means)
        idx = np.random.default_rng(BOOT_SEED).integers(0, len(y), size=(200, len(y)))
        draws = y[idx].mean(axis=1)
        winners = np.argmax(draws, axis=1)
        assert got["win_share_mix_0.25"] == pytest.approx(np.mean(winners == 0))
        assert got["win_share_mix_0.75"] == pytest.approx(np.mean(winners == 1))
        best_j = int(np.argmax(means))
        assert [got["ci_low"], got["ci_high"]] == pytest.approx(
            np.percentile(draws[:, best_j], [2.5, 97.5]))
    assert best.loc[best["dataset"] == "d1", "best_mix_ratio"].item() == 0.75
    assert best.loc[best["dataset"] == "d0", "best_mix_ratio"].item() == 0.25


def _curve_points(t, method, mix):
    part = t[(t["method"] == method) & (t["mix_ratio"] == mix)]
    wide = part.groupby(["dataset", "fold", "synthetic_scale"])[
        "normalized_improvement_pct"].mean().unstack("synthetic_scale")
    return wide


def _best_curve_fit(func, x, y, starts):
    """curve_fit on the raw points from several starts; the lowest residual sum of squares."""
    best, best_rss = None, np.inf
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for p0 in starts:
            try:
                params = curve_fit(func, x, y, p0=p0, maxfev=20000)[0]
            except RuntimeError:
                continue
            rss = np.sum((y - func(x, *params)) ** 2)
            if rss < best_rss:
                best, best_rss = params, rss
    return best


def test_laws_match_curve_fit_on_dataset_fold_points():
    sat = table(gain=lambda s, m, d: saturating(s, -1.0, 2.0, 1.5) + m, n_datasets=5,
                noise=0.3, seed=1)
    laws = scaling_laws(sat, n_boot=40)
    wide = _curve_points(sat, "causalmixft", 0.25)
    x = np.broadcast_to(wide.columns.to_numpy(float), wide.shape).ravel()
    y = wide.to_numpy().ravel()
    curve = laws[(laws["method"] == "causalmixft") & (laws["mix_ratio"] == 0.25)]
    starts = {"saturating": [[-1.0, 2.0, t] for t in (0.3, 1.0, 3.0, 10.0)],
              "power": [[0.0, 1.0, k] for k in (-2.0, -1.0, -0.5, 0.2, 0.5, 1.0, 2.0)]}
    for law, func in [("saturating", saturating), ("power", power_law)]:
        params = _best_curve_fit(func, x, y, starts[law])
        got = curve[curve["law"] == law]
        assert got["estimate"].to_numpy() == pytest.approx(params, rel=1e-4, abs=1e-6)
        rss = float(np.sum((y - func(x, *params)) ** 2))
        assert got["rss"].iloc[0] == pytest.approx(rss, rel=1e-6)
        assert got["aic"].iloc[0] == pytest.approx(len(y) * np.log(rss / len(y)) + 2 * 4)
        if law == "power":  # misspecified here (flat near k = 0); its bootstrap: next test
            continue
        # bootstrap: refit on the points of resampled dataset-folds
        idx = np.random.default_rng(BOOT_SEED).integers(0, len(wide), size=(40, len(wide)))
        draws = []
        for r in idx:
            yy = wide.to_numpy()[r].ravel()
            xx = np.broadcast_to(wide.columns.to_numpy(float), (len(r), wide.shape[1])).ravel()
            draws.append(_best_curve_fit(func, xx, yy, [params, *starts[law]]))
        draws = np.array(draws)
        assert int(got["n_failed"].iloc[0]) == 0
        assert got["ci_low"].to_numpy() == pytest.approx(
                np.percentile(draws, 2.5, axis=0), rel=1e-3, abs=1e-4)
        assert got["ci_high"].to_numpy() == pytest.approx(
            np.percentile(draws, 97.5, axis=0), rel=1e-3, abs=1e-4)
    aics = curve.groupby("law")["aic"].first()
    assert curve.loc[curve["best_aic"], "law"].unique().tolist() == [aics.idxmin()]
    assert curve["delta_aic"].min() == 0.0
    pooled = laws[(laws["method"] == "causalmixft") & laws["mix_ratio"].isna()]
    assert len(pooled) == 8  # 3 + 3 + 2 parameters, averaged over the mixes


def test_power_law_bootstrap_matches_direct_refits():
    t = table(gain=lambda s, m, d: power_law(s, 1.0, 2.0, 0.5), n_datasets=5, noise=0.3, seed=2)
    laws = scaling_laws(t, n_boot=30)
    got = laws[(laws["method"] == "causalmixft") & (laws["mix_ratio"] == 0.75)
               & (laws["law"] == "power")]
    wide = _curve_points(t, "causalmixft", 0.75)
    scales = wide.columns.to_numpy(float)
    starts = [[0.0, 1.0, k] for k in (-1.0, 0.3, 0.7, 1.5)]
    x = np.broadcast_to(scales, wide.shape).ravel()
    params = _best_curve_fit(power_law, x, wide.to_numpy().ravel(), starts)
    assert got["estimate"].to_numpy() == pytest.approx(params, rel=1e-4, abs=1e-6)
    idx = np.random.default_rng(BOOT_SEED).integers(0, len(wide), size=(30, len(wide)))
    draws = np.array([_best_curve_fit(power_law, np.broadcast_to(scales, (len(r), 4)).ravel(),
                                      wide.to_numpy()[r].ravel(), [params, *starts])
                      for r in idx])
    ok = np.abs(draws[:, 2]) < 5
    assert int(got["n_failed"].iloc[0]) == int((~ok).sum())
    assert [got["ci_low"].to_numpy(), got["ci_high"].to_numpy()] == pytest.approx(
        np.percentile(draws[ok], [2.5, 97.5], axis=0), rel=1e-3, abs=1e-4)


def test_failed_fits_are_counted():
    linear = table(gain=lambda s, m, d: 0.5 * s, n_datasets=4, noise=0.0)
    laws = scaling_laws(linear, n_boot=30)
    sat = laws[(laws["method"] == "causalmixft") & (laws["law"] == "saturating")
               & (laws["mix_ratio"] == 0.25)]
    assert not sat["converged"].any() and (sat["n_failed"] == 30).all()
    assert sat["estimate"].isna().all()
    power = laws[(laws["method"] == "causalmixft") & (laws["law"] == "power")
                 & (laws["mix_ratio"] == 0.25)].set_index("parameter")["estimate"]
    assert power.to_dict() == pytest.approx({"a": 0.0, "b": 0.5, "k": 1.0}, abs=1e-5)


def test_slope_test_against_linregress_and_direct_bootstrap():
    t = table(n_datasets=4, noise=2.0, seed=3)
    wide = _curve_points(t, "scm", 1.0)
    wide.iloc[0, 1] = np.nan  # a missing point
    test = slope_test(wide, n_boot=300)
    x = np.broadcast_to(np.log2(wide.columns.to_numpy(float)), wide.shape)
    y = wide.to_numpy()
    ok = np.isfinite(y)
    ref = stats.linregress(x[ok], y[ok])
    assert test["slope"] == pytest.approx(ref.slope)
    assert test["intercept"] == pytest.approx(ref.intercept)
    assert test["p_linregress"] == pytest.approx(ref.pvalue)
    idx = np.random.default_rng(BOOT_SEED).integers(0, len(y), size=(300, len(y)))
    slopes = np.array([np.polyfit(x[r][ok[r]], y[r][ok[r]], 1)[0] for r in idx])
    assert test["slope_ci"] == pytest.approx(np.percentile(slopes, [2.5, 97.5]))
    p = min(1.0, 2 * min(np.mean(slopes <= 0), np.mean(slopes >= 0)))
    assert test["p_value"] == pytest.approx(p)
    laws = scaling_laws(t, n_boot=300)
    got = laws[(laws["method"] == "scm") & (laws["parameter"] == "slope")].iloc[0]
    assert got["estimate"] == pytest.approx(stats.linregress(
        np.broadcast_to(np.log2(SCALES), (8, 4)).ravel(),
        _curve_points(t, "scm", 1.0).to_numpy().ravel()).slope)


def test_split_datasets_is_fixed_and_disjoint():
    names = [f"ds{i}" for i in range(15)][::-1]
    a, b = split_datasets(names + names[:3])
    ordered = sorted(names)
    perm = np.random.default_rng(SPLIT_SEED).permutation(15)
    assert a == sorted(ordered[i] for i in perm[:8])
    assert b == sorted(ordered[i] for i in perm[8:])
    assert split_datasets(names) == (a, b)


def test_split_half_claims_and_replicates():
    # causalmixft beats finetune on every dataset; its mix effect flips between the halves
    datasets = [f"d{i}" for i in range(6)]
    half_a, half_b = split_datasets(datasets)
    in_a = {int(d[1:]) for d in half_a}

    def gain(s, m, d):
        return 5.0 + np.log2(s) + (3 * m if d in in_a else -3 * m)

    t = table(gain=gain, n_datasets=6, noise=0.2, seed=4)
    split = split_half_table(t, n_boot=200)
    diff = split[(split["claim"] == "diff_vs_finetune") & (split["method"] == "causalmixft")]
    assert len(diff) == 8 and diff["replicates"].all() and diff["replicates_significant"].all()
    assert (diff["sign_a"] == 1).all()
    mix = split[(split["claim"] == "best_mix") & (split["method"] == "causalmixft")].iloc[0]
    assert (mix["choice_a"], mix["choice_b"]) == (0.75, 0.25) and not mix["replicates"]
    slope = split[(split["claim"] == "slope") & (split["method"] == "scm")].iloc[0]
    half = t[t["dataset"].isin(half_a)]
    ref = scaling_summary(half, n_boot=200)
    point = ref[(ref["method"] == "causalmixft") & (ref["synthetic_scale"] == 2.0)
                & (ref["mix_ratio"] == 0.25)].iloc[0]
    got = diff[(diff["method"] == "causalmixft") & (diff["synthetic_scale"] == 2.0)
               & (diff["mix_ratio"] == 0.25)].iloc[0]
    assert got["estimate_a"] == pytest.approx(point["diff_vs_finetune"])
    assert got["ci_low_a"] == pytest.approx(point["diff_ci_low"])
    wide = _curve_points(half, "scm", 1.0)
    assert slope["estimate_a"] == pytest.approx(slope_test(wide, 200)["slope"])
    assert slope["replicates"] == (np.sign(slope["estimate_a"]) == np.sign(slope["estimate_b"]))
    assert set(split["datasets_a"]) == {";".join(half_a)}


def test_write_outputs_deterministic_and_silent_without_scale_grid(tmp_path):
    t = table(n_datasets=4)
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        write_scaling_stats(t, Outputs(tmp_path / name))
    for stem in ["scaling_summary", "scaling_per_dataset", "scaling_laws", "best_mix",
                 "split_half"]:
        one, two = (pd.read_csv(tmp_path / n / f"{stem}.csv") for n in ("one", "two"))
        pd.testing.assert_frame_equal(one, two)
    assert (tmp_path / "one" / "scaling_per_dataset.png").stat().st_size > 1000
    flat = t[t["synthetic_scale"].isin([0.0, 1.0])]
    (tmp_path / "flat").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_scaling_stats(flat, Outputs(tmp_path / "flat"))
    assert list((tmp_path / "flat").iterdir()) == []


def test_other_score_column():
    t = table(n_datasets=3)
    t["improvement_accuracy"] = 2 * t["normalized_improvement_pct"]
    base = scaling_summary(t)
    other = scaling_summary(t, "improvement_accuracy")
    assert (other["score"] == "improvement_accuracy").all()
    assert np.allclose(other["mean"], 2 * base["mean"])


def test_study_size_is_fast():
    """4,000 trials: 15 datasets x 5 folds, 3 seeds, 4 methods with a scale grid."""
    t = table(n_datasets=15, n_folds=5, gain=lambda s, m, d: np.log2(s) * m)
    extra = t[t["method"] == "scm"]
    t = pd.concat([t] + [extra.assign(method=m) for m in ("ctgan", "tabebm")],
                  ignore_index=True)
    t = pd.concat([t.assign(seed=k) for k in range(3)], ignore_index=True)
    t = t.sample(n=4000, random_state=0)
    start = time.perf_counter()
    scaling_summary(t), per_dataset_table(t), best_mix_table(t)
    scaling_laws(t), split_half_table(t)
    assert time.perf_counter() - start < 60
