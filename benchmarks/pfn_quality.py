"""Zero-shot quality and speed of the embedded PFN on local TabArena CSVs.

For every CSV (target = last column) and every ``--n-train`` (default 192):
stratified training rows, the rest (capped at ``--max-test`` rows) for testing, ``--seeds``
splits; mean ROC-AUC (one-vs-rest macro) of the PFN (no fine-tuning), LogisticRegression,
RandomForest and HistGradientBoosting on the same rows, with the PFN's wins/ties/losses.
Then the median time of fit + predict_proba for 2,000 rows with a 512-row context, 2 threads.

    python benchmarks/pfn_quality.py [--data-dir ../shared/datasets] [--checkpoint PATH]
    python benchmarks/pfn_quality.py --quick --checkpoint run/last_export.pt   # 256 rows, 3 seeds
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from fresh_tables import FRESH, load_fresh
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from engine.data.preprocess import TablePreprocessor
from engine.models.pfn import LEGACY_INFERENCE, build_pfn

DATASETS = [
    "blood-transfusion-service-center",
    "diabetes",
    "credit-g",
    "anneal",
    "Fitness_Club",
    "churn",
    "splice",
    "coil2000_insurance_policies",
    "Bank_Customer_Churn",
    "heloc",
    "jm1",
    "E-CommereShippingData",
    "online_shoppers_intention",
    "in_vehicle_coupon_recommendation",
    "polish_companies_bankruptcy",
    "adult",
]
HALF_SEED = 24  # fixed before any half was scored (the issue's number); never re-drawn


def model_options(pairs: list[str]) -> dict:
    """``--option KEY=VALUE`` pairs as pfn model options (values read as YAML scalars)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--option expects KEY=VALUE, got {pair!r}")
        out[key] = yaml.safe_load(value)
    return out


def halves(names: list[str] = DATASETS, seed: int = HALF_SEED) -> dict[str, list[str]]:
    """The selection and report halves of the benchmark tables: a seeded permutation of the
    sorted names, first half ``select`` (checkpoints, recipes and defaults are chosen on it),
    second half ``report`` (the model card's headline numbers come from it alone)."""
    order = [str(n) for n in np.random.default_rng(seed).permutation(sorted(names))]
    cut = len(order) // 2
    return {"select": sorted(order[:cut]), "report": sorted(order[cut:])}


