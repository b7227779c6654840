"""Feature relevance on the context rows, and the PFN passes that see only relevant columns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from engine.core.errors import CausalMixError
from engine.models.feature_relevance import mutual_information, rank_bins, relevant_features
from engine.models.pfn import build_pfn
from tests.test_pfn_inference import assert_episode_trains


def _noisy_table(seed: int, n: int, n_noise: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Three informative columns (one through a threshold interaction), then pure noise and an
    ID-like column of unique values."""
    rng = np.random.default_rng(seed)
    a, b, c = rng.standard_normal((3, n))
    logit = 1.5 * a + np.where(b > 0.5, 2.0, -0.5) * (c > 0) + 0.8 * c
    y = (logit + 0.5 * rng.standard_normal(n) > 0.3).astype(np.int64)
    ident = rng.permutation(n).astype(float)
    noise = rng.standard_normal((n, n_noise))
    x = np.column_stack([a, b, c, noise, ident])
    return ((x - x.mean(0)) / x.std(0)).astype(np.float32), y


def test_rank_bins_keep_ties_together_and_use_every_bin():
    x = torch.tensor([[0.0, 1.0], [0.0, 2.0], [1.0, 3.0], [1.0, 4.0]] * 8)
    b = rank_bins(x, bins=4)
    assert torch.equal(b[:, 0][x[:, 0] == 0], b[:, 0][x[:, 0] == 0][:1].expand(16))
    assert len(torch.unique(b[:, 0])) == 2 and len(torch.unique(b[:, 1])) == 4


def test_mutual_information_is_zero_for_independence_and_log2_for_a_copy():
    y = torch.tensor([0, 1] * 50)
    bins = torch.stack([y, torch.tensor([0, 0, 1, 1] * 25)], dim=1)
    mi = mutual_information(bins, y[None], 2, 2)[0]
    assert mi[0] == pytest.approx(np.log(2), abs=1e-5)
    assert mi[1] == pytest.approx(0.0, abs=1e-6)


def test_informative_columns_are_kept_and_noise_is_dropped():
    x, y = _noisy_table(0, 192)
    keep = relevant_features(torch.as_tensor(x), torch.as_tensor(y), 2)
    assert keep[:3].all()
    assert int(keep[3:].sum()) <= 2  # about one in nine noise columns beats 8 shuffles by luck
    again = relevant_features(torch.as_tensor(x), torch.as_tensor(y), 2)
    assert torch.equal(keep, again)
    pure = torch.randn(64, 5, generator=torch.Generator().manual_seed(0))
    lone = relevant_features(pure, torch.tensor([0, 1] * 32), 2)
    assert int(lone.sum()) >= 1  # the most informative column stays when none beats the null


def test_relevant_passes_help_on_a_table_with_noise_columns():
    x, y = _noisy_table(1, 192)
    xt, yt = _noisy_table(2, 1000)
    auc = {}
    for select in ("none", "relevant"):
        model = build_pfn(feature_select=select)
        p = model.fit(x, y).predict_proba(xt)
        np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
        np.testing.assert_array_equal(p, model.fit(x, y).predict_proba(xt))  # deterministic
        auc[select] = roc_auc_score(yt, p[:, 1])
    assert auc["relevant"] > auc["none"] + 0.005


@pytest.mark.parametrize("slots", ["leading", "spread"])
def test_odd_passes_see_the_kept_columns_in_their_relative_order(slots):
    model = build_pfn(feature_select="relevant", slots=slots)
    members = model._members(6, 2)
    keep = torch.tensor([True, False, True, True, False, False])
    cols, placed = model._pass_columns(0, members[0][0], keep)
    assert cols.tolist() == list(range(6)) and torch.equal(placed, members[0][0])
    full = members[1][0]
    cols, placed = model._pass_columns(1, full, keep)
    assert cols.tolist() == [0, 2, 3]
    assert torch.equal(torch.argsort(placed), torch.argsort(full[cols]))
    if slots == "leading":
        assert sorted(placed.tolist()) == [0, 1, 2]
    else:
        assert torch.equal(placed, full[cols])


def test_relevant_passes_stay_differentiable_and_bad_values_fail_in_one_line():
    assert_episode_trains(build_pfn(feature_select="relevant"), *_noisy_table(3, 120))
    with pytest.raises(CausalMixError, match="feature_select must be one of"):
        build_pfn(feature_select="mi")
