"""The Mitra backend on a small random Tab2D checkpoint: predictions, determinism, fine-tuning,
limits, weight sources (local files, hub cache) and a sweep on a real local Ray."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_wine

pytest.importorskip(
    "autogluon.tabular.models.mitra._internal.models.tab2d", exc_type=ImportError,
    reason="the Mitra model needs autogluon.tabular (pip install 'causalmix-sweep[mitra]')",
)

from engine.core.errors import CausalMixError, DataError  # noqa: E402
from engine.execution.orchestrate import run_sweep  # noqa: E402
from engine.models import load_model  # noqa: E402
from engine.models.mitra import (  # noqa: E402
    CONFIG_FILE,
    CONFIG_METADATA_KEY,
    WEIGHTS_FILE,
    MitraClassifier,
    build_mitra,
    read_checkpoint,
)
from engine.models.mitra_checkpoint import make_random_mitra_checkpoint  # noqa: E402
from engine.spec.finetune_config import FinetuneConfig  # noqa: E402
from engine.spec.sweep_file import parse_spec  # noqa: E402
from engine.trials.finetune import EpisodeSampler, EvalSplit, finetune
from tests.conftest import small_spec  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread, as in a trial (2 threads on a shared 2-core box spin and crawl)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return make_random_mitra_checkpoint(tmp_path_factory.mktemp("mitra") / "random", seed=0)


def _standardise(X: np.ndarray) -> np.ndarray:
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32)


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(X))
    return _standardise(X)[order], y[order]


def test_zero_shot_probabilities_have_the_right_shape(ckpt, cancer):
    model = load_model("mitra", checkpoint=str(ckpt))
    assert isinstance(model, MitraClassifier)
    assert (model.max_classes, model.max_features, model.max_context) == (10, 500, 10000)
    X, y = cancer
    proba = model.fit(X[:64], y[:64]).predict_proba(X[64:150])
    assert proba.shape == (86, 2)
    assert np.isfinite(proba).all() and np.allclose(proba.sum(1), 1.0, atol=1e-5)

    Xw, yw = load_wine(return_X_y=True)
    proba = model.fit(_standardise(Xw)[::2], yw[::2]).predict_proba(_standardise(Xw)[1::2])
    assert proba.shape == (89, 3) and np.allclose(proba.sum(1), 1.0, atol=1e-5)


def test_probabilities_are_deterministic(ckpt, cancer):
    X, y = cancer
    a = load_model("mitra", checkpoint=str(ckpt)).fit(X[:64], y[:64]).predict_proba(X[64:150])
    b = load_model("mitra", checkpoint=str(ckpt)).fit(X[:64], y[:64]).predict_proba(X[64:150])
    assert np.array_equal(a, b)
    other = make_random_mitra_checkpoint(ckpt.parent / "seed0-again", seed=0)
    c = load_model("mitra", checkpoint=str(other)).fit(X[:64], y[:64]).predict_proba(X[64:150])
    assert np.array_equal(a, c)


def test_forward_leaves_inputs_untouched_and_is_differentiable(ckpt, cancer):
    model = load_model("mitra", checkpoint=str(ckpt))
    X, y = cancer
    xs, ys, xq = torch.as_tensor(X[:32]), torch.as_tensor(y[:32]), torch.as_tensor(X[32:40])
    before = xs.clone()
    logits = model.forward_episode(xs, ys, xq, 2)
    assert logits.shape == (8, 2)
    logits.sum().backward()
    assert torch.equal(xs, before)
    grads = [p.grad for p in model.module.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_finetuning_lowers_the_training_loss(ckpt, cancer):
    model = load_model("mitra", checkpoint=str(ckpt))
    X, y = cancer
    sampler = EpisodeSampler(X[:128], y[:128], None, None, 0.0, 64, 0.3, seed=0)
    val = EvalSplit(X[:128], y[:128], X[128:200], y[128:200])
    test = EvalSplit(X[:128], y[:128], X[200:300], y[200:300])
    cfg = FinetuneConfig(steps=20, lr=1e-3, eval_every=10, patience=5, episode_rows=64)
    res = finetune(model, sampler, val, test, 2, cfg, seed=0)
    losses = res.train_losses
    assert len(losses) == 20 and np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert res.best.val["roc_auc"] > res.evaluations[0].val["roc_auc"]


def test_over_limit_tables_are_refused_in_one_line(ckpt):
    model = load_model("mitra", checkpoint=str(ckpt))
    X = np.random.default_rng(0).normal(size=(44, 3)).astype(np.float32)
    with pytest.raises(DataError) as exc:
        model.fit(X, np.arange(44) % 11)
    assert "at most 10 classes, got 11" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(DataError, match="preprocessing.max_features") as exc:
        model.check_table(100, 501, 2)
    assert "\n" not in str(exc.value)
    with pytest.raises(DataError, match="at most 10000 context rows"):
        model.check_table(10001, 5, 2)
    three = load_model("mitra", checkpoint=str(
        make_random_mitra_checkpoint(ckpt.parent / "three", n_classes=3)))
    with pytest.raises(DataError, match="at most 3 classes, got 4"):
        three.fit(X[:40], np.arange(40) % 4)


def test_single_file_checkpoints_load_the_same_weights(ckpt, cancer, tmp_path):
    X, y = cancer
    ref = load_model("mitra", checkpoint=str(ckpt)).fit(X[:64], y[:64]).predict_proba(X[64:100])
    config, state = read_checkpoint(ckpt)

    from safetensors.torch import save_file

    single = tmp_path / "mitra.safetensors"
    save_file(state, str(single), metadata={CONFIG_METADATA_KEY: json.dumps(asdict(config))})
    blob = tmp_path / "mitra.pt"
    torch.save({"config": asdict(config), "state_dict": state}, blob)
    beside = tmp_path / "beside"
    beside.mkdir()
    shutil.copy(ckpt / WEIGHTS_FILE, beside / "weights.safetensors")
    shutil.copy(ckpt / CONFIG_FILE, beside / CONFIG_FILE)
    for source in (single, blob, beside / "weights.safetensors"):
        got = load_model("mitra", checkpoint=str(source)).fit(X[:64], y[:64])
        assert np.array_equal(got.predict_proba(X[64:100]), ref), source


def test_bad_sources_and_options_fail_in_one_line(ckpt, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / CONFIG_FILE).write_text((ckpt / CONFIG_FILE).read_text())
    cases = [
        ({"checkpoint": str(tmp_path / "nowhere")}, "not found"),
        ({"checkpoint": str(broken)}, "lacks model.safetensors"),
        ({"checkpoint": str(ckpt), "layers": 3}, "unknown option"),
        ({"checkpoint": str(ckpt), "precision": "int8"}, "precision must be one of"),
    ]
    for options, message in cases:
        with pytest.raises(CausalMixError, match=message) as exc:
            build_mitra(**options)
        assert "\n" not in str(exc.value)
    wrong = json.loads((ckpt / CONFIG_FILE).read_text()) | {"dim": 64}
    (broken / CONFIG_FILE).write_text(json.dumps(wrong))
    shutil.copy(ckpt / WEIGHTS_FILE, broken / WEIGHTS_FILE)
    with pytest.raises(CausalMixError, match="do not match"):
        build_mitra(checkpoint=str(broken))


def test_bfloat16_autocast_runs(ckpt, cancer):
    X, y = cancer
    model = load_model("mitra", checkpoint=str(ckpt), precision="bfloat16")
    proba = model.fit(X[:64], y[:64]).predict_proba(X[64:80])
    assert proba.shape == (16, 2) and np.allclose(proba.sum(1), 1.0, atol=1e-5)


def test_hub_weights_are_read_from_the_cache_without_network(ckpt, cancer, tmp_path, monkeypatch):
    """The hub path (snapshot_download) on a cache laid out as prefetch leaves it."""
    hub = pytest.importorskip("huggingface_hub")
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "cache" / "huggingface" / "models--autogluon--mitra-classifier"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(ckpt, repo / "snapshots" / commit)
    model = build_mitra(cache_dir=str(tmp_path / "cache"))
    assert model.meta["repo_id"] == "autogluon/mitra-classifier"
    assert Path(model.meta["source"]) == repo / "snapshots" / commit
    X, y = cancer
    ref = load_model("mitra", checkpoint=str(ckpt)).fit(X[:64], y[:64]).predict_proba(X[64:90])
    assert np.array_equal(model.fit(X[:64], y[:64]).predict_proba(X[64:90]), ref)

    with pytest.raises(CausalMixError, match="causalmix prefetch mitra") as exc:
        build_mitra(cache_dir=str(tmp_path / "empty"))
    assert "\n" not in str(exc.value)


def test_sweep_with_mitra_end_to_end(ray_local, ckpt, tmp_path):
    raw = small_spec(
        tmp_path, datasets=["sklearn/breast_cancer"], methods=["finetune", "causalmixft"],
        model={"name": "mitra", "checkpoint": str(ckpt)},
        finetune={"steps": 4, "eval_every": 2, "patience": 2, "episode_rows": 48},
    )
    spec = parse_spec(raw)
    sweep_dir = run_sweep(spec, report=False)
    res = pd.read_parquet(sweep_dir / "results.parquet")
    assert len(res) == 2 and set(res["method"]) == {"finetune", "causalmixft"}
    assert (res["status"] == "ok").all(), res["error"].tolist()
    assert (res["model"] == "mitra").all()
    assert res["test_roc_auc"].notna().all()
