"""``mixed``: the Mixed-Model generator, a weighted blend of other generators.

Each member generator is fitted on the same rows; ``sample(n, seed)`` splits ``n`` between
the members in proportion to their weights (largest-remainder rounding), draws each member's
share with its own seed derived from ``seed``, and shuffles the union (seeded). By default the
members are ``scm``, ``ctgan``, ``tabebm`` and ``tableaugment`` with equal weights.

A member whose optional extra is not installed (``MissingExtraError`` when it is made or
fitted) is dropped and its weight is shared among the remaining members in proportion to
theirs; ``members_`` lists the members kept, ``weights_`` their normalised weights,
``dropped_`` the reason for each member left out and ``member_fit_seconds_`` each kept
member's fitting time.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from engine.core.errors import CausalMixError, MissingExtraError
from engine.generators.base import Generator, register_generator
from engine.generators.tableaugment import proportional_counts

DEFAULT_MEMBERS = ("scm", "ctgan", "tabebm", "tableaugment")


@register_generator("mixed")
class MixedGenerator(Generator):
    """Blend of member generators. Parameters: ``members`` (list of generator names),
    ``weights`` (``{name: weight}``, default equal), ``params`` (``{name: {param: value}}``).

    In a sweep the members are the sweep's own fits of the same dataset-fold and settings
    (``use_fitted``), not refits."""

    OPTIONS = ("members", "weights", "params")
    VERSION = 3  # 2: members come from the sweep's fits, each fitted with its own seed;
    # 3: its scm member's defaults changed (scm VERSION 2), so cached mixed fits are stale

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - {"members", "weights", "params"}
        if unknown:
            raise CausalMixError(f"mixed: unknown parameters {sorted(unknown)}")
        members = list(params.get("members") or DEFAULT_MEMBERS)
        if "mixed" in members or len(set(members)) != len(members) or not members:
            raise CausalMixError("mixed: members must be distinct generators other than 'mixed'")
        weights = {m: 1.0 for m in members}
        given = dict(params.get("weights") or {})
        stray = set(given) - set(members)
        if stray:
            raise CausalMixError(f"mixed: weights for generators not in members: {sorted(stray)}")
        weights.update({k: float(v) for k, v in given.items()})
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise CausalMixError("mixed: weights must be >= 0 with a positive sum")
        member_params = dict(params.get("params") or {})
        stray = set(member_params) - set(members)
        if stray:
            raise CausalMixError(f"mixed: params for generators not in members: {sorted(stray)}")
        super().__init__(members=members, weights=weights, params=member_params)
        self.members_: list[str] = []
        self.weights_: dict[str, float] = {}
        self.dropped_: dict[str, str] = {}
        self.generators_: dict[str, Generator] = {}
        self.member_fit_seconds_: dict[str, float] = {}
        self._prefitted: dict[str, Generator] = {}
        self._predropped: dict[str, str] = {}

    def member_specs(self) -> list[tuple[str, dict[str, Any]]]:
        """(generator, parameters) of every member with a positive weight."""
        return [(m, dict(self.params["params"].get(m, {}))) for m in self.params["members"]
                if self.params["weights"][m] > 0]

    def use_fitted(self, fitted: dict[str, Generator], dropped: dict[str, str]) -> None:
        """Members already fitted on the same rows (and members left out, with the reason);
        ``fit`` then only blends them."""
        self._prefitted, self._predropped = dict(fitted), dict(dropped)

    def _fit(self, X: pd.DataFrame, y: pd.Series) -> None:
        from engine.generators import make_generator

        self.generators_, self.dropped_, self.member_fit_seconds_ = {}, {}, {}
        for name in self.params["members"]:
            if self.params["weights"][name] == 0:
                self.dropped_[name] = "weight 0"
                continue
            if name in self._predropped:
                self.dropped_[name] = self._predropped[name]
                continue
            if name in self._prefitted:
                self.generators_[name] = self._prefitted[name]
                self.member_fit_seconds_[name] = 0.0
                continue
            start = time.perf_counter()
            try:
                gen = make_generator(name, **dict(self.params["params"].get(name, {})))
                gen.fit(X, y)
            except MissingExtraError as err:
                self.dropped_[name] = str(err)
                continue
            self.generators_[name] = gen
            self.member_fit_seconds_[name] = time.perf_counter() - start
        if not self.generators_:
            raise CausalMixError(f"mixed: no member generator could be used ({self.dropped_})")
        self.members_ = list(self.generators_)
        total = sum(self.params["weights"][m] for m in self.members_)
        self.weights_ = {m: self.params["weights"][m] / total for m in self.members_}

    def _sample(self, n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
        return self._blend(n, seed, None)

    def _sample_class(self, n: int, seed: int, label: Any) -> tuple[pd.DataFrame, pd.Series]:
        """Each member's share of ``n`` rows of class ``label`` (its ``sample_class``)."""
        return self._blend(n, seed, (label,))

    def _blend(self, n: int, seed: int, label: tuple[Any] | None,
               ) -> tuple[pd.DataFrame, pd.Series]:
        """The members' shares of ``n`` rows (of one class where ``label`` names it)."""
        counts = proportional_counts(n, np.array([self.weights_[m] for m in self.members_]))
        seeds = np.random.SeedSequence(int(seed)).generate_state(len(self.members_))
        Xs, ys = [], []
        for name, m, s in zip(self.members_, counts, seeds):
            if m == 0:
                continue
            gen = self.generators_[name]
            if label is None:
                X_m, y_m = gen.sample(int(m), int(s))
            else:
                X_m, y_m = gen.sample_class(int(m), int(s), label[0])
            Xs.append(X_m)
            ys.append(pd.Series(np.asarray(y_m, dtype=object)))
        X_all = pd.concat(Xs, ignore_index=True)
        y_all = pd.concat(ys, ignore_index=True)
        order = np.random.default_rng(int(seed)).permutation(len(X_all))
        return X_all.iloc[order].reset_index(drop=True), y_all.iloc[order].reset_index(drop=True)