def load_csv(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Features as a frame, target as integer codes (classes with < 4 rows dropped)."""
    df = pd.read_csv(path, low_memory=False)
    target = df.columns[-1]
    df = df[df[target].notna()]
    counts = df[target].value_counts()
    df = df[df[target].isin(counts[counts >= 4].index)].reset_index(drop=True)
    y = pd.factorize(df[target], sort=True)[0].astype(np.int64)
    return df.drop(columns=[target]), y


def preprocess(train: pd.DataFrame, test: pd.DataFrame,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sweep's own preprocessing (``TablePreprocessor``, fitted on the training rows):
    training rows, test rows, and which columns hold categories (the PFN is told, as in a
    sweep)."""
    prep = TablePreprocessor().fit(train)
    return prep.transform(train), prep.transform(test), prep.categorical_


def auc(y: np.ndarray, proba: np.ndarray, k: int) -> float:
    if k == 2:
        return float(roc_auc_score(y, proba[:, 1]))
    present = np.unique(y)
    p = proba[:, present]
    p = p / np.clip(p.sum(1, keepdims=True), 1e-12, None)
    if len(present) == 2:
        return float(roc_auc_score(y == present[1], p[:, 1]))
    return float(roc_auc_score(y, p, labels=present, multi_class="ovr", average="macro"))


BASELINES = ("logreg", "rf", "hgb")
PREPROCESSING = "sweep"  # part of the baseline cache key (earlier entries: the old encoding)


def _splits(y: np.ndarray, n_train: int, seeds: int, max_test: int):
    for seed in range(seeds):
        idx_tr, idx_te = train_test_split(
            np.arange(len(y)), train_size=n_train, stratify=y, random_state=seed
        )
        rng = np.random.default_rng(seed)
        if len(idx_te) > max_test:
            idx_te = rng.choice(idx_te, size=max_test, replace=False)
        yield seed, idx_tr, idx_te


def _baseline_scores(x_tr, y_tr, x_te, y_te, k: int, seed: int) -> dict[str, float]:
    """LogisticRegression, RandomForest (300 trees) and HistGradientBoosting (defaults)."""
    models = {
        "logreg": LogisticRegression(max_iter=2000),
        "rf": RandomForestClassifier(n_estimators=300, random_state=seed, n_jobs=1),
        "hgb": HistGradientBoostingClassifier(random_state=seed),
    }
    out = {}
    for name, clf in models.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(x_tr, y_tr)
        out[name] = auc(y_te, _full_proba(clf, x_te, k), k)
    return out


def evaluate(table_name: str, table: tuple[pd.DataFrame, np.ndarray], model, n_train: int,
             seeds: int, max_test: int, cache: dict | None = None) -> dict[str, float]:
    """Mean ROC-AUC over ``seeds`` splits of the PFN and the baselines; baseline scores are
    read from / written to ``cache`` (they do not depend on the checkpoint)."""
    X, y = table
    k = int(y.max()) + 1
    scores: dict[str, list[float]] = {m: [] for m in ("pfn", *BASELINES)}
    for seed, idx_tr, idx_te in _splits(y, n_train, seeds, max_test):
        x_tr, x_te, categorical = preprocess(X.iloc[idx_tr], X.iloc[idx_te])
        y_tr, y_te = y[idx_tr], y[idx_te]
        model.set_categorical(categorical)
        model.fit(x_tr, y_tr, n_classes=k)
        scores["pfn"].append(auc(y_te, model.predict_proba(x_te), k))
        key = f"{table_name}|{n_train}|{seed}|{max_test}|{PREPROCESSING}"
        base = None if cache is None else cache.get(key)
        if base is None:
            base = _baseline_scores(x_tr, y_tr, x_te, y_te, k, seed)
            if cache is not None:
                cache[key] = base
        for name in BASELINES:
            scores[name].append(base[name])
    out = {m: float(np.mean(v)) for m, v in scores.items()}
    out.update(rows=len(y), features=X.shape[1], classes=k)
    return out


def _full_proba(clf, x: np.ndarray, k: int) -> np.ndarray:
    """``predict_proba`` widened to all ``k`` classes (some may be absent from training)."""
    proba = np.zeros((len(x), k))
    proba[:, clf.classes_] = clf.predict_proba(x)
    return proba


def time_predict(model, n_features: int, n_ctx: int = 512, n_test: int = 2000,
                 repeats: int = 7, categorical: bool = False) -> tuple[float, float]:
    """Median wall seconds and median process CPU seconds (all threads) of ``fit`` +
    ``predict_proba`` for ``n_test`` rows with an ``n_ctx``-row context (``categorical``:
    every column a category of about a dozen levels). On a shared machine the CPU seconds
    divided by the thread count bound the wall time on idle cores."""
    rng = np.random.default_rng(0)
    x_ctx = rng.standard_normal((n_ctx, n_features)).astype(np.float32)
    y_ctx = rng.integers(0, 2, n_ctx)
    x_qry = rng.standard_normal((n_test, n_features)).astype(np.float32)
    if categorical:
        x_ctx, x_qry = np.floor(x_ctx * 2) / 2, np.floor(x_qry * 2) / 2  # about a dozen levels
    model.set_categorical(np.full(n_features, categorical))
    model.fit(x_ctx, y_ctx, n_classes=2).predict_proba(x_qry)  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        model.fit(x_ctx, y_ctx, n_classes=2).predict_proba(x_qry)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return float(np.median(wall)), float(np.median(cpu))


TIE = 0.002  # |mean ROC-AUC difference| at or below this counts as a tie


def _wtl(rows: list[dict], other: str) -> str:
    d = np.array([r["pfn"] - r[other] for r in rows])
    return f"{int((d > TIE).sum())}/{int((np.abs(d) <= TIE).sum())}/{int((d < -TIE).sum())}"


def report(rows: list[dict], n_train: int) -> dict[str, float]:
    """Print the mean row and wins/ties/losses of the PFN; return the means."""
    means = {m: float(np.mean([r[m] for r in rows])) for m in ("pfn", *BASELINES)}
    print(
        f"{'mean (' + str(len(rows)) + ' datasets)':36s} {'':6s} {'':4s} {'':3s} "
        + " ".join(f"{means[m]:6.3f}" for m in ("pfn", *BASELINES))
    )
    print("means to 4 decimals: " + "  ".join(f"{m} {means[m]:.4f}" for m in ("pfn", *BASELINES)))
    wtl = "  ".join(f"vs {m} {_wtl(rows, m)}" for m in BASELINES)
    print(f"n_train={n_train}: PFN wins/ties/losses (tie: |diff| <= {TIE}): {wtl}")
    return means


def _run_size(args, model, n_train: int, cache: dict) -> dict[str, float]:
    header = (f"{'dataset':36s} {'rows':>6s} {'feat':>4s} {'cls':>3s} "
              f"{'PFN':>6s} {'LogReg':>6s} {'RF':>6s} {'HistGB':>6s}")
    chosen = ", ".join(f"{k} {getattr(model, k)}" for k in LEGACY_INFERENCE)
    print(f"\n## {n_train} training rows, {args.seeds} seeds; {chosen}")
    print(header)
    print("-" * len(header))
    rows = []
    for name in args.datasets:
        path = args.data_dir / f"{name}.csv"
        if name in FRESH:
            table = load_fresh(name)
        elif path.is_file():
            table = load_csv(path)
        else:
            print(f"{name:36s} (missing: {path}, skipped)")
            continue
        r = evaluate(name, table, model, n_train, args.seeds, args.max_test, cache)
        rows.append(r)
        print(
            f"{name[:36]:36s} {r['rows']:6d} {r['features']:4d} {r['classes']:3d} "
            + " ".join(f"{r[m]:6.3f}" for m in ("pfn", *BASELINES)),
            flush=True,
        )
    print("-" * len(header))
    return report(rows, n_train) if rows else {}


def main() -> None:
    default_dir = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"
    cache_default = Path(__file__).resolve().parents[1] / "results" / "pfn_baselines.json"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=default_dir.resolve())
    ap.add_argument("--checkpoint", default=None, help="PFN weights (default: bundled)")
    ap.add_argument("--n-train", type=int, nargs="+", default=[192])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="256 rows and 3 seeds only")
    ap.add_argument("--max-test", type=int, default=2000)
    ap.add_argument("--datasets", nargs="*", default=None, help="CSV stems (default: --half)")
    ap.add_argument("--half", choices=["select", "report", "all", "fresh"], default="all",
                    help="which half of the tables (see halves(); 'all' = both; 'fresh' = "
                         "tables neither half holds, see fresh_tables.py)")
    ap.add_argument("--n-ensemble", type=int, default=None,
                    help="permuted PFN passes averaged (default: the checkpoint's)")
    ap.add_argument("--slots", default=None, choices=["leading", "spread"],
                    help="where the ensemble passes put the features")
    ap.add_argument("--transforms", default=None, choices=["none", "mixed"],
                    help="what the ensemble's passes see (pfn option 'transforms')")
    ap.add_argument("--categoricals", default=None, choices=["target", "codes", "mixed"],
                    help="how the PFN reads category columns (pfn option 'categoricals')")
    ap.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                    help="any other pfn option, e.g. --option integer_levels=10 (repeatable)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the PFN")
    ap.add_argument("--baseline-cache", type=Path, default=cache_default,
                    help="JSON file caching the baselines' scores (they ignore the checkpoint)")
    ap.add_argument("--no-timing", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.n_train, args.seeds = [192], 3
    if args.datasets is None:
        args.datasets = {"all": DATASETS, "fresh": list(FRESH), **halves()}[args.half]
    torch.set_num_threads(args.threads)
    extra = model_options(args.option)
    model = build_pfn(checkpoint=args.checkpoint, n_ensemble=args.n_ensemble, slots=args.slots,
                      transforms=args.transforms, categoricals=args.categoricals, **extra)
    cache = json.loads(args.baseline_cache.read_text()) if args.baseline_cache.is_file() else {}
    for n_train in args.n_train:
        _run_size(args, model, n_train, cache)
        args.baseline_cache.parent.mkdir(parents=True, exist_ok=True)
        args.baseline_cache.write_text(json.dumps(cache))
    if not args.no_timing:
        torch.set_num_threads(2)
        for f, cat in ((20, False), (100, False), (100, True)):
            wall, cpu = time_predict(model, f, categorical=cat)
            kind = "categorical" if cat else "numeric"
            print(f"fit + predict_proba, 2,000 rows, 512-row context, {f} {kind} features, "
                  f"n_ensemble {model.n_ensemble}, 2 threads: wall {wall * 1000:.0f} ms, "
                  f"CPU {cpu * 1000:.0f} ms over both threads (medians of 7)")


if __name__ == "__main__":
    main()
