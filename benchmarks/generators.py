"""Fit and sample time of every generator as the table grows (features x rows).

The script makes its own mixed tables (numerics with a few missing values, small integers,
string categoricals, 3 classes driven by a random linear score), then, per generator and grid
cell, times ``fit`` and ``sample(n_rows)`` over ``--repeats`` runs and prints medians. For
``scm`` the causal-discovery time (``discovery_seconds_``) and the SCM-fitting time
(``fit_seconds_``) are reported separately. Everything runs on one thread.

    python benchmarks/generators.py                        # full grid (slow)
    python benchmarks/generators.py --features 10,20 --rows 128,512 --repeats 3 \\
        --generators tableaugment,tabebm,scm --params '{"tabebm": {"steps": 50}}'
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from engine.core.errors import MissingExtraError
from engine.generators import generator_names, make_generator


def make_table(n_rows: int, n_features: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """A mixed table: 70% numeric (5% missing), 20% small ints, 10% string categoricals."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n_rows, 4))
    n_cat = max(1, n_features // 10)
    n_int = max(1, n_features // 5)
    n_num = n_features - n_cat - n_int
    cols: dict[str, Any] = {}
    for j in range(n_num):
        v = latent @ rng.normal(size=4) + 0.5 * rng.normal(size=n_rows)
        v[rng.random(n_rows) < 0.05] = np.nan
        cols[f"num{j}"] = v
    for j in range(n_int):
        cols[f"int{j}"] = np.clip(np.rint(2 + latent[:, j % 4] * 1.5), 0, 5).astype(np.int64)
    for j in range(n_cat):
        codes = np.digitize(latent[:, (j + 1) % 4] + 0.3 * rng.normal(size=n_rows), [-0.5, 0.5])
        cols[f"cat{j}"] = pd.Series(np.array(["lo", "mid", "hi"])[codes], dtype="str")
    score = latent @ rng.normal(size=4)
    y = pd.Series(np.digitize(score, np.quantile(score, [0.4, 0.75])), name="target")
    return pd.DataFrame(cols), y


def time_one(name: str, params: dict[str, Any], X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    gen = make_generator(name, **params)
    start = time.perf_counter()
    gen.fit(X, y)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    gen.sample(len(X), seed=1)
    out = {"fit_s": fit_s, "sample_s": time.perf_counter() - start}
    scm = getattr(gen, "generators_", {}).get("scm", gen)  # the scm member of ``mixed``
    if hasattr(scm, "discovery_seconds_"):
        out["discovery_s"] = float(scm.discovery_seconds_)
        out["scm_fit_s"] = float(getattr(scm, "fit_seconds_", float("nan")))
    return out


def main(argv: list[str] | None = None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generators", default="", help="comma list (default: all registered)")
    ap.add_argument("--features", default="10,20,40,60")
    ap.add_argument("--rows", default="128,512,2048")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--params", default="{}", help='JSON {"generator": {param: value}}')
    ap.add_argument("--csv", default="", help="also write the table to this CSV file")
    args = ap.parse_args(argv)

    names = [g for g in args.generators.split(",") if g] or generator_names()
    feats = [int(v) for v in args.features.split(",")]
    rows = [int(v) for v in args.rows.split(",")]
    params = json.loads(args.params)
    torch.set_num_threads(1)
    records = []
    with threadpool_limits(limits=1):
        for name in names:
            for d in feats:
                for n in rows:
                    runs = []
                    try:
                        for r in range(args.repeats):
                            X, y = make_table(n, d, seed=r)
                            runs.append(time_one(name, params.get(name, {}), X, y))
                    except MissingExtraError as err:
                        print(f"skip {name}: {err}")
                        break
                    rec: dict[str, Any] = {"generator": name, "features": d, "rows": n}
                    for key in runs[0]:
                        rec[key] = statistics.median(run[key] for run in runs)
                    records.append(rec)
                    print(_line(rec), flush=True)
                else:
                    continue
                break
    table = pd.DataFrame(records)
    print()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.csv:
        table.to_csv(args.csv, index=False)
    return table


def _line(rec: dict[str, Any]) -> str:
    parts = [f"{rec['generator']:>12} d={rec['features']:<3} n={rec['rows']:<5}"]
    parts += [f"{k}={v:.3f}" for k, v in rec.items() if k.endswith("_s")]
    return "  ".join(parts)


if __name__ == "__main__":
    main()
