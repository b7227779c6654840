"""Fidelity of the ``scm`` generator against ground truth, and of any generator on real data.

Ground-truth families (the truth graph includes the target node ``target``):

* ``nonlinear``: random DAG (expected degree 2, at most 4 parents), additive noise
  ``x = sum_k f_k(pa_k) + 0.5 * e`` with random ``f`` among tanh, sin, square, abs-linear;
* ``linear``: linear-Gaussian, weights +-U(0.5, 1.5), noise SD 0.5;
* ``hetero``: nonlinear mean with parent-dependent noise SD ``0.2 + 0.8 * sigmoid(w . pa)``;
* ``mixed``: ``nonlinear`` with about 30 % of the nodes turned into 3-4-level string
  categoricals as they are generated (their children see the category codes);
* ``mixed_hetero``: ``mixed`` with the ``hetero`` noise (parent-dependent SD, t(5) roots);
* ``bn:<name>``: a discrete Bayesian network from the bnlearn repository as bundled by
  ``pgmpy`` (``pgmpy.utils.get_example_model``, offline), forward-sampled.

Continuous families standardise every node; the target is a node with parents (the one with
most ancestors), cut into ``--classes`` quantile bins. Rows are split in half: the generator
sees the first half (train), and every metric compares its samples (as many rows as the train
half) with the held-out half:

* ``f1`` / ``shd``: skeleton F1 and structural Hamming distance (a reversal counts 1) of
  ``graph_`` against the truth graph;
* ``auc_rf``: ROC-AUC of a random forest (200 trees) telling synthetic from held-out rows,
  out-of-fold over 3 folds (0.5 = indistinguishable); ``auc_hgb`` the same from
  :func:`engine.fits.fidelity.fidelity_report`;
* ``tstr_ratio``: ROC-AUC on the held-out rows of a gradient-boosting classifier trained on the
  synthetic rows, divided by that of one trained on the real train half (TRTR);
* ``wass`` / ``tv`` / ``corr``: mean per-column Wasserstein (numeric, standardised) and
  total-variation (categorical) distance and mean absolute pairwise-correlation difference;
* ``rows_sha``: a hash of the synthetic rows (equal hashes: the same rows, e.g. before and after
  a change that should not alter them);
* ``fit_s`` / ``sample_s`` wall seconds; ``fit_cpu`` the fit's CPU seconds (process time, one
  thread: what the fit costs one core, also on a loaded machine).

``--real`` runs the 15 real datasets of ``../shared/datasets`` instead (no truth graph: the
distribution metrics only), each subsampled (stratified) to ``--real-rows`` train and as many
held-out rows. Tables print medians over ``--seeds`` per configuration; ``--jsonl`` saves all
rows (one JSON line per cell, appended as cells finish; ``--table FILE...`` prints the table
of saved files, ``--compare BEFORE AFTER`` a before/after table). Variants are named
parameter sets of the ``scm`` generator (``--variants``, see ``VARIANTS``; ``a+b`` merges
two); ``--seed-offset`` starts the seeds elsewhere (report on graphs other than the ones
settings were chosen on). Runs on one thread.

    python benchmarks/scm_fidelity.py --quick
    python benchmarks/scm_fidelity.py --families nonlinear --nodes 10,20 --rows 2000 --seeds 5
    python benchmarks/scm_fidelity.py --families bn:asia,bn:sachs,bn:child --rows 2000
    python benchmarks/scm_fidelity.py --real --generators scm,tableaugment
    python benchmarks/scm_fidelity.py --families nonlinear --nodes 10 --generators scm,ctgan,tabddpm
    python benchmarks/scm_fidelity.py --wide 100x2000 --variants default,pc --seeds 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from engine.generators import make_generator

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "quantile": {"numeric_transform": "quantile"},
    "standard": {"numeric_transform": "standard"},
    "dags1": {"n_dags": 1},
    "dags5": {"n_dags": 5},
    "pc": {"algorithms": ["pc"]},
    "pcfci": {"algorithms": ["pc", "fci"]},
    "fci": {"algorithms": ["fci"]},
    "smooth0": {"root_smoothing": 0.0},
    "linear": {"regressor": "linear", "classifier": "logistic"},
    "rf": {"regressor": "rf", "classifier": "rf"},
    "hgb": {"regressor": "hgb", "classifier": "hgb"},
    "auto": {"regressor": "auto", "classifier": "auto"},
    "depth2": {"depth": 2},
    "depth3": {"depth": 3},
    "boot0": {"bootstrap": 0},
    "gsq": {"indep_test": "gsq"},
    "fisherz": {"indep_test": "fisherz"},
    "autotest": {"indep_test": "auto"},
    "rcit": {"indep_test": "rcit"},
    "rmix": {"indep_test": "rcit_mixed"},
    "mixed_types": {"profile": "mixed_types"},
    "old": {"numeric_transform": "quantile", "regressor": "hgb", "classifier": "hgb",
            "indep_test": "fisherz"},
}
MECHS = ("tanh", "sin", "square", "abslin")


# ---------------------------------------------------------------------- ground truth
def random_dag(d: int, rng: np.random.Generator, degree: float = 2.0,
               max_parents: int = 4) -> nx.DiGraph:
    """A random DAG over ``0..d-1`` (a random order; each edge with prob. degree/(d-1))."""
    order = rng.permutation(d)
    g = nx.DiGraph()
    g.add_nodes_from(range(d))
    p = min(1.0, degree / max(d - 1, 1))
    for j in range(1, d):
        cands = [order[i] for i in range(j) if rng.random() < p]
        for i in cands[:max_parents]:
            g.add_edge(int(i), int(order[j]))
    return g


def _mech(kind: str, x: np.ndarray, a: float) -> np.ndarray:
    if kind == "tanh":
        return np.tanh(a * x) * 1.5
    if kind == "sin":
        return np.sin(a * x)
    if kind == "square":
        return 0.5 * (a * x) ** 2
    return a * np.abs(x) - 0.5 * x


def simulate(family: str, d: int, n: int, n_classes: int,
             seed: int) -> tuple[pd.DataFrame, pd.Series, nx.DiGraph]:
    """Rows ``(X, y)`` of a continuous family and the truth graph over column names."""
    rng = np.random.default_rng(seed)
    g = random_dag(d, rng)
    target = max((v for v in g if g.in_degree(v)), key=lambda v: (len(nx.ancestors(g, v)), -v),
                 default=int(d - 1))
    cat = set() if family not in ("mixed", "mixed_hetero") else {
        v for v in g if v != target and rng.random() < 0.3}
    hetero = family in ("hetero", "mixed_hetero")
    vals: dict[int, np.ndarray] = {}
    out: dict[int, Any] = {}
    for v in nx.topological_sort(g):
        pa = sorted(g.predecessors(v))
        if not pa:
            x = rng.normal(size=n) if not hetero else rng.standard_t(5, size=n)
        elif family == "linear":
            w = rng.uniform(0.5, 1.5, len(pa)) * rng.choice([-1, 1], len(pa))
            x = np.column_stack([vals[p] for p in pa]) @ w + 0.5 * rng.normal(size=n)
        else:
            x = sum(_mech(rng.choice(MECHS), vals[p], rng.uniform(0.7, 1.5)) for p in pa)
            if hetero:
                w = rng.normal(size=len(pa))
                sd = 0.2 + 0.8 / (1 + np.exp(-np.column_stack([vals[p] for p in pa]) @ w))
                x = x + sd * rng.normal(size=n)
            else:
                x = x + 0.5 * rng.normal(size=n)
        x = (x - x.mean()) / (x.std() or 1.0)
        if v == target or v in cat:
            k = n_classes if v == target else int(rng.integers(3, 5))
            codes = np.digitize(x, np.quantile(x, np.linspace(0, 1, k + 1)[1:-1]))
            vals[v] = (codes - codes.mean()) / (codes.std() or 1.0)
            out[v] = codes if v == target else np.array([f"l{c}" for c in codes], dtype=object)
        else:
            vals[v] = out[v] = x
    names = {v: ("target" if v == target else f"x{v}") for v in g}
    X = pd.DataFrame({names[v]: out[v] for v in sorted(g) if v != target})
    for c in X.columns:
        if X[c].dtype == object:
            X[c] = X[c].astype("str")
    return X, pd.Series(out[target], name="target"), nx.relabel_nodes(g, names)


def bayes_net(name: str, n: int, seed: int) -> tuple[pd.DataFrame, pd.Series, nx.DiGraph]:
    """Forward samples of a bundled bnlearn network; the target is the node with the largest
    Markov blanket (ties by name)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgmpy.utils import get_example_model

        model = get_example_model(name)
        df = model.simulate(n, seed=seed, show_progress=False)
    g = nx.DiGraph(list(model.edges()))
    g.add_nodes_from(model.nodes())
    blanket = {v: len(set(g.predecessors(v)) | set(g.successors(v))) for v in g}
    target = sorted(g, key=lambda v: (-blanket[v], str(v)))[0]
    X = pd.DataFrame({str(c): df[c].astype(str).astype("str") for c in df.columns
                      if c != target})
    y = df[target].astype(str).rename("target")
    return X, y.reset_index(drop=True), nx.relabel_nodes(g, {target: "target"} | {
        v: str(v) for v in g if v != target})


