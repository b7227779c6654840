"""Real classification tables that neither benchmark half holds, from installed packages.

The third group of ``benchmarks/pfn_quality.py`` (``--half fresh``): a candidate chosen on the
selection half is checked here before the report half, which earlier rounds have already
seen. The tables ship with statsmodels and scikit-learn, so nothing downloads. Integer-coded
columns stay integers, as in a CSV; regression targets are cut at a fixed, stated point.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd


def _fair() -> tuple[pd.DataFrame, pd.Series]:
    """Extramarital affairs survey (6,366 rows): any affair time reported."""
    from statsmodels.datasets import fair

    df = fair.load_pandas().data
    return df.drop(columns=["affairs"]), (df["affairs"] > 0).astype(int)


def _anes96() -> tuple[pd.DataFrame, pd.Series]:
    """1996 US election survey (944 rows): voted for Dole rather than Clinton."""
    from statsmodels.datasets import anes96

    df = anes96.load_pandas().data
    return df.drop(columns=["vote", "logpopul"]), df["vote"].astype(int)


def _randhie() -> tuple[pd.DataFrame, pd.Series]:
    """RAND health insurance experiment (20,190 rows): at least one doctor visit."""
    from statsmodels.datasets import randhie

    df = randhie.load_pandas().data
    return df.drop(columns=["mdvis"]), (df["mdvis"] > 0).astype(int)


def _star98() -> tuple[pd.DataFrame, pd.Series]:
    """California school districts (303 rows): more than half the pupils above the national
    maths median."""
    from statsmodels.datasets import star98

    df = star98.load_pandas().data
    share = df["NABOVE"] / (df["NABOVE"] + df["NBELOW"])
    return df.drop(columns=["NABOVE", "NBELOW"]), (share > 0.5).astype(int)


def _sklearn(name: str) -> Callable[[], tuple[pd.DataFrame, pd.Series]]:
    def load() -> tuple[pd.DataFrame, pd.Series]:
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{name}")(as_frame=True)
        return bunch.data, bunch.target.astype(int)

    load.__doc__ = f"scikit-learn's bundled {name} table."
    return load


FRESH: dict[str, Callable[[], tuple[pd.DataFrame, pd.Series]]] = {
    "sm_fair": _fair,
    "sm_anes96": _anes96,
    "sm_randhie": _randhie,
    "sm_star98": _star98,
    "sk_breast_cancer": _sklearn("breast_cancer"),
    "sk_digits": _sklearn("digits"),
}


def load_fresh(name: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Features as a frame and the class as integer codes ``0..K-1``."""
    X, y = FRESH[name]()
    return X.reset_index(drop=True), pd.factorize(y, sort=True)[0].astype(np.int64)
