"""Inference options of the embedded PFN: where their defaults come from (the checkpoint
file), code-like integer columns, and the per-pass views of the ensemble."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from engine.core.errors import CausalMixError
from engine.models.pfn import (
    LEGACY_INFERENCE,
    build_pfn,
    bundled_checkpoint_path,
    code_like_columns,
    inference_options,
    load_weights,
)
from tests.test_pfn import _category_table as _table  # a nominal column stored as numbers

PINNED = Path(__file__).parents[1] / "sweeps" / "models" / "pfn_small-ba35b9f6.pt"


def test_options_come_from_the_call_then_the_checkpoint_then_legacy():
    meta = {"inference": {"categoricals": "mixed", "integer_levels": 10}}
    assert inference_options({}, {}) == LEGACY_INFERENCE
    chosen = inference_options(meta, {"integer_levels": None, "n_ensemble": 2})
    assert chosen["categoricals"] == "mixed" and chosen["integer_levels"] == 10
    assert chosen["n_ensemble"] == 2 and chosen["slots"] == "leading"
    with pytest.raises(CausalMixError, match="unknown option"):
        inference_options({}, {"temperature": 1.0})


def test_a_pinned_legacy_file_keeps_its_predictions():
    _, _, meta = load_weights(PINNED)
    assert "inference" not in meta  # shipped before the option existed
    x, y = _table(0, 200)
    xt, _ = _table(1, 300)
    pinned = build_pfn(checkpoint=str(PINNED)).fit(x, y).predict_proba(xt)
    legacy = build_pfn(**LEGACY_INFERENCE).fit(x, y).predict_proba(xt)  # bundled weights
    _, state_a, _ = load_weights(PINNED)
    _, state_b, _ = load_weights(bundled_checkpoint_path())
    if all(torch.equal(state_a[k], state_b[k]) for k in state_a):
        np.testing.assert_array_equal(pinned, legacy)
    model = build_pfn(checkpoint=str(PINNED))
    assert (model.categoricals, model.integer_levels) == ("target", 0)


def test_code_like_columns_are_equally_spaced_with_few_levels():
    rng = np.random.default_rng(0)
    codes = (rng.integers(0, 6, 100) - 2.5) / 1.7  # integer codes after standardisation
    counts = rng.poisson(30, 100).astype(float)  # many levels
    binary = rng.integers(0, 2, 100) * 3.0 - 1.0
    uneven = rng.choice([0.0, 1.0, 2.5], 100)  # three levels, not on one integer grid
    x = torch.tensor(np.column_stack([codes, counts, binary, uneven, rng.standard_normal(100)]),
                     dtype=torch.float32)
    assert code_like_columns(x, 10).tolist() == [True, False, True, False, False]
    assert code_like_columns(x, 4).tolist() == [False, False, True, False, False]


def test_integer_codes_are_read_as_levels_on_half_the_passes():
    x, y = _table(0, 200)
    xt, yt = _table(1, 400)
    auc = {}
    for k in (0, 10):
        model = build_pfn(integer_levels=k, categoricals="target")
        p = model.fit(x, y).predict_proba(xt)
        auc[k] = roc_auc_score(yt, p[:, 1])
        np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
        np.testing.assert_array_equal(p, model.fit(x, y).predict_proba(xt))  # deterministic
    assert auc[10] > auc[0] + 0.05
    single = build_pfn(integer_levels=10, n_ensemble=1).fit(x, y).predict_proba(xt)
    declared = build_pfn(integer_levels=0, n_ensemble=1, categoricals="target")
    declared.set_categorical([True, False, False])  # pass 0 reads the column as a category
    np.testing.assert_allclose(single, declared.fit(x, y).predict_proba(xt), atol=1e-6)


def assert_episode_trains(model, x: np.ndarray, y: np.ndarray, n_ctx: int = 80) -> None:
    """A training-mode episode of ``model`` (binary labels) gives gradients to its weights."""
    model.module.train()
    logits = model.forward_episode(torch.as_tensor(x[:n_ctx]), torch.as_tensor(y[:n_ctx]),
                                   torch.as_tensor(x[n_ctx:]), 2, None)
    logits.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.module.parameters())
    model.module.eval()


def test_integer_level_passes_stay_differentiable():
    assert_episode_trains(build_pfn(integer_levels=10), *_table(0, 120))


def test_cross_fitted_context_shares_never_use_the_rows_own_label():
    from engine.models.target_encoding import target_encode

    rng = np.random.default_rng(3)
    x = torch.tensor(rng.integers(0, 4, (60, 2)), dtype=torch.float32)
    y = torch.tensor(rng.integers(0, 2, 60))
    q = torch.tensor([[0.0, 1.0], [9.0, 2.0]])
    full_c, full_q = target_encode(x, y, q, [0], cls=1)
    cross_c, cross_q = target_encode(x, y, q, [0], cls=1, folds=5)
    torch.testing.assert_close(cross_q, full_q)  # queries see every context row's label
    torch.testing.assert_close(cross_c[:, 1], x[:, 1])  # columns not listed are untouched
    flipped = y.clone()
    flipped[7] = 1 - flipped[7]
    again, _ = target_encode(x, flipped, q, [0], cls=1, folds=5)
    assert again[7, 0] == cross_c[7, 0]  # row 7's own label never enters its share
    assert not torch.equal(target_encode(x, flipped, q, [0], cls=1)[0][7], full_c[7])
    np.testing.assert_array_equal(target_encode(x, y, q, [0], cls=1, folds=5)[0], cross_c)


def test_cross_fit_is_an_inference_option_that_changes_only_encoded_columns():
    x, y = _table(0, 200)
    xt, _ = _table(1, 300)
    numeric = {f: build_pfn(encode_fit=f).fit(x, y).predict_proba(xt)
               for f in ("in_sample", "cross_fit")}
    np.testing.assert_array_equal(numeric["in_sample"], numeric["cross_fit"])
    declared = {}
    for fit in ("in_sample", "cross_fit"):
        model = build_pfn(encode_fit=fit)
        model.set_categorical([True, False, False])
        declared[fit] = model.fit(x, y).predict_proba(xt)
        np.testing.assert_allclose(declared[fit].sum(1), 1.0, atol=1e-5)
    assert not np.allclose(declared["in_sample"], declared["cross_fit"])
    with pytest.raises(CausalMixError, match="encode_fit"):
        build_pfn(encode_fit="loo")