def real_dataset(path: Path, n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """A shuffled stratified subsample of ``2 * n`` rows of a shared CSV (target: last column)."""
    df = pd.read_csv(path, low_memory=False)
    y = df.iloc[:, -1]
    keep = y.notna().to_numpy()
    df, y = df.loc[keep].reset_index(drop=True), y.loc[keep].reset_index(drop=True)
    if len(df) > 2 * n:
        from sklearn.model_selection import train_test_split

        idx, _ = train_test_split(np.arange(len(df)), train_size=2 * n, random_state=seed,
                                  stratify=y.astype(str))
        df, y = df.iloc[idx].reset_index(drop=True), y.iloc[idx]
    else:  # files may be sorted (by id, date or label): shuffle before the half split
        order = np.random.default_rng(seed).permutation(len(df))
        df, y = df.iloc[order].reset_index(drop=True), y.iloc[order]
    X = df.iloc[:, :-1].copy()
    for c in X.columns:
        if X[c].dtype == object:
            X[c] = X[c].astype("str")
    return X, y.reset_index(drop=True).rename("target")


# ---------------------------------------------------------------------- metrics
def graph_scores(truth: nx.DiGraph, est: nx.DiGraph) -> tuple[float, float]:
    """Skeleton F1 and SHD (missing, extra or reversed edge: 1 each) over the truth's nodes."""
    nodes = set(truth)
    est_edges = {(str(u).replace(" (target)", ""), str(v).replace(" (target)", ""))
                 for u, v in est.edges}
    est_edges = {(u, v) for u, v in est_edges if u in nodes and v in nodes}
    t_sk = {frozenset(e) for e in truth.edges}
    e_sk = {frozenset(e) for e in est_edges}
    tp = len(t_sk & e_sk)
    f1 = 2 * tp / (len(t_sk) + len(e_sk)) if (t_sk or e_sk) else 1.0
    shd = len(t_sk ^ e_sk) + sum(1 for u, v in truth.edges if (v, u) in est_edges)
    return f1, float(shd)


def _codes(frames: list[pd.DataFrame]) -> list[np.ndarray]:
    """Numeric matrices (categoricals as shared integer codes, NaN kept) for sklearn."""
    cols = []
    for c in frames[0].columns:
        parts = [f[c] for f in frames]
        if all(pd.api.types.is_numeric_dtype(p.dtype) and not pd.api.types.is_bool_dtype(p.dtype)
               for p in parts):
            cols.append([p.to_numpy(dtype=float, na_value=np.nan) for p in parts])
            continue
        levels = {v: i for i, v in enumerate(sorted({str(v) for p in parts for v in p.dropna()}))}
        cols.append([np.array([levels.get(str(v), np.nan) if not pd.isna(v) else np.nan
                               for v in p], dtype=float) for p in parts])
    return [np.column_stack([c[k] for c in cols]) if cols else np.zeros((len(frames[k]), 0))
            for k in range(len(frames))]


def rf_two_sample_auc(real: pd.DataFrame, syn: pd.DataFrame, seed: int) -> float:
    """Out-of-fold ROC-AUC of a random forest separating synthetic from real rows."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    m = min(len(real), len(syn), 3000)
    rng = np.random.default_rng(seed)
    R, S = _codes([real.iloc[rng.permutation(len(real))[:m]],
                   syn.iloc[rng.permutation(len(syn))[:m]]])
    Z = np.nan_to_num(np.vstack([R, S]), nan=-9999.0)
    lab = np.r_[np.zeros(m), np.ones(m)]
    proba = np.zeros(len(lab))
    for tr, te in StratifiedKFold(3, shuffle=True, random_state=seed).split(Z, lab):
        rf = RandomForestClassifier(200, min_samples_leaf=2, n_jobs=1, random_state=seed)
        proba[te] = rf.fit(Z[tr], lab[tr]).predict_proba(Z[te])[:, 1]
    return float(roc_auc_score(lab, proba))


def tstr_ratio(X_tr: pd.DataFrame, y_tr: pd.Series, X_syn: pd.DataFrame, y_syn: pd.Series,
               X_te: pd.DataFrame, y_te: pd.Series, seed: int) -> float:
    """TSTR / TRTR ROC-AUC on the held-out rows (gradient boosting, one-vs-rest macro)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    A, B, C = (np.nan_to_num(M, nan=-9999.0) for M in _codes([X_tr, X_syn, X_te]))
    classes = sorted({str(v) for v in y_tr})
    yt, ys, ye = (np.array([str(v) for v in s]) for s in (y_tr, y_syn, y_te))

    def score(Z: np.ndarray, lab: np.ndarray) -> float:
        if len(set(lab)) < 2:
            return 0.5
        clf = HistGradientBoostingClassifier(max_iter=100, random_state=seed).fit(Z, lab)
        p = pd.DataFrame(clf.predict_proba(C), columns=clf.classes_).reindex(
            columns=classes, fill_value=0.0).to_numpy()
        if len(classes) == 2:
            return float(roc_auc_score(ye == classes[1], p[:, 1]))
        p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
        return float(roc_auc_score(ye, p, multi_class="ovr", labels=classes))

    return score(B, ys) / score(A, yt)


# ---------------------------------------------------------------------- one configuration
def evaluate(gen_name: str, params: dict[str, Any], X: pd.DataFrame, y: pd.Series,
             truth: nx.DiGraph | None, seed: int) -> dict[str, float]:
    """Fit on the first half, sample as many rows, score against the held-out half."""
    from engine.fits.fidelity import fidelity_report

    half = len(X) // 2
    X_tr, y_tr = X.iloc[:half].reset_index(drop=True), y.iloc[:half].reset_index(drop=True)
    X_te, y_te = X.iloc[half:].reset_index(drop=True), y.iloc[half:].reset_index(drop=True)
    gen = make_generator(gen_name, **params)
    t0, c0 = time.perf_counter(), time.process_time()
    gen.fit(X_tr, y_tr)
    t1, c1 = time.perf_counter(), time.process_time()
    X_syn, y_syn = gen.sample(half, seed=seed + 1)
    t2 = time.perf_counter()
    rep = fidelity_report(X_te, y_te, X_syn, y_syn, seed=seed)
    rows_hash = hashlib.sha256(pd.util.hash_pandas_object(
        X_syn.assign(__y__=pd.Series(y_syn)), index=True).to_numpy().tobytes()).hexdigest()
    real = X_te.assign(__y__=y_te.astype(str))
    syn = X_syn.assign(__y__=pd.Series(y_syn).astype(str))
    row = {"auc_rf": rf_two_sample_auc(real, syn, seed), "auc_hgb": rep["two_sample_auc"],
           "tstr_ratio": tstr_ratio(X_tr, y_tr, X_syn, y_syn, X_te, y_te, seed),
           "wass": rep["wasserstein_mean"], "tv": rep["tv_mean"],
           "corr": rep["corr_mean_abs_diff"], "fit_s": t1 - t0, "fit_cpu": c1 - c0,
           "sample_s": t2 - t1, "rows_sha": rows_hash[:16]}
    if truth is not None and hasattr(gen, "graph_"):  # scm; ctgan, tabddpm learn no graph
        row["f1"], row["shd"] = graph_scores(truth, gen.graph_)
    return row


def configurations(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every (data, variant, seed) cell of the run."""
    cells = []
    variants = [(g, v) for g in args.generators for v in args.variants]
    if args.real:
        for path in sorted(Path(args.shared).glob("*.csv")):
            if args.only and path.stem not in args.only.split(","):
                continue
            for s in range(args.seed_offset, args.seed_offset + args.seeds):
                cells += [{"data": path.stem, "path": path, "gen": g, "variant": v, "seed": s,
                           "rows": args.real_rows} for g, v in variants]
        return cells
    for fam in args.families:
        nodes = [0] if fam.startswith("bn:") else args.nodes
        for d in nodes:
            for n in args.rows:
                for s in range(args.seed_offset, args.seed_offset + args.seeds):
                    cells += [{"data": fam, "nodes": d, "rows": n, "gen": g, "variant": v,
                               "seed": s} for g, v in variants]
    return cells


def variant_params(name: str) -> dict[str, Any]:
    """``VARIANTS`` entries joined with ``+`` (later ones win), e.g. ``standard+auto``."""
    out: dict[str, Any] = {}
    for part in name.split("+"):
        out.update(VARIANTS[part])
    return out


def run_cell(cell: dict[str, Any], classes: int) -> dict[str, Any]:
    truth = None
    if "path" in cell:
        X, y = real_dataset(cell["path"], cell["rows"], cell["seed"])
    elif cell["data"].startswith("bn:"):
        X, y, truth = bayes_net(cell["data"][3:], cell["rows"], cell["seed"])
    else:
        X, y, truth = simulate(cell["data"], cell["nodes"], cell["rows"], classes,
                               1000 * cell["seed"] + cell["nodes"])
    params = variant_params(cell["variant"]) if cell["gen"] == "scm" else {}
    out = {k: v for k, v in cell.items() if k != "path"}
    out["nodes"] = len(truth) if truth is not None else X.shape[1] + 1
    try:
        out.update(evaluate(cell["gen"], params, X, y, truth, cell["seed"]))
    except Exception as exc:  # noqa: BLE001 - report and go on
        out["error"] = f"{type(exc).__name__}: {str(exc)[:120]}"
    return out


METRICS = ("f1", "shd", "auc_rf", "auc_hgb", "tstr_ratio", "wass", "tv", "corr", "fit_s",
           "fit_cpu", "sample_s")


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of medians per (data, nodes, rows, generator, variant)."""
    df = pd.DataFrame(rows)
    keys = ["data", "nodes", "rows", "gen", "variant"]
    lines = ["| " + " | ".join(keys + ["n"] + list(METRICS)) + " |",
             "|" + "---|" * (len(keys) + 1 + len(METRICS))]
    for key, grp in df.groupby(keys, sort=False):
        cells = [str(k) for k in key] + [str(len(grp))]
        for m in METRICS:
            vals = grp[m].dropna() if m in grp else pd.Series([], dtype=float)
            cells.append("–" if vals.empty else f"{statistics.median(vals):.3g}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> str:
    """Before/after table per (data, gen): medians over the seeds both runs have, the
    fold-to-fold spread (max - min over those seeds of the before run), whether every common
    seed gave the same synthetic rows, and a verdict per metric. ``worse`` = the after median
    is worse by more than the before spread (a lower TSTR/TRTR, a higher two-sample AUC);
    fit CPU seconds (wall seconds where a run lacks them) count as worse beyond 1.5x and 2 s."""
    b, a = pd.DataFrame(before), pd.DataFrame(after)
    lines = ["| data | gen | seeds | same rows | auc_rf before → after (spread) | "
             "tstr_ratio before → after (spread) | fit CPU s before → after | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for (data, gen), grp in a.groupby(["data", "gen"], sort=True):
        old = b[(b["data"] == data) & (b["gen"] == gen)]
        seeds = sorted(set(grp["seed"]) & set(old["seed"]))
        if not seeds:
            continue
        o = old[old["seed"].isin(seeds)].drop_duplicates("seed").set_index("seed").loc[seeds]
        n = grp[grp["seed"].isin(seeds)].drop_duplicates("seed").set_index("seed").loc[seeds]
        same = ("rows_sha" in o and "rows_sha" in n and o["rows_sha"].notna().all()
                and bool((o["rows_sha"] == n["rows_sha"]).all()))
        cells, verdict = [], []
        for m, sign in (("auc_rf", 1.0), ("tstr_ratio", -1.0)):
            mo, mn = float(o[m].median()), float(n[m].median())
            spread = float(o[m].max() - o[m].min())
            cells.append(f"{mo:.3f} → {mn:.3f} ({spread:.3f})")
            if not same and sign * (mn - mo) > spread:
                verdict.append(f"{m} worse" if len(seeds) > 1 else f"{m} lower/higher, 1 seed")
        col = "fit_cpu" if all("fit_cpu" in f and f["fit_cpu"].notna().all()
                               for f in (o, n)) else "fit_s"  # older runs: wall seconds
        co, cn = float(o[col].median()), float(n[col].median())
        cells.append(f"{co:.1f} → {cn:.1f}" + (" (wall)" if col == "fit_s" else ""))
        if cn > 1.5 * co and cn - co > 2.0:
            verdict.append("fit slower")
        lines.append(f"| {data} | {gen} | {len(seeds)} | {'yes' if same else 'no'} | "
                     + " | ".join(cells) + f" | {', '.join(verdict) or 'not worse'} |")
    return "\n".join(lines) + "\n\n" + paired_summary(b, a)


def paired_summary(b: pd.DataFrame, a: pd.DataFrame) -> str:
    """Per generator, the datasets as paired replicates: mean after − before of each metric
    (over the seeds both runs have), datasets worse / equal / better, and the two-sided
    Wilcoxon signed-rank p-value (scipy) over the datasets whose values differ. With one
    seed per dataset this is the check that can tell a systematic change from noise."""
    from scipy.stats import wilcoxon

    keys = ["data", "gen", "seed"]
    both = b.drop_duplicates(keys).merge(a.drop_duplicates(keys), on=keys,
                                         suffixes=("_b", "_a"))
    per = both.groupby(["gen", "data"])[["auc_rf_b", "auc_rf_a", "tstr_ratio_b",
                                         "tstr_ratio_a"]].mean().reset_index()
    lines = ["| gen | datasets | metric | mean after − before | worse / equal / better | "
             "Wilcoxon p |", "|---|---|---|---|---|---|"]
    for gen, g in per.groupby("gen", sort=True):
        for m, sign in (("auc_rf", 1.0), ("tstr_ratio", -1.0)):
            d = (g[f"{m}_a"] - g[f"{m}_b"]).round(6)
            worse, better = int((sign * d > 0).sum()), int((sign * d < 0).sum())
            p_value = wilcoxon(d[d != 0]).pvalue if (d != 0).sum() >= 2 else float("nan")
            lines.append(f"| {gen} | {len(g)} | {m} | {d.mean():+.4f} | {worse} / "
                         f"{len(d) - worse - better} / {better} | {p_value:.2f} |")
    return "\n".join(lines)


def wide_fit_times(features: int, rows: int, variants: list[str], repeats: int) -> str:
    """Fit time of ``scm`` variants on the mixed table of ``benchmarks/generators.py`` (70 %
    numerics with missing values, 20 % small integers, 10 % categoricals, 3 classes)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "gen_bench", Path(__file__).with_name("generators.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    lines = ["| variant | features | rows | n | fit s | fit CPU s | discovery CPU s | "
             "SCM-fit CPU s | test | depth |", "|---|---|---|---|---|---|---|---|---|---|"]
    for v in variants:
        got = []
        for r in range(repeats):
            X, y = mod.make_table(rows, features, r)
            gen = make_generator("scm", **variant_params(v))
            t0, c0 = time.perf_counter(), time.process_time()
            gen.fit(X, y)
            got.append((time.perf_counter() - t0, time.process_time() - c0,
                        gen.cpu_seconds_.get("discovery", float("nan")),
                        gen.cpu_seconds_.get("scm_fit", float("nan"))))
            print(json.dumps({"variant": v, "seed": r, "fit_s": got[-1][0],
                              "fit_cpu": got[-1][1], "discovery_cpu": got[-1][2],
                              "scm_fit_cpu": got[-1][3]}), flush=True)
        med = [statistics.median(g[k] for g in got) for k in range(4)]
        lines.append(f"| {v} | {features} | {rows} | {repeats} | "
                     + " | ".join(f"{m:.1f}" for m in med)
                     + f" | {gen.discovery_.indep_test} | {gen.discovery_.depth} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", default="nonlinear,linear,hetero,mixed")
    ap.add_argument("--nodes", default="10,20")
    ap.add_argument("--rows", default="2000")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--seed-offset", type=int, default=0,
                    help="first seed (seeds offset .. offset + seeds - 1): report on seeds "
                         "other than the ones settings were chosen on")
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--variants", default="default")
    ap.add_argument("--generators", default="scm")
    ap.add_argument("--real", action="store_true", help="the 15 shared real datasets")
    ap.add_argument("--real-rows", type=int, default=1000)
    ap.add_argument("--shared", default=str(SHARED), help="folder of the real CSV files")
    ap.add_argument("--only", default="", help="comma-separated real dataset names")
    ap.add_argument("--quick", action="store_true", help="a small smoke run (~1 min)")
    ap.add_argument("--wide", default="", metavar="FEATURESxROWS",
                    help="fit times of the variants on a mixed table of this size, e.g. 100x2000")
    ap.add_argument("--jsonl", default=None, help="append each cell as a JSON line to this file")
    ap.add_argument("--table", nargs="*", default=None,
                    help="print the median table of saved --jsonl files and exit")
    ap.add_argument("--compare", nargs=2, default=None, metavar=("BEFORE", "AFTER"),
                    help="before/after table of two saved --jsonl files and exit")
    args = ap.parse_args(argv)
    if args.compare:
        runs = [[json.loads(line) for line in open(f, encoding="utf-8")] for f in args.compare]
        print(compare(*[[r for r in rows if "error" not in r] for rows in runs]))
        return
    if args.table is not None:
        saved = [json.loads(line) for f in args.table for line in open(f, encoding="utf-8")]
        print(table([r for r in saved if "error" not in r]))
        return
    if args.wide:
        features, rows = (int(v) for v in args.wide.lower().split("x"))
        with threadpool_limits(limits=1):
            print(wide_fit_times(features, rows, args.variants.split(","), args.seeds))
        return
    if args.quick:
        args.families, args.nodes, args.rows, args.seeds = "nonlinear,bn:asia", "10", "600", 2
    args.families = [f for f in args.families.split(",") if f]
    args.nodes = [int(v) for v in args.nodes.split(",")]
    args.rows = [int(v) for v in args.rows.split(",")]
    args.variants = args.variants.split(",")
    args.generators = args.generators.split(",")
    rows = []
    with threadpool_limits(limits=1):
        for cell in configurations(args):
            rows.append(run_cell(cell, args.classes))
            short = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in rows[-1].items()}
            print(json.dumps(short, default=str), flush=True)
            if args.jsonl:  # row by row, so a stopped run keeps what it measured
                append_jsonl(args.jsonl, rows[-1])
    print(table([r for r in rows if "error" not in r]))


def append_jsonl(path: str, row: dict[str, Any]) -> None:
    """Append one result row as a JSON line (columns may differ between rows)."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, default=str) + "\n")


if __name__ == "__main__":
    main()
