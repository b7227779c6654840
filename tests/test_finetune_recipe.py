"""The fine-tuning recipe knobs: min_delta (a margin to replace the kept step), WiSE-FT weight
interpolation, and their place in the trial keys; real torch training on a real dataset."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from engine.models import load_model
from engine.spec.finetune_config import NEUTRAL, FinetuneConfig, key_fields
from engine.trials.finetune import EpisodeSampler, EvalSplit, evaluate, finetune, interpolate


def _run(fold, lr=5e-3, **cfg):
    Xtr, ytr, Xva, yva, Xte, yte = fold
    model = load_model("pfn")
    sampler = EpisodeSampler(Xtr, ytr, None, None, 0.0, 64, 0.3, seed=1)
    config = FinetuneConfig(steps=20, lr=lr, eval_every=5, patience=4, episode_rows=64, **cfg)
    res = finetune(model, sampler, EvalSplit(Xtr, ytr, Xva, yva), EvalSplit(Xtr, ytr, Xte, yte),
                   2, config, seed=1)
    return model, res


def test_min_delta_replaces_the_kept_step_only_past_the_margin(fold):
    _, plain = _run(fold, select_by="log_loss")
    margin = 0.02
    _, guarded = _run(fold, select_by="log_loss", min_delta=margin)
    assert plain.train_losses == guarded.train_losses[:len(plain.train_losses)] or \
        guarded.train_losses == plain.train_losses[:len(guarded.train_losses)]
    best, kept = guarded.evaluations[0], guarded.best
    for ev in guarded.evaluations[1:]:  # replay: each replacement cleared the margin
        if ev.val["log_loss"] < best.val["log_loss"] - margin:
            best = ev
    assert kept.step == best.step
    _, never = _run(fold, min_delta=1.0)  # no ROC-AUC can rise by more than 1
    assert never.best_step == 0 and never.final is None


def test_wise_keeps_the_interpolated_weights_and_scores_them(fold):
    Xtr, ytr, Xva, yva, Xte, yte = fold
    pretrained = {k: v.clone() for k, v in load_model("pfn").module.state_dict().items()}
    # zero-shot validation ROC-AUC is 1 on this fold: log loss selects a later step
    full_model, full = _run(fold, lr=1e-4, select_by="log_loss")
    half_model, half = _run(fold, lr=1e-4, select_by="log_loss", wise=0.5)
    assert full.best_step == half.best_step > 0
    assert full.final is None and half.final is not None
    expected = interpolate(pretrained, full_model.module.state_dict(), 0.5)
    for name, value in half_model.module.state_dict().items():
        torch.testing.assert_close(value, expected[name], rtol=1e-6, atol=1e-7)
    again = evaluate(half_model, EvalSplit(Xtr, ytr, Xte, yte), 2)
    assert half.kept.test["roc_auc"] == pytest.approx(again["roc_auc"], abs=1e-12)
    assert half.kept.step == half.best_step and half.best.test == full.best.test


def test_new_knobs_enter_the_trial_key_only_when_set():
    plain = key_fields(FinetuneConfig())
    assert not set(NEUTRAL) & set(plain)  # keys of trials made before the knobs existed
    assert key_fields(FinetuneConfig(wise=0.5))["wise"] == 0.5
    assert key_fields(FinetuneConfig(min_delta=0.01))["min_delta"] == 0.01
    assert set(dataclasses.asdict(FinetuneConfig())) - set(plain) == set(NEUTRAL)


@pytest.mark.parametrize("field,value", [("wise", 1.5), ("wise", -0.1), ("min_delta", -1)])
def test_out_of_range_knobs_are_refused_naming_the_field(field, value):
    from engine.core.errors import SpecError
    from engine.spec.sweep_file import parse_spec

    raw = {"name": "t", "datasets": ["sklearn/iris"], "methods": ["finetune"],
           "finetune": {field: value}}
    with pytest.raises(SpecError, match=f"finetune.{field}"):
        parse_spec(raw, source="t.yaml")
