"""Zero-shot quality and speed of the embedded PFN on local TabArena CSVs.

For every CSV (target = last column): ``--n-train`` stratified training rows, the rest
(capped at ``--max-test`` rows) for testing, ``--seeds`` splits; mean ROC-AUC (one-vs-rest
macro) of the PFN (no fine-tuning), LogisticRegression and RandomForest on the same rows.
Then the median predict_proba time for 1,000 rows with a 256-row context on one thread.

    python benchmarks/pfn_quality.py [--data-dir ../shared/datasets] [--checkpoint PATH]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from engine.models.pfn import build_pfn

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
]


def load_csv(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Features as a frame, target as integer codes (classes with < 4 rows dropped)."""
    df = pd.read_csv(path, low_memory=False)
    target = df.columns[-1]
    df = df[df[target].notna()]
    counts = df[target].value_counts()
    df = df[df[target].isin(counts[counts >= 4].index)].reset_index(drop=True)
    y = pd.factorize(df[target], sort=True)[0].astype(np.int64)
    return df.drop(columns=[target]), y


def preprocess(train: pd.DataFrame, test: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Ordinal-encode strings, median-impute and standardise, all fitted on training rows."""
    cols_tr, cols_te = [], []
    for name in train.columns:
        a, b = train[name], test[name]
        num_a = pd.to_numeric(a, errors="coerce")
        if num_a.notna().sum() >= 0.9 * a.notna().sum() and a.notna().any():
            va, vb = num_a.to_numpy(float), pd.to_numeric(b, errors="coerce").to_numpy(float)
        else:
            cats = sorted(a.dropna().astype(str).unique())
            va, vb = _codes(a, cats), _codes(b, cats)
        med = np.nanmedian(va) if np.isfinite(va).any() else 0.0
        va = np.where(np.isfinite(va), va, med)
        vb = np.where(np.isfinite(vb), vb, med)
        sd = va.std()
        if sd < 1e-12:
            continue  # constant on the training rows
        cols_tr.append((va - va.mean()) / sd)
        cols_te.append((vb - va.mean()) / sd)
    return (np.stack(cols_tr, 1).astype(np.float32), np.stack(cols_te, 1).astype(np.float32))


def _codes(col: pd.Series, cats: list[str]) -> np.ndarray:
    """Ordinal codes of ``col`` in ``cats``; missing or unseen values become NaN."""
    index = {c: float(i) for i, c in enumerate(cats)}
    return np.array([index.get(str(v), np.nan) if pd.notna(v) else np.nan for v in col])


def auc(y: np.ndarray, proba: np.ndarray, k: int) -> float:
    if k == 2:
        return float(roc_auc_score(y, proba[:, 1]))
    present = np.unique(y)
    p = proba[:, present]
    p = p / np.clip(p.sum(1, keepdims=True), 1e-12, None)
    if len(present) == 2:
        return float(roc_auc_score(y == present[1], p[:, 1]))
    return float(roc_auc_score(y, p, labels=present, multi_class="ovr", average="macro"))


def evaluate(path: Path, model, n_train: int, seeds: int, max_test: int) -> dict[str, float]:
    X, y = load_csv(path)
    k = int(y.max()) + 1
    scores: dict[str, list[float]] = {"pfn": [], "logreg": [], "rf": []}
    for seed in range(seeds):
        idx_tr, idx_te = train_test_split(
            np.arange(len(y)), train_size=n_train, stratify=y, random_state=seed
        )
        rng = np.random.default_rng(seed)
        if len(idx_te) > max_test:
            idx_te = rng.choice(idx_te, size=max_test, replace=False)
        x_tr, x_te = preprocess(X.iloc[idx_tr], X.iloc[idx_te])
        y_tr, y_te = y[idx_tr], y[idx_te]
        model.fit(x_tr, y_tr, n_classes=k)
        scores["pfn"].append(auc(y_te, model.predict_proba(x_te), k))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lr = LogisticRegression(max_iter=2000).fit(x_tr, y_tr)
        scores["logreg"].append(auc(y_te, _full_proba(lr, x_te, k), k))
        rf = RandomForestClassifier(n_estimators=300, random_state=seed, n_jobs=1)
        rf.fit(x_tr, y_tr)
        scores["rf"].append(auc(y_te, _full_proba(rf, x_te, k), k))
    out = {m: float(np.mean(v)) for m, v in scores.items()}
    out.update(rows=len(y), features=X.shape[1], classes=k)
    return out


def _full_proba(clf, x: np.ndarray, k: int) -> np.ndarray:
    """``predict_proba`` widened to all ``k`` classes (some may be absent from training)."""
    proba = np.zeros((len(x), k))
    proba[:, clf.classes_] = clf.predict_proba(x)
    return proba


def time_predict(model, n_features: int, repeats: int = 7) -> float:
    rng = np.random.default_rng(0)
    x_ctx = rng.standard_normal((256, n_features)).astype(np.float32)
    y_ctx = rng.integers(0, 2, 256)
    x_qry = rng.standard_normal((1000, n_features)).astype(np.float32)
    model.fit(x_ctx, y_ctx, n_classes=2)
    model.predict_proba(x_qry)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict_proba(x_qry)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    default_dir = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=default_dir.resolve())
    ap.add_argument("--checkpoint", default=None, help="PFN weights (default: bundled)")
    ap.add_argument("--n-train", type=int, default=256)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--max-test", type=int, default=2000)
    ap.add_argument("--datasets", nargs="*", default=DATASETS)
    ap.add_argument("--n-ensemble", type=int, default=4, help="permuted PFN passes averaged")
    ap.add_argument("--no-timing", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = build_pfn(checkpoint=args.checkpoint, n_ensemble=args.n_ensemble)

    header = (
        f"{'dataset':36s} {'rows':>6s} {'feat':>4s} {'cls':>3s} "
        f"{'PFN':>6s} {'LogReg':>6s} {'RF':>6s}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for name in args.datasets:
        path = args.data_dir / f"{name}.csv"
        if not path.is_file():
            print(f"{name:36s} (missing: {path}, skipped)")
            continue
        r = evaluate(path, model, args.n_train, args.seeds, args.max_test)
        rows.append(r)
        print(
            f"{name[:36]:36s} {r['rows']:6d} {r['features']:4d} {r['classes']:3d} "
            f"{r['pfn']:6.3f} {r['logreg']:6.3f} {r['rf']:6.3f}",
            flush=True,
        )
    if rows:
        means = {m: np.mean([r[m] for r in rows]) for m in ("pfn", "logreg", "rf")}
        wins = {m: sum(r["pfn"] > r[m] for r in rows) for m in ("logreg", "rf")}
        print("-" * len(header))
        print(
            f"{'mean (' + str(len(rows)) + ' datasets)':36s} {'':6s} {'':4s} {'':3s} "
            f"{means['pfn']:6.3f} {means['logreg']:6.3f} {means['rf']:6.3f}"
        )
        print(f"PFN beats LogReg on {wins['logreg']}/{len(rows)}, RF on {wins['rf']}/{len(rows)}")
    if not args.no_timing:
        for f in (20, 100):
            t = time_predict(model, f)
            print(
                f"predict_proba, 1000 rows, 256-row context, {f} features, 1 thread: "
                f"{t * 1000:.0f} ms (median of 7)"
            )


if __name__ == "__main__":
    main()
