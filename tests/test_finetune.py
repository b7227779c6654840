"""Episodic fine-tuning with real torch training on a real dataset."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data import load_dataset
from engine.data.preprocess import TablePreprocessor
from engine.folds.splits import make_fold
from engine.models import load_model
from engine.spec.finetune_config import FinetuneConfig
from engine.trials.finetune import EpisodeSampler, EvalSplit, finetune


def test_episodes_mix_real_and_synthetic_at_the_asked_ratio():
    Xr, yr = np.zeros((100, 3), np.float32), np.zeros(100, np.int64)
    Xs, ys = np.ones((300, 3), np.float32), np.ones(300, np.int64)
    sampler = EpisodeSampler(Xr, yr, Xs, ys, 0.25, 80, 0.25, seed=0)
    Xsup, ysup, Xq, yq = sampler.draw()
    assert len(Xsup) + len(Xq) == 80 and len(Xq) == 20
    assert np.concatenate([ysup, yq]).sum() == 20  # 25 % of 80 rows are synthetic
    only_syn = EpisodeSampler(Xr[:0], yr[:0], Xs, ys, 1.0, 80, 0.25, seed=0).draw()
    assert all(part.min() == 1 for part in (only_syn[1], only_syn[3]))


def test_finetuning_lowers_the_training_loss():
    ds = load_dataset("sklearn/digits")  # 10 classes: the pretrained model has room to learn
    y = ds.label_codes()
    s = make_fold(y, 0, 5, 0, 256, 0.25, 300)
    prep = TablePreprocessor().fit(ds.X.iloc[s.train])
    Xtr, ytr = prep.transform(ds.X.iloc[s.train]), y[s.train]
    Xva, yva = prep.transform(ds.X.iloc[s.val]), y[s.val]
    model = load_model("pfn")
    sampler = EpisodeSampler(Xtr, ytr, None, None, 0.0, 128, 0.3, seed=0)
    cfg = FinetuneConfig(steps=40, lr=1e-4, eval_every=20, patience=10, episode_rows=128)
    res = finetune(model, sampler, EvalSplit(Xtr, ytr, Xva, yva), EvalSplit(Xtr, ytr, Xva, yva),
                   10, cfg, seed=0)
    losses = np.array(res.train_losses)
    assert len(losses) == 40
    assert losses[-10:].mean() < 0.8 * losses[:10].mean()
    assert [e.step for e in res.evaluations] == [0, 20, 40]
    assert res.best_step in (0, 20, 40)


def test_early_stopping_keeps_the_best_validation_weights(fold):
    Xtr, ytr, Xva, yva, Xte, yte = fold
    model = load_model("pfn")
    sampler = EpisodeSampler(Xtr, ytr, None, None, 0.0, 64, 0.3, seed=1)
    cfg = FinetuneConfig(steps=40, lr=5e-3, eval_every=5, patience=2, episode_rows=64)
    res = finetune(model, sampler, EvalSplit(Xtr, ytr, Xva, yva), EvalSplit(Xtr, ytr, Xte, yte),
                   2, cfg, seed=1)
    best = max(res.evaluations, key=lambda e: (e.val["roc_auc"], -e.val["log_loss"]))
    assert res.best.val["roc_auc"] == best.val["roc_auc"]
    model.fit(Xtr, ytr, n_classes=2)
    from engine.trials.metrics import scores

    again = scores(yva, model.predict_proba(Xva))
    assert again["roc_auc"] == pytest.approx(res.best.val["roc_auc"], abs=1e-9)


def test_finetuning_is_deterministic(fold):
    Xtr, ytr, Xva, yva, Xte, yte = fold
    out = []
    for _ in range(2):
        model = load_model("pfn")
        sampler = EpisodeSampler(Xtr, ytr, None, None, 0.0, 64, 0.3, seed=5)
        cfg = FinetuneConfig(steps=10, lr=1e-4, eval_every=5, patience=3, episode_rows=64)
        res = finetune(model, sampler, EvalSplit(Xtr, ytr, Xva, yva),
                       EvalSplit(Xtr, ytr, Xte, yte), 2, cfg, seed=5)
        out.append((res.train_losses, [e.test for e in res.evaluations]))
    assert out[0] == out[1]


def test_permuted_episodes_with_l2sp_are_deterministic(fold):
    import torch

    Xtr, ytr, Xva, yva, Xte, yte = fold
    runs = []
    for l2sp in (0.0, 100.0, 100.0):
        model = load_model("pfn")
        sampler = EpisodeSampler(Xtr, ytr, None, None, 0.0, 64, 0.3, seed=2)
        cfg = FinetuneConfig(steps=10, lr=1e-3, eval_every=10, patience=3, episode_rows=64,
                             permute=True, l2sp=l2sp)
        res = finetune(model, sampler, EvalSplit(Xtr, ytr, Xva, yva),
                       EvalSplit(Xtr, ytr, Xva, yva), 2, cfg, seed=2)
        runs.append((res.train_losses, model.module.state_dict()))
    assert runs[1][0] == runs[2][0]
    for key, value in runs[1][1].items():
        torch.testing.assert_close(value, runs[2][1][key], rtol=0, atol=0)
    assert runs[0][0] != runs[1][0]  # the penalty changes the trajectory


def test_selection_by_log_loss_keeps_the_lowest_validation_log_loss(fold):
    Xtr, ytr, Xva, yva, Xte, yte = fold
    model = load_model("pfn")
    sampler = EpisodeSampler(Xtr, ytr, None, None, 0.0, 64, 0.3, seed=1)
    cfg = FinetuneConfig(steps=20, lr=5e-3, eval_every=5, patience=4, episode_rows=64,
                         select_by="log_loss")
    res = finetune(model, sampler, EvalSplit(Xtr, ytr, Xva, yva), EvalSplit(Xtr, ytr, Xte, yte),
                   2, cfg, seed=1)
    assert res.best.val["log_loss"] == min(e.val["log_loss"] for e in res.evaluations)
